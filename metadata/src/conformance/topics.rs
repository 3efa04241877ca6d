//! Topics and their partition owners.

use uuid::Uuid;

use super::fixtures::*;
use super::{assert_already_exists, assert_conflict, assert_invalid, assert_not_found, Store};

pub(super) async fn create_get_list(s: Store) {
    let cluster = Uuid::new_v4();
    let orders = topic(cluster, "orders", 3);
    let audit = topic(cluster, "audit", 1);
    s.create_topic(&orders, &owners(&orders, "node-a"))
        .await
        .expect("create orders");
    s.create_topic(&audit, &owners(&audit, "node-b"))
        .await
        .expect("create audit");

    assert_eq!(
        s.get_topic(cluster, "orders").await.expect("get"),
        Some(orders.clone())
    );
    assert_eq!(
        s.get_topic_by_id(orders.id).await.expect("get by id"),
        Some(orders.clone())
    );
    assert_eq!(s.get_topic(cluster, "nope").await.expect("get"), None);
    assert_eq!(s.get_topic_by_id(Uuid::new_v4()).await.expect("get"), None);
    assert_eq!(
        s.list_topics(cluster).await.expect("list"),
        vec![audit.clone(), orders.clone()],
        "topics ordered by name"
    );

    // Same name, same cluster: refused, and the stored topic is untouched.
    let clash = topic(cluster, "orders", 7);
    assert_already_exists(s.create_topic(&clash, &owners(&clash, "x")).await, "topic");
    assert_eq!(s.get_topic_by_id(clash.id).await.expect("get"), None);
    assert_eq!(
        s.list_partition_owners(clash.id).await.expect("owners"),
        vec![]
    );
    assert_eq!(
        s.get_topic(cluster, "orders").await.expect("get"),
        Some(orders.clone())
    );
    // Same name in another cluster is another topic.
    let elsewhere = topic(Uuid::new_v4(), "orders", 1);
    s.create_topic(&elsewhere, &owners(&elsewhere, "node-a"))
        .await
        .expect("same name in another cluster");

    let listed = s.list_partition_owners(orders.id).await.expect("owners");
    assert_eq!(
        listed,
        owners(&orders, "node-a"),
        "owners ordered by partition"
    );
    assert_eq!(
        s.get_partition_owner(orders.id, 2).await.expect("owner"),
        Some(owner(&orders, 2, "node-a"))
    );
    assert_eq!(
        s.get_partition_owner(orders.id, 3).await.expect("owner"),
        None
    );

    let mut of_a = s.list_partitions_of_node("node-a").await.expect("of node");
    of_a.sort_by_key(|o| (o.topic_id, o.partition));
    let mut want: Vec<_> = owners(&orders, "node-a")
        .into_iter()
        .chain(owners(&elsewhere, "node-a"))
        .collect();
    want.sort_by_key(|o| (o.topic_id, o.partition));
    assert_eq!(of_a, want);
    assert_eq!(
        s.list_partitions_of_node("node-b").await.expect("of node"),
        owners(&audit, "node-b")
    );
    assert_eq!(
        s.list_partitions_of_node("node-z").await.expect("of node"),
        vec![]
    );
}

pub(super) async fn create_validates_owners(s: Store) {
    let cluster = Uuid::new_v4();
    let t = topic(cluster, "t", 2);
    let other = topic(cluster, "other", 2);
    // An owner of another topic, or of a partition past the count: nothing is created.
    assert_invalid(s.create_topic(&t, &[owner(&other, 0, "n")]).await);
    assert_invalid(s.create_topic(&t, &[owner(&t, 2, "n")]).await);
    assert_invalid(s.create_topic(&t, &[owner(&t, -1, "n")]).await);
    assert_eq!(s.get_topic_by_id(t.id).await.expect("get"), None);
    // Two owners for one partition: refused as a whole.
    let r = s
        .create_topic(&t, &[owner(&t, 0, "n"), owner(&t, 0, "m")])
        .await;
    assert!(r.is_err(), "duplicate owners accepted: {r:?}");
    assert_eq!(s.get_topic_by_id(t.id).await.expect("get"), None);
    assert_eq!(s.list_partition_owners(t.id).await.expect("owners"), vec![]);
}

