//! Two handles on one backend (two processes sharing a SQLite file, two DynamoDB clients): what
//! one writes the other sees, and conditional writes stay atomic between them.

use std::sync::Arc;

use super::fixtures::*;
use super::groups::assert_disjoint;
use super::{assert_conflict, Store};
use crate::error::MetadataError;

pub(super) async fn writes_visible(a: Store, b: Store) {
    let t = topic_on(&a, "node-a", "t", 2).await;
    assert_eq!(b.get_topic_by_id(t.id).await.expect("get"), Some(t.clone()));
    let claimed = b
        .claim_partition(t.id, 0, "node-b", 0)
        .await
        .expect("claim");
    assert_eq!(
        a.get_partition_owner(t.id, 0).await.expect("get"),
        Some(claimed)
    );
    a.commit_offsets(t.cluster_id, "g", &[])
        .await
        .expect("empty commit");
    b.delete_topic(t.id).await.expect("delete");
    assert_eq!(a.get_topic_by_id(t.id).await.expect("get"), None);
}

pub(super) async fn racing_claims(a: Store, b: Store) {
    const PER_HANDLE: usize = 6;
    const ROUNDS: i32 = 4;
    let t = topic_on(&a, "node-0", "contended", 1).await;
    for round in 0..ROUNDS {
        let barrier = Arc::new(tokio::sync::Barrier::new(2 * PER_HANDLE));
        let tasks: Vec<_> = (0..2 * PER_HANDLE)
            .map(|i| {
                let s = Arc::clone(if i % 2 == 0 { &a } else { &b });
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    s.claim_partition(t.id, 0, &format!("node-{i}"), round)
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.expect("claim task") {
                Ok(owner) => winners.push(owner),
                Err(MetadataError::Conflict(_)) => {}
                Err(e) => panic!("round {round}: a losing claim must be Conflict, got {e:?}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one winner, got {winners:?}"
        );
        assert_eq!(winners[0].epoch, round + 1);
        for s in [&a, &b] {
            assert_eq!(
                s.get_partition_owner(t.id, 0).await.expect("get"),
                Some(winners[0].clone())
            );
        }
    }
}

pub(super) async fn racing_producer_ids(a: Store, b: Store) {
    let tasks: Vec<_> = (0..16_i64)
        .map(|i| {
            let s = Arc::clone(if i % 2 == 0 { &a } else { &b });
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..10 {
                    let count = 1 + i % 3;
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
    for t in tasks {
        blocks.extend(t.await.expect("allocation task"));
    }
    assert_eq!(blocks.len(), 160);
    assert_disjoint(blocks);
}

pub(super) async fn fenced_commit(a: Store, b: Store) {
    let t = topic_on(&a, "node-a", "t", 2).await;
    // The partition fails over through the other handle while node-a still holds epoch 0.
    b.claim_partition(t.id, 1, "node-b", 0)
        .await
        .expect("claim");
    let batch = vec![
        commit(
            &t,
            0,
            0,
            vec![entry(&t, 0, 0, 5, "obj")],
            vec![snapshot(1, 1)],
        ),
        commit(
            &t,
            1,
            0,
            vec![entry(&t, 1, 0, 5, "obj")],
            vec![snapshot(1, 1)],
        ),
    ];
    assert_conflict(a.commit_manifest("node-a", &batch).await, &["node-b"]);
    for s in [&a, &b] {
        assert_eq!(s.manifest_references("obj").await.expect("refs"), 0);
        assert_eq!(s.producer_snapshots(t.id, 0).await.expect("snaps"), vec![]);
    }
}
