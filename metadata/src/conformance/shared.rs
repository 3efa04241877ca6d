//! Two handles on one backend (two processes sharing a SQLite file, two DynamoDB clients): what
//! one writes the other sees, and conditional writes stay atomic between them.

use super::fixtures::*;
use super::groups::race_producer_ids;
use super::ownership::race_claims;
use super::{assert_conflict, Store};

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
    let t = topic_on(&a, "node-0", "contended", 1).await;
    race_claims(&[a, b], &t, 12, 4).await;
}

pub(super) async fn racing_producer_ids(a: Store, b: Store) {
    race_producer_ids(&[a, b], 16, 10, 3).await;
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

pub(super) async fn gateways_visible(a: Store, b: Store) {
    a.heartbeat_gateway("gw-a", 100).await.expect("heartbeat");
    b.heartbeat_gateway("gw-b", 150).await.expect("heartbeat");
    let ids = |list: Vec<crate::GatewayInfo>| {
        list.into_iter()
            .map(|g| (g.id, g.heartbeat_ms))
            .collect::<Vec<_>>()
    };
    let both = vec![("gw-a".to_string(), 100), ("gw-b".to_string(), 150)];
    assert_eq!(ids(a.list_gateways().await.expect("list")), both);
    assert_eq!(ids(b.list_gateways().await.expect("list")), both);
    b.remove_gateway("gw-a").await.expect("remove");
    assert_eq!(
        ids(a.list_gateways().await.expect("list")),
        vec![("gw-b".to_string(), 150)]
    );
}
