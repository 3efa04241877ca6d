//! Tests of the topic service against a real SQLite metadata store.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use fjord_metadata::{MetadataStore, NodeInfo, SqliteStore};
use tempfile::TempDir;
use uuid::Uuid;

use super::*;

pub(crate) const NOW: i64 = 1_700_000_000_000;

pub(crate) struct Fixture {
    _dir: TempDir,
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) svc: TopicService,
    pub(crate) cluster: Uuid,
}

pub(crate) async fn node(store: &SqliteStore, id: &str, heartbeat_ms: i64) {
    store
        .register_node(&NodeInfo {
            id: id.into(),
            rpc_addr: "127.0.0.1:7000".into(),
            cert_der: Vec::new(),
            heartbeat_ms,
        })
        .await
        .unwrap();
}

pub(crate) async fn fixture_with(config: TopicServiceConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
    node(&store, "node-1", NOW).await;
    let svc = TopicService::with_config(store.clone(), config);
    Fixture {
        _dir: dir,
        store,
        svc,
        cluster: Uuid::from_u128(7),
    }
}

pub(crate) async fn fixture() -> Fixture {
    fixture_with(TopicServiceConfig::default()).await
}

pub(crate) fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn create_stores_topic_owners_and_limits() {
    let f = fixture().await;
    let configs = cfg(&[
        ("retention.ms", "1000"),
        ("max.message.bytes", " 2000000 "),
        ("message.timestamp.type", "LogAppendTime"),
    ]);
    let info = f
        .svc
        .create_topic(f.cluster, "orders", 3, configs, false, NOW)
        .await
        .unwrap();
    assert_eq!(info.topic.partitions, 3);
    assert_eq!(info.topic.created_ms, NOW);
    assert_eq!(info.topic.configs["max.message.bytes"], "2000000");
    assert_eq!(info.limits.max_message_bytes, 2_000_000);
    assert!(info.limits.log_append_time);
    let parts: Vec<_> = info.owners.iter().map(|o| o.partition).collect();
    assert_eq!(parts, vec![0, 1, 2]);
    assert!(info
        .owners
        .iter()
        .all(|o| o.node_id == "node-1" && o.epoch == 0 && o.log_start_offset == 0));

    let stored = f
        .store
        .get_topic(f.cluster, "orders")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, info.topic.id);
    assert_eq!(
        f.store
            .list_partition_owners(stored.id)
            .await
            .unwrap()
            .len(),
        3
    );

    let by_name = f.svc.lookup(f.cluster, "orders").await.unwrap().unwrap();
    assert_eq!(by_name.topic.id, stored.id);
    let by_id = f
        .svc
        .lookup_by_id(f.cluster, stored.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id.topic.name, "orders");
    // Another tenant sees nothing, by name or by id.
    let other = Uuid::from_u128(8);
    assert!(f.svc.lookup(other, "orders").await.unwrap().is_none());
    assert!(f
        .svc
        .lookup_by_id(other, stored.id)
        .await
        .unwrap()
        .is_none());
    let listed = f.svc.list(f.cluster).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(f.svc.list(other).await.unwrap().is_empty());
}

#[tokio::test]
async fn default_and_invalid_partition_counts() {
    let f = fixture().await;
    let info = f
        .svc
        .create_topic(f.cluster, "d", -1, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    assert_eq!(info.topic.partitions, 1);
    for bad in [0, -2] {
        let e = f
            .svc
            .create_topic(f.cluster, "bad", bad, BTreeMap::new(), false, NOW)
            .await
            .unwrap_err();
        assert_eq!(e.kafka_code(), 37, "{bad}");
        assert!(e.to_string().contains(&format!("got {bad}")), "{e}");
    }
}

#[tokio::test]
async fn duplicates_collisions_and_bad_names_are_refused() {
    let f = fixture().await;
    f.svc
        .create_topic(f.cluster, "a.b", 1, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    let e = f
        .svc
        .create_topic(f.cluster, "a.b", 1, BTreeMap::new(), false, NOW)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), 36);
    assert_eq!(e.to_string(), "topic 'a.b' already exists");
    let e = f
        .svc
        .create_topic(f.cluster, "a_b", 1, BTreeMap::new(), false, NOW)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), 17);
    assert!(
        e.to_string().contains("collides with existing topic 'a.b'"),
        "{e}"
    );
    // The same name in another cluster is fine.
    f.svc
        .create_topic(Uuid::from_u128(9), "a.b", 1, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    for name in ["", "..", "x y", "__consumer_offsets"] {
        let e = f
            .svc
            .create_topic(f.cluster, name, 1, BTreeMap::new(), false, NOW)
            .await
            .unwrap_err();
        assert_eq!(e.kafka_code(), 17, "{name:?}");
    }
}

