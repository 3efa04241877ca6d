//! Principals, the authorization epoch, cluster deletes and settings, ACLs and usage records.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::fixtures::*;
use super::{assert_already_exists, assert_conflict, assert_invalid, assert_not_found, Store};
use crate::types::*;

fn principal(account_id: &str, name: &str) -> Principal {
    Principal {
        account_id: account_id.to_string(),
        name: name.to_string(),
        policies: BTreeMap::from([(
            "read".to_string(),
            r#"{"Version":"2012-10-17","Statement":[]}"#.to_string(),
        )]),
        scram: None,
        version: 0,
        created_ms: 1_700_000_000_010,
    }
}

pub(super) async fn principals(s: Store) {
    let acct = "111122223333";
    let bob = principal(acct, "user/bob");
    let alice = principal(acct, "user/alice");
    s.create_principal(&bob).await.expect("create");
    s.create_principal(&alice).await.expect("create");
    s.create_principal(&principal("444455556666", "user/bob"))
        .await
        .expect("same name in another account");
    assert_already_exists(s.create_principal(&bob).await, "principal");
    let mut versioned = principal(acct, "role/x");
    versioned.version = 3;
    assert_invalid(s.create_principal(&versioned).await);

    assert_eq!(
        s.get_principal(acct, "user/bob").await.expect("get"),
        Some(bob.clone())
    );
    assert_eq!(
        s.get_principal(acct, "user/carol").await.expect("get"),
        None
    );
    let names: Vec<String> = s
        .list_principals(acct)
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, vec!["user/alice", "user/bob"], "ordered by name");

    // Conditional updates: the stored version must match; created_ms is kept.
    let epoch = s.auth_epoch().await.expect("epoch");
    let mut update = bob.clone();
    update.scram = Some("{\"salt\":\"AA==\"}".to_string());
    update.created_ms = 5;
    let stored = s.update_principal(&update).await.expect("update");
    assert_eq!(stored.version, 1);
    assert_eq!(stored.created_ms, bob.created_ms);
    assert_eq!(
        s.get_principal(acct, "user/bob").await.expect("get"),
        Some(stored.clone())
    );
    assert_conflict(s.update_principal(&update).await, &["1", "0"]);
    assert_not_found(
        s.update_principal(&principal(acct, "user/nobody")).await,
        "principal",
    );
    assert!(
        s.auth_epoch().await.expect("epoch") > epoch,
        "a principal update can take access away"
    );

    let epoch = s.auth_epoch().await.expect("epoch");
    s.delete_principal(acct, "user/bob").await.expect("delete");
    s.delete_principal(acct, "user/bob")
        .await
        .expect("deleting again is fine");
    assert_eq!(s.get_principal(acct, "user/bob").await.expect("get"), None);
    assert!(s.auth_epoch().await.expect("epoch") > epoch);
}

pub(super) async fn auth_epoch_follows_key_changes(s: Store) {
    let k = access_key("AKIAEPOCHTEST0000001", "111122223333");
    s.create_access_key(&k).await.expect("create");
    let e0 = s.auth_epoch().await.expect("epoch");
    s.set_access_key_status(&k.id, KeyStatus::Inactive)
        .await
        .expect("deactivate");
    let e1 = s.auth_epoch().await.expect("epoch");
    assert!(e1 > e0, "deactivating a key raises the epoch");
    s.delete_access_key(&k.id).await.expect("delete");
    let e2 = s.auth_epoch().await.expect("epoch");
    assert!(e2 > e1, "deleting a key raises the epoch");
}

