//! Committed group offsets and producer id allocation.

use std::sync::Arc;

use uuid::Uuid;

use super::{assert_invalid, Store};
use crate::types::*;

fn offset(topic: &str, partition: i32, offset: i64) -> CommittedOffset {
    CommittedOffset {
        topic: topic.to_string(),
        partition,
        offset,
        leader_epoch: 3,
        metadata: format!("meta {offset}"),
        commit_ms: 1_700_000_000_000 + offset,
    }
}

pub(super) async fn offsets(s: Store) {
    let (c1, c2) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(s.fetch_offsets(c1, "g1").await.expect("fetch"), vec![]);
    assert_eq!(
        s.list_offset_groups(c1).await.expect("list"),
        Vec::<String>::new()
    );

    s.commit_offsets(
        c1,
        "g1",
        &[offset("b", 0, 5), offset("a", 1, 7), offset("a", 0, 3)],
    )
    .await
    .expect("commit");
    s.commit_offsets(c1, "g0", &[offset("a", 0, 1)])
        .await
        .expect("commit");
    s.commit_offsets(c2, "g1", &[offset("a", 0, 99)])
        .await
        .expect("commit");
    assert_eq!(
        s.fetch_offsets(c1, "g1").await.expect("fetch"),
        vec![offset("a", 0, 3), offset("a", 1, 7), offset("b", 0, 5)],
        "ordered by topic and partition"
    );

    // Upsert: a later commit replaces the offset of that partition only.
    let mut newer = offset("a", 1, 8);
    newer.leader_epoch = -1;
    newer.metadata = String::new();
    s.commit_offsets(c1, "g1", &[newer.clone()])
        .await
        .expect("commit");
    assert_eq!(
        s.fetch_offsets(c1, "g1").await.expect("fetch"),
        vec![offset("a", 0, 3), newer, offset("b", 0, 5)]
    );
    assert_eq!(
        s.fetch_offsets(c2, "g1").await.expect("fetch"),
        vec![offset("a", 0, 99)],
        "clusters are isolated"
    );
    assert_eq!(
        s.list_offset_groups(c1).await.expect("list"),
        vec!["g0".to_string(), "g1".to_string()]
    );

    s.delete_group_offsets(c1, "g1").await.expect("delete");
    assert_eq!(s.fetch_offsets(c1, "g1").await.expect("fetch"), vec![]);
    assert_eq!(
        s.list_offset_groups(c1).await.expect("list"),
        vec!["g0".to_string()]
    );
    assert_eq!(s.fetch_offsets(c2, "g1").await.expect("fetch").len(), 1);
    s.delete_group_offsets(c1, "never")
        .await
        .expect("delete of nothing");
}

/// Checks that `blocks` of `(first, count)` are pairwise disjoint and non-negative.
pub(super) fn assert_disjoint(mut blocks: Vec<(i64, i64)>) {
    blocks.sort_unstable();
    for w in blocks.windows(2) {
        let ((a, n), (b, _)) = (w[0], w[1]);
        assert!(a + n <= b, "producer id blocks overlap: {a}+{n} and {b}");
    }
    if let Some((first, _)) = blocks.first() {
        assert!(*first >= 0, "negative producer id {first}");
    }
}

pub(super) async fn producer_ids_sequential(s: Store) {
    let mut blocks = Vec::new();
    for count in [1, 1, 1000, 7, 1] {
        let first = s.allocate_producer_ids(count).await.expect("allocate");
        blocks.push((first, count));
    }
    assert_disjoint(blocks);
    assert_invalid(s.allocate_producer_ids(0).await);
    assert_invalid(s.allocate_producer_ids(-5).await);
}

pub(super) async fn producer_ids_concurrent(s: Store) {
    race_producer_ids(&[s], 24, 5, 4).await;
}

/// Starts `tasks` allocators together, task `i` on `stores[i % stores.len()]` allocating
/// `per_task` blocks of `1 + i % sizes` ids, and asserts every block was granted and no two
/// blocks overlap.
pub(super) async fn race_producer_ids(stores: &[Store], tasks: usize, per_task: usize, sizes: i64) {
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks));
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let (s, barrier) = (Arc::clone(&stores[i % stores.len()]), Arc::clone(&barrier));
            let count = 1 + i as i64 % sizes;
            tokio::spawn(async move {
                barrier.wait().await;
                let mut got = Vec::new();
                for _ in 0..per_task {
                    got.push((
                        s.allocate_producer_ids(count).await.expect("allocate"),
                        count,
                    ));
                }
                got
            })
        })
        .collect();
    let mut blocks = Vec::new();
    for t in handles {
        blocks.extend(t.await.expect("allocation task"));
    }
    assert_eq!(blocks.len(), tasks * per_task);
    assert_disjoint(blocks);
}
