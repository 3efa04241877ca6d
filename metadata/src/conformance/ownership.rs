//! Epoch-fenced partition claims, storage-node registrations and gateway registrations.

use std::sync::Arc;

use uuid::Uuid;

use super::fixtures::*;
use super::{assert_conflict, assert_not_found, Store};
use crate::error::MetadataError;
use crate::types::*;

pub(super) async fn claim_fencing(s: Store) {
    let t = topic_on(&s, "node-a", "t", 2).await;

    let won = s
        .claim_partition(t.id, 1, "node-b", 0)
        .await
        .expect("claim at the stored epoch");
    let want = PartitionOwner {
        node_id: "node-b".to_string(),
        epoch: 1,
        ..owner(&t, 1, "node-a")
    };
    assert_eq!(won, want);
    assert_eq!(
        s.get_partition_owner(t.id, 1).await.expect("get"),
        Some(want.clone())
    );
    // The other partition is untouched.
    assert_eq!(
        s.get_partition_owner(t.id, 0).await.expect("get"),
        Some(owner(&t, 0, "node-a"))
    );

    // A node that still believes epoch 0 is stale: refused, told who owns it now.
    assert_conflict(
        s.claim_partition(t.id, 1, "node-c", 0).await,
        &["node-b", "1", "0"],
    );
    // A guess ahead of the stored epoch is refused as well.
    assert_conflict(s.claim_partition(t.id, 1, "node-c", 5).await, &["5"]);
    assert_eq!(
        s.get_partition_owner(t.id, 1).await.expect("get"),
        Some(want)
    );

    // Reclaiming by the same node still moves the epoch (a restarted node fences its old self).
    let again = s
        .claim_partition(t.id, 1, "node-b", 1)
        .await
        .expect("reclaim");
    assert_eq!((again.node_id.as_str(), again.epoch), ("node-b", 2));

    // The log start offset travels with the partition.
    s.advance_log_start(t.id, 0, 0, 42).await.expect("advance");
    let moved = s
        .claim_partition(t.id, 0, "node-c", 0)
        .await
        .expect("claim");
    assert_eq!(moved.log_start_offset, 42);

    assert_not_found(s.claim_partition(t.id, 2, "node-a", 0).await, "partition");
    assert_not_found(
        s.claim_partition(Uuid::new_v4(), 0, "node-a", 0).await,
        "partition",
    );
}

pub(super) async fn concurrent_claims(s: Store) {
    let t = topic_on(&s, "node-0", "contended", 1).await;
    race_claims(&[s], &t, 12, 4).await;
}

/// For each of `rounds` rounds, starts `claimers` claims of partition 0 of `t` together (claim
/// `i` by `node-{i}` on `stores[i % stores.len()]`, at the round's epoch) and asserts exactly
/// one wins, the others see `Conflict`, and every store then reports the winner.
pub(super) async fn race_claims(stores: &[Store], t: &Topic, claimers: usize, rounds: i32) {
    for round in 0..rounds {
        let barrier = Arc::new(tokio::sync::Barrier::new(claimers));
        let tasks: Vec<_> = (0..claimers)
            .map(|i| {
                let (s, barrier) = (Arc::clone(&stores[i % stores.len()]), Arc::clone(&barrier));
                let (topic_id, node) = (t.id, format!("node-{i}"));
                tokio::spawn(async move {
                    barrier.wait().await;
                    s.claim_partition(topic_id, 0, &node, round).await
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
        for s in stores {
            assert_eq!(
                s.get_partition_owner(t.id, 0).await.expect("get"),
                Some(winners[0].clone()),
                "round {round}: the stored owner is the winner"
            );
        }
    }
}

pub(super) async fn nodes(s: Store) {
    let node = |id: &str, addr: &str, hb: i64| NodeInfo {
        id: id.to_string(),
        rpc_addr: addr.to_string(),
        cert_der: vec![0x30, 0x82, 0x01, id.len() as u8],
        heartbeat_ms: hb,
    };
    assert_eq!(s.list_nodes().await.expect("list"), vec![]);
    let b = node("node-b", "127.0.0.1:7001", 10);
    let a = node("node-a", "127.0.0.1:7000", 20);
    s.register_node(&b).await.expect("register");
    s.register_node(&a).await.expect("register");
    assert_eq!(s.get_node("node-a").await.expect("get"), Some(a.clone()));
    assert_eq!(s.get_node("node-z").await.expect("get"), None);
    assert_eq!(
        s.list_nodes().await.expect("list"),
        vec![a.clone(), b.clone()]
    );

    s.heartbeat_node("node-b", 99).await.expect("heartbeat");
    assert_eq!(
        s.get_node("node-b")
            .await
            .expect("get")
            .map(|n| n.heartbeat_ms),
        Some(99)
    );
    assert_not_found(s.heartbeat_node("node-z", 99).await, "node");
    assert_eq!(s.get_node("node-z").await.expect("get"), None);

    // Re-registration (a restart on a new address) replaces the record.
    let b2 = node("node-b", "127.0.0.1:7101", 200);
    s.register_node(&b2).await.expect("re-register");
    assert_eq!(s.get_node("node-b").await.expect("get"), Some(b2.clone()));
    assert_eq!(s.list_nodes().await.expect("list"), vec![a, b2]);
}

pub(super) async fn gateways(s: Store) {
    let gw = |id: &str, hb: i64| GatewayInfo {
        id: id.to_string(),
        heartbeat_ms: hb,
    };
    assert_eq!(s.list_gateways().await.expect("list"), vec![]);
    s.heartbeat_gateway("gw-b", 10).await.expect("register");
    s.heartbeat_gateway("gw-a", 20).await.expect("register");
    assert_eq!(
        s.list_gateways().await.expect("list"),
        vec![gw("gw-a", 20), gw("gw-b", 10)]
    );

    // A heartbeat renews the one registration rather than adding another.
    s.heartbeat_gateway("gw-b", 1_000).await.expect("heartbeat");
    assert_eq!(
        s.list_gateways().await.expect("list"),
        vec![gw("gw-a", 20), gw("gw-b", 1_000)]
    );

    s.remove_gateway("gw-a").await.expect("remove");
    s.remove_gateway("gw-a")
        .await
        .expect("removing twice is no error");
    s.remove_gateway("gw-never")
        .await
        .expect("removing the unknown is no error");
    assert_eq!(
        s.list_gateways().await.expect("list"),
        vec![gw("gw-b", 1_000)]
    );

    // A removed gateway that heartbeats again is registered again.
    s.heartbeat_gateway("gw-a", 2_000)
        .await
        .expect("re-register");
    assert_eq!(
        s.list_gateways().await.expect("list"),
        vec![gw("gw-a", 2_000), gw("gw-b", 1_000)]
    );
    // Gateways are not storage nodes.
    assert_eq!(s.list_nodes().await.expect("nodes"), vec![]);
}