pub(super) async fn cluster_delete_and_settings(s: Store) {
    let c = cluster("111122223333", "gone");
    s.create_cluster(&c).await.expect("create");
    s.delete_cluster(c.id).await.expect("delete");
    assert_eq!(s.get_cluster(c.id).await.expect("get"), None);
    assert_eq!(
        s.get_cluster_by_name(&c.account_id, &c.name)
            .await
            .expect("by name"),
        None
    );
    assert_not_found(s.delete_cluster(c.id).await, "cluster");
    s.create_cluster(&cluster("111122223333", "gone"))
        .await
        .expect("the name is free again");

    let id = Uuid::new_v4();
    assert_eq!(s.get_cluster_settings(id).await.expect("get"), None);
    let first = ClusterSettings {
        cluster_id: id,
        limits: BTreeMap::from([("partitions".to_string(), 5000)]),
        version: 0,
    };
    let stored = s.put_cluster_settings(&first).await.expect("create");
    assert_eq!(stored.version, 1);
    assert_eq!(
        s.get_cluster_settings(id).await.expect("get"),
        Some(stored.clone())
    );
    assert_conflict(s.put_cluster_settings(&first).await, &["1", "0"]);
    let mut next = stored.clone();
    next.limits
        .insert("ingress_bytes_per_sec".to_string(), 1 << 30);
    let stored = s.put_cluster_settings(&next).await.expect("update");
    assert_eq!(stored.version, 2);
    assert_eq!(
        s.get_cluster_settings(id)
            .await
            .expect("get")
            .map(|s| s.limits),
        Some(next.limits)
    );
}

pub(super) async fn acls(s: Store) {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let bindings = vec![
        "topic|orders|literal|User:bob|*|read|allow".to_string(),
        "group|app|prefixed|User:*|*|all|allow".to_string(),
    ];
    let before_create = s.auth_epoch().await.expect("epoch");
    assert_eq!(s.create_acls(a, &bindings).await.expect("create"), 2);
    let after_create = s.auth_epoch().await.expect("epoch");
    assert!(
        after_create > before_create,
        "a new binding raises the epoch"
    );
    assert_eq!(
        s.create_acls(a, &bindings[..1]).await.expect("again"),
        0,
        "a stored binding is kept once"
    );
    assert_eq!(
        s.auth_epoch().await.expect("epoch"),
        after_create,
        "re-creating a stored binding changes nothing"
    );
    s.create_acls(b, &bindings[..1])
        .await
        .expect("other cluster");
    let mut sorted = bindings.clone();
    sorted.sort();
    assert_eq!(s.list_acls(a).await.expect("list"), sorted);
    assert_eq!(s.list_acls(b).await.expect("list").len(), 1);

    let epoch = s.auth_epoch().await.expect("epoch");
    let removed = s
        .delete_acls(a, &[bindings[0].clone(), "never|stored".to_string()])
        .await
        .expect("delete");
    assert_eq!(removed, vec![bindings[0].clone()], "only stored ones");
    assert_eq!(
        s.list_acls(a).await.expect("list"),
        vec![bindings[1].clone()]
    );
    assert_eq!(
        s.list_acls(b).await.expect("list").len(),
        1,
        "other cluster kept"
    );
    assert!(s.auth_epoch().await.expect("epoch") > epoch);
}

pub(super) async fn usage(s: Store) {
    let c = Uuid::new_v4();
    let record = |start: i64, source: &str, bytes_in: u64| UsageRecord {
        cluster_id: c,
        source: source.to_string(),
        period_start_ms: start,
        period_end_ms: start + 3_600_000,
        cluster_hours: 1.0,
        partition_hours: 8.0,
        bytes_in,
        bytes_out: bytes_in * 2,
        storage_byte_hours: 1.5e9,
    };
    for r in [
        record(7_200_000, "gw-1", 5),
        record(3_600_000, "gw-2", 3),
        record(3_600_000, "gw-1", 1),
        record(0, "gw-1", 9),
    ] {
        s.record_usage(&r).await.expect("record");
    }
    // Storing the same key again replaces the record (a retried write).
    s.record_usage(&record(3_600_000, "gw-1", 2))
        .await
        .expect("replace");
    s.record_usage(&UsageRecord {
        cluster_id: Uuid::new_v4(),
        ..record(3_600_000, "gw-1", 100)
    })
    .await
    .expect("other cluster");

    let listed = s.list_usage(c, 3_600_000, 7_200_001).await.expect("list");
    assert_eq!(
        listed,
        vec![
            record(3_600_000, "gw-1", 2),
            record(3_600_000, "gw-2", 3),
            record(7_200_000, "gw-1", 5)
        ],
        "by period start then source, [from, to)"
    );
    assert_eq!(s.list_usage(c, 0, 3_600_000).await.expect("list").len(), 1);
    assert_eq!(s.list_usage(c, 10, 5).await.expect("list"), vec![]);
}