pub(super) async fn update_versions(s: Store) {
    let t = topic_on(&s, "node-a", "t", 2).await;

    let mut changed = t.clone();
    changed
        .configs
        .insert("retention.ms".to_string(), "1000".to_string());
    changed.partitions = 3;
    let stored = s
        .update_topic(&changed, &[owner(&t, 2, "node-b")])
        .await
        .expect("update at the stored version");
    assert_eq!(stored.version, t.version + 1);
    assert_eq!(stored.partitions, 3);
    assert_eq!(stored.configs, changed.configs);
    assert_eq!(
        s.get_topic_by_id(t.id).await.expect("get"),
        Some(stored.clone())
    );
    assert_eq!(
        s.get_partition_owner(t.id, 2).await.expect("owner"),
        Some(owner(&t, 2, "node-b"))
    );

    // A writer that read version 0 loses against the stored version 1.
    let mut stale = t.clone();
    stale.configs.clear();
    let stored_version = stored.version.to_string();
    let stale_version = t.version.to_string();
    assert_conflict(
        s.update_topic(&stale, &[]).await,
        &[&stored_version, &stale_version],
    );
    assert_eq!(
        s.get_topic_by_id(t.id).await.expect("get"),
        Some(stored.clone())
    );

    // Adding an owner for an existing partition fails and rolls the version bump back.
    let mut again = stored.clone();
    again.configs.clear();
    assert!(s.update_topic(&again, &[owner(&t, 0, "x")]).await.is_err());
    assert_eq!(
        s.get_topic_by_id(t.id).await.expect("get"),
        Some(stored.clone())
    );

    let next = s.update_topic(&again, &[]).await.expect("second update");
    assert_eq!(next.version, stored.version + 1);
    assert!(next.configs.is_empty());

    let ghost = topic(t.cluster_id, "ghost", 1);
    assert_not_found(s.update_topic(&ghost, &[]).await, "topic");
}

pub(super) async fn delete_removes_everything(s: Store) {
    let t = topic_on(&s, "node-a", "doomed", 2).await;
    let keep = topic_on(&s, "node-a", "kept", 1).await;
    let commits = vec![
        commit(
            &t,
            0,
            0,
            vec![entry(&t, 0, 0, 10, "obj-1")],
            vec![snapshot(7, 3)],
        ),
        commit(
            &t,
            1,
            0,
            vec![entry(&t, 1, 0, 5, "obj-1")],
            vec![snapshot(8, 1)],
        ),
        commit(&keep, 0, 0, vec![entry(&keep, 0, 0, 4, "obj-1")], vec![]),
    ];
    s.commit_manifest("node-a", &commits).await.expect("commit");
    assert_eq!(s.manifest_references("obj-1").await.expect("refs"), 3);

    let mut removed = s.delete_topic(t.id).await.expect("delete");
    removed.sort_by_key(|e| (e.partition, e.base_offset));
    assert_eq!(
        removed,
        vec![entry(&t, 0, 0, 10, "obj-1"), entry(&t, 1, 0, 5, "obj-1")]
    );

    assert_eq!(s.get_topic_by_id(t.id).await.expect("get"), None);
    assert_eq!(
        s.get_topic(t.cluster_id, "doomed").await.expect("get"),
        None
    );
    assert_eq!(s.list_partition_owners(t.id).await.expect("owners"), vec![]);
    assert_eq!(s.list_manifest(t.id, 0).await.expect("manifest"), vec![]);
    assert_eq!(s.producer_snapshots(t.id, 0).await.expect("snaps"), vec![]);
    assert_eq!(s.producer_snapshots(t.id, 1).await.expect("snaps"), vec![]);
    assert_eq!(s.manifest_references("obj-1").await.expect("refs"), 1);
    assert_eq!(
        s.list_partitions_of_node("node-a").await.expect("of node"),
        owners(&keep, "node-a")
    );
    assert_eq!(
        s.list_manifest(keep.id, 0).await.expect("manifest").len(),
        1
    );

    // The old owner's late upload is fenced, and writes nothing.
    let late = commit(
        &t,
        0,
        0,
        vec![entry(&t, 0, 10, 20, "obj-2")],
        vec![snapshot(7, 4)],
    );
    assert_conflict(
        s.commit_manifest("node-a", &[late]).await,
        &[&t.id.to_string()],
    );
    assert_eq!(s.manifest_references("obj-2").await.expect("refs"), 0);
    assert_eq!(s.producer_snapshots(t.id, 0).await.expect("snaps"), vec![]);

    assert_not_found(s.delete_topic(t.id).await, "topic");
    // The name is free again.
    let reborn = topic(t.cluster_id, "doomed", 1);
    s.create_topic(&reborn, &owners(&reborn, "node-b"))
        .await
        .expect("recreate under the same name");
}
