//! Tests of topic management (configs, partitions, deletion) against a real SQLite store.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use fjord_metadata::MetadataStore;
use uuid::Uuid;

use super::tests::{cfg, fixture, NOW};
use super::*;

#[tokio::test]
async fn describe_shows_defaults_then_overrides() {
    let f = fixture().await;
    f.svc
        .create_topic(f.cluster, "t", 1, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    let entries = f.svc.describe_configs(f.cluster, "t").await.unwrap();
    let get =
        |entries: &[ConfigEntry], n: &str| entries.iter().find(|e| e.name == n).cloned().unwrap();
    for (name, value) in [
        ("cleanup.policy", "delete"),
        ("compression.type", "producer"),
        ("max.message.bytes", "1048588"),
        ("message.timestamp.difference.max.ms", "9223372036854775807"),
        ("message.timestamp.type", "CreateTime"),
        ("retention.bytes", "268435456000"),
        ("retention.ms", "604800000"),
    ] {
        let e = get(&entries, name);
        assert_eq!(e.value.as_deref(), Some(value), "{name}");
        assert!(e.is_default && !e.read_only, "{name}");
        assert_eq!(e.source, ConfigSource::Default);
    }
    let seg = get(&entries, "segment.bytes");
    assert!(seg.read_only);
    assert_eq!(seg.config_type, ConfigType::Int);

    f.svc
        .incremental_alter_configs(
            f.cluster,
            "t",
            &[ConfigAlteration {
                name: "retention.ms".into(),
                op: AlterOp::Set("1000".into()),
            }],
            false,
        )
        .await
        .unwrap();
    let entries = f.svc.describe_configs(f.cluster, "t").await.unwrap();
    let r = get(&entries, "retention.ms");
    assert_eq!(r.value.as_deref(), Some("1000"));
    assert!(!r.is_default);
    assert_eq!(r.source, ConfigSource::TopicOverride);
    let syn: Vec<_> = r
        .synonyms
        .iter()
        .map(|s| (s.name.as_str(), s.value.as_str()))
        .collect();
    assert_eq!(
        syn,
        vec![("retention.ms", "1000"), ("log.retention.ms", "604800000")]
    );
    let e = f.svc.describe_configs(f.cluster, "nope").await.unwrap_err();
    assert_eq!(e.kafka_code(), 3);
}

#[tokio::test]
async fn incremental_alter_set_delete_append() {
    let f = fixture().await;
    f.svc
        .create_topic(
            f.cluster,
            "t",
            1,
            cfg(&[("retention.ms", "5000")]),
            false,
            NOW,
        )
        .await
        .unwrap();
    let op = |name: &str, op: AlterOp| ConfigAlteration {
        name: name.into(),
        op,
    };
    let info = f
        .svc
        .incremental_alter_configs(
            f.cluster,
            "t",
            &[
                op("compression.type", AlterOp::Set("zstd".into())),
                op("retention.ms", AlterOp::Delete),
                op("cleanup.policy", AlterOp::Append("delete".into())),
            ],
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        info.topic.configs,
        cfg(&[("cleanup.policy", "delete"), ("compression.type", "zstd")])
    );
    let stored = f.store.get_topic(f.cluster, "t").await.unwrap().unwrap();
    assert_eq!(stored.configs, info.topic.configs);

    let refused: &[(ConfigAlteration, i16, &str)] = &[
        (
            op("cleanup.policy", AlterOp::Append("compact".into())),
            40,
            "compaction is not supported yet",
        ),
        (
            op("cleanup.policy", AlterOp::Subtract("delete".into())),
            40,
            "the list is empty",
        ),
        (
            op("retention.ms", AlterOp::Append("1".into())),
            40,
            "not a list",
        ),
        (op("segment.ms", AlterOp::Set("1".into())), 44, "read-only"),
        (
            op("nope", AlterOp::Delete),
            40,
            "unknown topic config \"nope\"",
        ),
    ];
    for (alteration, code, needle) in refused {
        let e = f
            .svc
            .incremental_alter_configs(f.cluster, "t", std::slice::from_ref(alteration), false)
            .await
            .unwrap_err();
        assert_eq!(e.kafka_code(), *code, "{alteration:?}");
        assert!(e.to_string().contains(needle), "{alteration:?}: {e}");
    }
    let e = f
        .svc
        .incremental_alter_configs(
            f.cluster,
            "t",
            &[
                op("retention.ms", AlterOp::Set("1".into())),
                op("retention.ms", AlterOp::Delete),
            ],
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), 42);
    // Validate-only changes nothing; failed requests changed nothing either.
    f.svc
        .incremental_alter_configs(
            f.cluster,
            "t",
            &[op("retention.ms", AlterOp::Set("1".into()))],
            true,
        )
        .await
        .unwrap();
    let after = f.store.get_topic(f.cluster, "t").await.unwrap().unwrap();
    assert_eq!(after.configs, stored.configs);
    assert_eq!(after.version, stored.version);
}