#[tokio::test]
async fn invalid_configs_are_refused_and_nothing_is_stored() {
    let f = fixture().await;
    let cases: &[(&str, &str, i16, &str)] = &[
        ("foo.bar", "1", 40, "unknown topic config \"foo.bar\""),
        (
            "cleanup.policy",
            "compact",
            40,
            "compaction is not supported yet",
        ),
        (
            "cleanup.policy",
            "delete,compact",
            40,
            "compaction is not supported yet",
        ),
        (
            "cleanup.policy",
            "shred",
            40,
            "\"shred\" is not one of delete, compact",
        ),
        (
            "max.message.bytes",
            "40000000",
            40,
            "max.message.bytes 40000000 exceeds the limit 33554432",
        ),
        ("max.message.bytes", "-5", 40, "must be at least 0"),
        (
            "retention.ms",
            "0",
            40,
            "must be -1 (unlimited) or greater than 0",
        ),
        ("retention.bytes", "abc", 40, "not a 64-bit integer"),
        (
            "compression.type",
            "brotli",
            40,
            "must be one of uncompressed, zstd",
        ),
        (
            "message.timestamp.type",
            "createtime",
            40,
            "CreateTime, LogAppendTime",
        ),
        (
            "message.timestamp.difference.max.ms",
            "-1",
            40,
            "must be at least 0",
        ),
        ("segment.bytes", "1000", 44, "segment.bytes is read-only"),
        (
            "min.insync.replicas",
            "1",
            44,
            "min.insync.replicas is read-only",
        ),
    ];
    for (name, value, code, needle) in cases {
        let e = f
            .svc
            .create_topic(f.cluster, "t", 1, cfg(&[(name, value)]), false, NOW)
            .await
            .unwrap_err();
        assert_eq!(e.kafka_code(), *code, "{name}={value}: {e}");
        assert!(e.to_string().contains(needle), "{name}={value}: {e}");
    }
    assert!(f.svc.list(f.cluster).await.unwrap().is_empty());
    // Valid edge values pass.
    let ok = cfg(&[
        ("retention.ms", "-1"),
        ("retention.bytes", "-1"),
        ("cleanup.policy", "delete"),
        ("max.message.bytes", "33554432"),
        ("compression.type", "zstd"),
    ]);
    f.svc
        .create_topic(f.cluster, "t", 1, ok, false, NOW)
        .await
        .unwrap();
}

#[tokio::test]
async fn validate_only_stores_nothing() {
    let f = fixture().await;
    let info = f
        .svc
        .create_topic(f.cluster, "v", 4, BTreeMap::new(), true, NOW)
        .await
        .unwrap();
    assert_eq!(info.owners.len(), 4);
    assert!(f.store.get_topic(f.cluster, "v").await.unwrap().is_none());
    assert!(f.svc.lookup(f.cluster, "v").await.unwrap().is_none());
}

#[tokio::test]
async fn no_live_node_is_a_retriable_error() {
    let f = fixture().await;
    let later = NOW + 31_000;
    let e = f
        .svc
        .create_topic(f.cluster, "t", 1, BTreeMap::new(), false, later)
        .await
        .unwrap_err();
    assert!(matches!(e, TopicError::NoLiveNodes { .. }));
    assert_eq!(e.kafka_code(), 56);
    node(&f.store, "node-2", later).await;
    let info = f
        .svc
        .create_topic(f.cluster, "t", 2, BTreeMap::new(), false, later)
        .await
        .unwrap();
    assert!(info.owners.iter().all(|o| o.node_id == "node-2"));
}

#[tokio::test]
async fn partitions_spread_over_live_nodes() {
    let f = fixture().await;
    node(&f.store, "node-2", NOW).await;
    f.svc
        .create_topic(f.cluster, "one", 1, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    let info = f
        .svc
        .create_topic(f.cluster, "two", 5, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    let on_1 = info.owners.iter().filter(|o| o.node_id == "node-1").count();
    let on_2 = info.owners.iter().filter(|o| o.node_id == "node-2").count();
    // node-1 already owns one partition, so node-2 gets one more of the five.
    assert_eq!((on_1, on_2), (2, 3));
}

#[tokio::test]
async fn cluster_partition_limit() {
    let f = fixture_with(TopicServiceConfig {
        max_partitions_per_cluster: 10,
        ..TopicServiceConfig::default()
    })
    .await;
    f.svc
        .create_topic(f.cluster, "a", 8, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    let e = f
        .svc
        .create_topic(f.cluster, "b", 3, BTreeMap::new(), false, NOW)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), 42);
    assert!(e.to_string().contains("over its limit of 10"), "{e}");
    let e = f
        .svc
        .create_partitions(f.cluster, "a", 11, false, NOW)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), 42);
    f.svc
        .create_partitions(f.cluster, "a", 10, false, NOW)
        .await
        .unwrap();
    // Other clusters have their own budget.
    f.svc
        .create_topic(Uuid::from_u128(9), "b", 10, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
}

