//! Manifest commits fenced by ownership, producer snapshots and the log start offset.

use super::fixtures::*;
use super::{assert_conflict, assert_invalid, Store};

pub(super) async fn commit_fenced(s: Store) {
    let t = topic_on(&s, "node-a", "t", 1).await;
    let first = commit(
        &t,
        0,
        0,
        vec![entry(&t, 0, 0, 10, "o1")],
        vec![snapshot(1, 5)],
    );
    s.commit_manifest("node-a", &[first])
        .await
        .expect("owner commits at its epoch");

    // The partition fails over to node-b at epoch 1; node-a is now a zombie.
    s.claim_partition(t.id, 0, "node-b", 0)
        .await
        .expect("claim");
    let zombie = commit(
        &t,
        0,
        0,
        vec![entry(&t, 0, 10, 20, "o2")],
        vec![snapshot(1, 9)],
    );
    assert_conflict(
        s.commit_manifest("node-a", std::slice::from_ref(&zombie))
            .await,
        &["node-b", "node-a", "1", "0"],
    );
    // The right epoch from the wrong node is no better.
    let mut wrong_node = zombie.clone();
    wrong_node.epoch = 1;
    assert_conflict(
        s.commit_manifest("node-a", std::slice::from_ref(&wrong_node))
            .await,
        &["node-b", "node-a"],
    );
    // Nor the right node with a stale epoch.
    assert_conflict(s.commit_manifest("node-b", &[zombie]).await, &["1", "0"]);
    assert_eq!(
        s.list_manifest(t.id, 0).await.expect("manifest"),
        vec![entry(&t, 0, 0, 10, "o1")],
        "refused commits wrote nothing"
    );
    assert_eq!(
        s.producer_snapshots(t.id, 0).await.expect("snaps"),
        vec![snapshot(1, 5)],
        "refused commits left the snapshots alone"
    );
    assert_eq!(s.manifest_references("o2").await.expect("refs"), 0);

    s.commit_manifest("node-b", &[wrong_node])
        .await
        .expect("new owner commits at the new epoch");
    assert_eq!(s.list_manifest(t.id, 0).await.expect("manifest").len(), 2);

    // A partition that does not exist (its topic was deleted) fences the writer like a lost
    // claim does.
    let mut gone = commit(&t, 0, 1, vec![], vec![]);
    gone.partition = 5;
    assert_conflict(s.commit_manifest("node-b", &[gone]).await, &["/5"]);
}

pub(super) async fn commit_all_or_nothing(s: Store) {
    let t = topic_on(&s, "node-a", "t", 3).await;
    let u = topic_on(&s, "node-a", "u", 1).await;
    s.claim_partition(t.id, 2, "node-b", 0)
        .await
        .expect("claim");

    // Partitions 0, 1 of t and 0 of u are still node-a's, but 2 of t is not: nothing lands.
    let batch = vec![
        commit(
            &t,
            0,
            0,
            vec![entry(&t, 0, 0, 10, "big")],
            vec![snapshot(1, 1)],
        ),
        commit(
            &u,
            0,
            0,
            vec![entry(&u, 0, 0, 3, "big")],
            vec![snapshot(2, 1)],
        ),
        commit(
            &t,
            2,
            0,
            vec![entry(&t, 2, 0, 7, "big")],
            vec![snapshot(3, 1)],
        ),
        commit(&t, 1, 0, vec![entry(&t, 1, 0, 4, "big")], vec![]),
    ];
    assert_conflict(s.commit_manifest("node-a", &batch).await, &["node-b"]);
    assert_eq!(s.manifest_references("big").await.expect("refs"), 0);
    for (topic, p) in [(&t, 0), (&t, 1), (&t, 2), (&u, 0)] {
        assert_eq!(
            s.list_manifest(topic.id, p).await.expect("manifest"),
            vec![]
        );
        assert_eq!(
            s.producer_snapshots(topic.id, p).await.expect("snaps"),
            vec![]
        );
    }

    // The same batch without the lost partition commits in full.
    let mut ok = batch.clone();
    ok.remove(2);
    s.commit_manifest("node-a", &ok).await.expect("commit");
    assert_eq!(s.manifest_references("big").await.expect("refs"), 3);
    assert_eq!(
        s.producer_snapshots(u.id, 0).await.expect("snaps"),
        vec![snapshot(2, 1)]
    );

    // An invalid entry in the last partition also voids the earlier ones.
    let bad = vec![
        commit(&t, 0, 0, vec![entry(&t, 0, 10, 20, "bad")], vec![]),
        commit(&t, 1, 0, vec![entry(&t, 1, 9, 9, "bad")], vec![]),
    ];
    assert_invalid(s.commit_manifest("node-a", &bad).await);
    assert_eq!(s.manifest_references("bad").await.expect("refs"), 0);
    assert_eq!(
        s.producer_snapshots(t.id, 0).await.expect("snaps"),
        vec![snapshot(1, 1)]
    );
}