#[tokio::test]
async fn alter_configs_replaces_everything() {
    let f = fixture().await;
    f.svc
        .create_topic(
            f.cluster,
            "t",
            1,
            cfg(&[("retention.ms", "5000"), ("compression.type", "lz4")]),
            false,
            NOW,
        )
        .await
        .unwrap();
    let info = f
        .svc
        .alter_configs(f.cluster, "t", cfg(&[("max.message.bytes", "100")]), false)
        .await
        .unwrap();
    assert_eq!(info.topic.configs, cfg(&[("max.message.bytes", "100")]));
    assert_eq!(info.limits.max_message_bytes, 100);
    let e = f
        .svc
        .alter_configs(f.cluster, "t", cfg(&[("retention.ms", "x")]), false)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), 40);
    let e = f
        .svc
        .alter_configs(f.cluster, "missing", BTreeMap::new(), false)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), 3);
}

#[tokio::test]
async fn create_partitions_only_grows() {
    let f = fixture().await;
    f.svc
        .create_topic(f.cluster, "t", 3, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    let info = f
        .svc
        .create_partitions(f.cluster, "t", 5, false, NOW)
        .await
        .unwrap();
    assert_eq!(info.topic.partitions, 5);
    let parts: Vec<_> = info.owners.iter().map(|o| (o.partition, o.epoch)).collect();
    assert_eq!(parts, vec![(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)]);
    assert_eq!(
        f.store
            .list_partition_owners(info.topic.id)
            .await
            .unwrap()
            .len(),
        5
    );

    let e = f
        .svc
        .create_partitions(f.cluster, "t", 2, false, NOW)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), 37);
    assert!(
        e.to_string()
            .contains("has 5 partitions, more than the requested 2"),
        "{e}"
    );
    let e = f
        .svc
        .create_partitions(f.cluster, "t", 5, false, NOW)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), 37);
    assert!(e.to_string().contains("already has 5 partitions"), "{e}");
    let e = f
        .svc
        .create_partitions(f.cluster, "x", 5, false, NOW)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), 3);

    let v = f
        .svc
        .create_partitions(f.cluster, "t", 9, true, NOW)
        .await
        .unwrap();
    assert_eq!(v.owners.len(), 9);
    assert_eq!(
        f.store
            .get_topic(f.cluster, "t")
            .await
            .unwrap()
            .unwrap()
            .partitions,
        5
    );
}

#[tokio::test]
async fn delete_by_name_and_id() {
    let f = fixture().await;
    let a = f
        .svc
        .create_topic(f.cluster, "a", 2, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    let b = f
        .svc
        .create_topic(f.cluster, "b", 1, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    let deleted = f.svc.delete_topic(f.cluster, "a").await.unwrap();
    assert_eq!(deleted.id, a.topic.id);
    assert!(f.store.get_topic(f.cluster, "a").await.unwrap().is_none());
    assert!(f
        .store
        .list_partition_owners(a.topic.id)
        .await
        .unwrap()
        .is_empty());
    let e = f.svc.delete_topic(f.cluster, "a").await.unwrap_err();
    assert_eq!(e.kafka_code(), 3);

    // Another cluster cannot delete b by its id.
    let e = f
        .svc
        .delete_topic_by_id(Uuid::from_u128(9), b.topic.id)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), 100);
    let deleted = f
        .svc
        .delete_topic_by_id(f.cluster, b.topic.id)
        .await
        .unwrap();
    assert_eq!(deleted.name, "b");
    assert!(f.svc.list(f.cluster).await.unwrap().is_empty());
}