#[tokio::test]
async fn changes_through_the_service_invalidate_the_cache() {
    let f = fixture().await;
    let created = f
        .svc
        .create_topic(f.cluster, "t", 1, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    let first = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    assert_eq!(first.limits.max_message_bytes, 1_048_588);

    f.svc
        .create_partitions(f.cluster, "t", 4, false, NOW)
        .await
        .unwrap();
    let grown = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    assert_eq!((grown.topic.partitions, grown.owners.len()), (4, 4));
    let by_id = f
        .svc
        .lookup_by_id(f.cluster, created.topic.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id.topic.partitions, 4);

    f.svc
        .alter_configs(f.cluster, "t", cfg(&[("max.message.bytes", "777")]), false)
        .await
        .unwrap();
    assert_eq!(
        f.svc
            .lookup(f.cluster, "t")
            .await
            .unwrap()
            .unwrap()
            .limits
            .max_message_bytes,
        777
    );
    assert_eq!(
        f.svc
            .lookup_by_id(f.cluster, created.topic.id)
            .await
            .unwrap()
            .unwrap()
            .limits
            .max_message_bytes,
        777
    );

    f.svc.delete_topic(f.cluster, "t").await.unwrap();
    assert!(f.svc.lookup(f.cluster, "t").await.unwrap().is_none());
    assert!(f
        .svc
        .lookup_by_id(f.cluster, created.topic.id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn changes_elsewhere_are_seen_after_invalidation() {
    let f = fixture().await;
    // A second gateway sharing the metadata store.
    let other = TopicService::new(f.store.clone());
    assert!(f.svc.lookup(f.cluster, "t").await.unwrap().is_none());
    other
        .create_topic(f.cluster, "t", 1, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    // The miss is cached (for the short negative TTL) ...
    assert!(f.svc.lookup(f.cluster, "t").await.unwrap().is_none());
    // ... until it expires or is invalidated.
    f.svc.invalidate(f.cluster, "t").await;
    let seen = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    assert_eq!(seen.topic.partitions, 1);

    other
        .create_partitions(f.cluster, "t", 3, false, NOW)
        .await
        .unwrap();
    assert_eq!(
        f.svc
            .lookup(f.cluster, "t")
            .await
            .unwrap()
            .unwrap()
            .topic
            .partitions,
        1
    );
    // list() reads the topic list fresh and notices the newer version.
    assert_eq!(f.svc.list(f.cluster).await.unwrap()[0].topic.partitions, 3);
    assert_eq!(
        f.svc
            .lookup(f.cluster, "t")
            .await
            .unwrap()
            .unwrap()
            .topic
            .partitions,
        3
    );

    other
        .alter_configs(f.cluster, "t", cfg(&[("retention.ms", "1")]), false)
        .await
        .unwrap();
    f.svc.invalidate_id(seen.topic.id).await;
    let fresh = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    assert_eq!(fresh.topic.configs, cfg(&[("retention.ms", "1")]));
}

#[tokio::test]
async fn ids_come_from_the_id_source() {
    let f = fixture().await;
    let svc = TopicService::new(f.store.clone()).with_id_source(|| Uuid::from_u128(42));
    let info = svc
        .create_topic(f.cluster, "t", 1, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    assert_eq!(info.topic.id, Uuid::from_u128(42));
}

#[test]
fn config_validation_names_the_bad_setting() {
    assert!(TopicServiceConfig::default().validate().is_ok());
    let bad = TopicServiceConfig {
        max_message_bytes_limit: 1000,
        ..TopicServiceConfig::default()
    };
    assert!(bad
        .validate()
        .unwrap_err()
        .contains("max_message_bytes_limit"));
    let bad = TopicServiceConfig {
        default_partitions: 0,
        ..TopicServiceConfig::default()
    };
    assert!(bad.validate().unwrap_err().contains("default_partitions"));
}