pub(super) async fn manifest_ordering_and_references(s: Store) {
    let t = topic_on(&s, "node-a", "t", 2).await;
    // Committed out of order, in several calls, across two partitions and shared objects.
    let calls = [
        vec![commit(&t, 0, 0, vec![entry(&t, 0, 30, 40, "o3")], vec![])],
        vec![
            commit(
                &t,
                0,
                0,
                vec![entry(&t, 0, 0, 10, "o1"), entry(&t, 0, 20, 30, "o2")],
                vec![],
            ),
            commit(&t, 1, 0, vec![entry(&t, 1, 0, 100, "o2")], vec![]),
        ],
        vec![commit(&t, 0, 0, vec![entry(&t, 0, 10, 20, "o1")], vec![])],
    ];
    for c in &calls {
        s.commit_manifest("node-a", c).await.expect("commit");
    }
    let listed = s.list_manifest(t.id, 0).await.expect("manifest");
    assert_eq!(
        listed,
        vec![
            entry(&t, 0, 0, 10, "o1"),
            entry(&t, 0, 10, 20, "o1"),
            entry(&t, 0, 20, 30, "o2"),
            entry(&t, 0, 30, 40, "o3"),
        ],
        "ordered by base offset"
    );
    assert_eq!(
        s.list_manifest(t.id, 1).await.expect("manifest"),
        vec![entry(&t, 1, 0, 100, "o2")]
    );
    assert_eq!(s.manifest_references("o1").await.expect("refs"), 2);
    assert_eq!(s.manifest_references("o2").await.expect("refs"), 2);
    assert_eq!(s.manifest_references("o3").await.expect("refs"), 1);
    assert_eq!(s.manifest_references("o4").await.expect("refs"), 0);

    // A retry of a commit that already landed is accepted and changes nothing.
    s.commit_manifest("node-a", &calls[2])
        .await
        .expect("identical retry");
    assert_eq!(s.list_manifest(t.id, 0).await.expect("manifest"), listed);
}

pub(super) async fn manifest_validation(s: Store) {
    let t = topic_on(&s, "node-a", "t", 2).await;
    s.commit_manifest(
        "node-a",
        &[commit(&t, 0, 0, vec![entry(&t, 0, 10, 20, "o1")], vec![])],
    )
    .await
    .expect("commit");
    // A different range over stored offsets would make two objects claim the same records.
    for (base, end) in [(15, 25), (5, 11), (0, 30), (10, 20)] {
        let e = entry(&t, 0, base, end, "o2");
        assert_conflict(
            s.commit_manifest("node-a", &[commit(&t, 0, 0, vec![e], vec![])])
                .await,
            &["o1"],
        );
    }
    // Entries for another partition than the commit's, or empty ranges, are caller bugs.
    let stray = commit(&t, 0, 0, vec![entry(&t, 1, 0, 5, "o3")], vec![]);
    assert_invalid(s.commit_manifest("node-a", &[stray]).await);
    let empty = commit(&t, 0, 0, vec![entry(&t, 0, 30, 30, "o3")], vec![]);
    assert_invalid(s.commit_manifest("node-a", &[empty]).await);
    assert_eq!(
        s.list_manifest(t.id, 0).await.expect("manifest"),
        vec![entry(&t, 0, 10, 20, "o1")]
    );
    // Adjacent ranges are fine.
    let next = commit(
        &t,
        0,
        0,
        vec![entry(&t, 0, 20, 21, "o3"), entry(&t, 0, 0, 10, "o3")],
        vec![],
    );
    s.commit_manifest("node-a", &[next])
        .await
        .expect("adjacent ranges");
    assert_eq!(s.list_manifest(t.id, 0).await.expect("manifest").len(), 3);
}

pub(super) async fn snapshots_replaced(s: Store) {
    let t = topic_on(&s, "node-a", "t", 2).await;
    s.commit_manifest(
        "node-a",
        &[
            commit(&t, 0, 0, vec![], vec![snapshot(9, 1), snapshot(3, 4)]),
            commit(&t, 1, 0, vec![], vec![snapshot(5, 5)]),
        ],
    )
    .await
    .expect("commit");
    assert_eq!(
        s.producer_snapshots(t.id, 0).await.expect("snaps"),
        vec![snapshot(3, 4), snapshot(9, 1)],
        "ordered by producer id"
    );

    // The next commit's snapshot is the whole state: producer 9 expired, 3 moved on.
    s.commit_manifest("node-a", &[commit(&t, 0, 0, vec![], vec![snapshot(3, 8)])])
        .await
        .expect("commit");
    assert_eq!(
        s.producer_snapshots(t.id, 0).await.expect("snaps"),
        vec![snapshot(3, 8)]
    );
    assert_eq!(
        s.producer_snapshots(t.id, 1).await.expect("snaps"),
        vec![snapshot(5, 5)],
        "partitions not in the commit keep theirs"
    );
}

pub(super) async fn advance_log_start(s: Store) {
    let t = topic_on(&s, "node-a", "t", 2).await;
    let entries = vec![
        entry(&t, 0, 0, 10, "o1"),
        entry(&t, 0, 10, 20, "o2"),
        entry(&t, 0, 20, 30, "o3"),
    ];
    s.commit_manifest(
        "node-a",
        &[
            commit(&t, 0, 0, entries.clone(), vec![]),
            commit(&t, 1, 0, vec![entry(&t, 1, 0, 10, "o1")], vec![]),
        ],
    )
    .await
    .expect("commit");
    s.claim_partition(t.id, 0, "node-a", 0)
        .await
        .expect("claim");

    // Fenced on the epoch: a retention pass from epoch 0 is too late.
    assert_conflict(s.advance_log_start(t.id, 0, 0, 25).await, &["1", "0"]);
    assert_eq!(s.list_manifest(t.id, 0).await.expect("manifest"), entries);
    assert_eq!(
        s.get_partition_owner(t.id, 0)
            .await
            .expect("owner")
            .map(|o| o.log_start_offset),
        Some(0)
    );

    // 15 is inside [10, 20): only [0, 10) ends at or below it.
    let removed = s.advance_log_start(t.id, 0, 1, 15).await.expect("advance");
    assert_eq!(removed, entries[..1].to_vec());
    let owner = s.get_partition_owner(t.id, 0).await.expect("owner");
    assert_eq!(owner.map(|o| (o.log_start_offset, o.epoch)), Some((15, 1)));

    // Exactly at an end offset removes that entry.
    let removed = s.advance_log_start(t.id, 0, 1, 20).await.expect("advance");
    assert_eq!(removed, entries[1..2].to_vec());

    // Never lowered; nothing else removed.
    let removed = s.advance_log_start(t.id, 0, 1, 5).await.expect("advance");
    assert_eq!(removed, vec![]);
    assert_eq!(
        s.get_partition_owner(t.id, 0)
            .await
            .expect("owner")
            .map(|o| o.log_start_offset),
        Some(20)
    );
    assert_eq!(
        s.list_manifest(t.id, 0).await.expect("manifest"),
        entries[2..].to_vec()
    );
    assert_eq!(
        s.manifest_references("o1").await.expect("refs"),
        1,
        "partition 1 keeps o1"
    );
    assert_eq!(s.list_manifest(t.id, 1).await.expect("manifest").len(), 1);
    assert_eq!(
        s.get_partition_owner(t.id, 1)
            .await
            .expect("owner")
            .map(|o| o.log_start_offset),
        Some(0)
    );

    assert_conflict(s.advance_log_start(t.id, 9, 0, 5).await, &["/9"]);
}

/// A long history, as a node writes it: one object per commit covering two partitions, many
/// more commits than any backend keeps in one place, a claim in the middle, retention, delete.
pub(super) async fn long_history(s: Store) {
    const COMMITS: i64 = 75;
    let t = topic_on(&s, "node-a", "t", 2).await;
    let key = |i: i64| format!("nodes/a/{i:06}.obj");
    let range = |p: i32, i: i64| entry(&t, p, i * 10, i * 10 + 10, &key(i));
    for i in 0..COMMITS {
        let seq = i32::try_from(i).expect("small");
        s.commit_manifest(
            "node-a",
            &[
                commit(&t, 0, 0, vec![range(0, i)], vec![snapshot(1, seq)]),
                commit(&t, 1, 0, vec![range(1, i)], vec![snapshot(2, seq)]),
            ],
        )
        .await
        .expect("commit");
    }
    let all = |p: i32, from: i64, to: i64| (from..to).map(|i| range(p, i)).collect::<Vec<_>>();
    for p in 0..2 {
        assert_eq!(
            s.list_manifest(t.id, p).await.expect("manifest"),
            all(p, 0, COMMITS),
            "partition {p} lists every range in order"
        );
    }
    let last_seq = i32::try_from(COMMITS - 1).expect("small");
    assert_eq!(
        s.producer_snapshots(t.id, 0).await.expect("snaps"),
        vec![snapshot(1, last_seq)],
        "the last commit's snapshots"
    );
    assert_eq!(s.manifest_references(&key(3)).await.expect("refs"), 2);

    // Partition 0 moves to node-b; node-a keeps partition 1 and goes on committing it.
    s.claim_partition(t.id, 0, "node-b", 0)
        .await
        .expect("claim");
    assert_eq!(
        s.list_manifest(t.id, 0).await.expect("manifest"),
        all(0, 0, COMMITS),
        "a claim keeps the history"
    );
    assert_eq!(
        s.producer_snapshots(t.id, 0).await.expect("snaps"),
        vec![snapshot(1, last_seq)],
        "and the producer state"
    );
    s.commit_manifest(
        "node-a",
        &[commit(&t, 1, 0, vec![range(1, COMMITS)], vec![])],
    )
    .await
    .expect("node-a still owns partition 1");
    assert_conflict(
        s.commit_manifest(
            "node-a",
            &[commit(&t, 0, 0, vec![range(0, COMMITS)], vec![])],
        )
        .await,
        &["node-b"],
    );
    s.commit_manifest(
        "node-b",
        &[commit(
            &t,
            0,
            1,
            vec![range(0, COMMITS)],
            vec![snapshot(1, 99)],
        )],
    )
    .await
    .expect("node-b commits at epoch 1");
    assert_eq!(
        s.list_manifest(t.id, 0).await.expect("manifest"),
        all(0, 0, COMMITS + 1)
    );
    assert_eq!(
        s.producer_snapshots(t.id, 0).await.expect("snaps"),
        vec![snapshot(1, 99)]
    );

    // Retention on partition 0 releases the first 50 ranges (object counts drop to 1, since
    // partition 1 still holds them).
    let removed = s.advance_log_start(t.id, 0, 1, 500).await.expect("advance");
    assert_eq!(removed, all(0, 0, 50));
    assert_eq!(
        s.list_manifest(t.id, 0).await.expect("manifest"),
        all(0, 50, COMMITS + 1)
    );
    assert_eq!(s.manifest_references(&key(3)).await.expect("refs"), 1);
    assert_eq!(
        s.producer_snapshots(t.id, 0).await.expect("snaps"),
        vec![snapshot(1, 99)],
        "producer state outlives retention"
    );

    let mut removed = s.delete_topic(t.id).await.expect("delete");
    removed.sort_by_key(|e| (e.partition, e.base_offset));
    let mut want = all(0, 50, COMMITS + 1);
    want.extend(all(1, 0, COMMITS + 1));
    assert_eq!(removed, want, "delete returns every live range");
    for i in [0, 3, 60, COMMITS] {
        assert_eq!(
            s.manifest_references(&key(i)).await.expect("refs"),
            0,
            "object {i} is garbage"
        );
    }
}
