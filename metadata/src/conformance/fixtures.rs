//! Records the cases build on.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::Store;
use crate::store::PartitionCommit;
use crate::types::*;

pub(super) fn account(id: &str) -> Account {
    Account {
        id: id.to_string(),
        name: format!("account {id}"),
        created_ms: 1_700_000_000_000,
    }
}

pub(super) fn cluster(account_id: &str, name: &str) -> Cluster {
    Cluster {
        id: Uuid::new_v4(),
        account_id: account_id.to_string(),
        name: name.to_string(),
        region: "us-east-1".to_string(),
        created_ms: 1_700_000_000_001,
    }
}

pub(super) fn access_key(id: &str, account_id: &str) -> AccessKey {
    AccessKey {
        id: id.to_string(),
        sealed_secret: vec![0, 1, 2, 0xff, 0x80],
        account_id: account_id.to_string(),
        principal: "user/dev".to_string(),
        status: KeyStatus::Active,
        expires_ms: None,
        created_ms: 1_700_000_000_002,
    }
}

pub(super) fn topic(cluster_id: Uuid, name: &str, partitions: i32) -> Topic {
    let mut configs = BTreeMap::new();
    configs.insert("retention.ms".to_string(), "604800000".to_string());
    configs.insert("cleanup.policy".to_string(), "delete".to_string());
    Topic {
        id: Uuid::new_v4(),
        cluster_id,
        name: name.to_string(),
        partitions,
        configs,
        version: 0,
        created_ms: 1_700_000_000_003,
    }
}

pub(super) fn owner(t: &Topic, partition: i32, node: &str) -> PartitionOwner {
    PartitionOwner {
        topic_id: t.id,
        partition,
        node_id: node.to_string(),
        epoch: 0,
        log_start_offset: 0,
    }
}

pub(super) fn owners(t: &Topic, node: &str) -> Vec<PartitionOwner> {
    (0..t.partitions).map(|p| owner(t, p, node)).collect()
}

/// Creates a topic in a fresh cluster with every partition owned by `node` at epoch 0.
pub(super) async fn topic_on(store: &Store, node: &str, name: &str, partitions: i32) -> Topic {
    let t = topic(Uuid::new_v4(), name, partitions);
    store
        .create_topic(&t, &owners(&t, node))
        .await
        .expect("create_topic");
    t
}

pub(super) fn entry(t: &Topic, partition: i32, base: i64, end: i64, key: &str) -> ManifestEntry {
    ManifestEntry {
        topic_id: t.id,
        partition,
        base_offset: base,
        end_offset: end,
        max_timestamp_ms: 1_700_000_000_000 + end,
        object_key: key.to_string(),
        position: u64::try_from(base).unwrap_or(0) * 100,
        length: u64::try_from(end - base).unwrap_or(0) * 100,
    }
}

pub(super) fn snapshot(producer_id: i64, last_sequence: i32) -> ProducerSnapshot {
    ProducerSnapshot {
        producer_id,
        producer_epoch: 0,
        last_sequence,
        last_offset: i64::from(last_sequence) * 10,
    }
}

pub(super) fn commit(
    t: &Topic,
    partition: i32,
    epoch: i32,
    entries: Vec<ManifestEntry>,
    producers: Vec<ProducerSnapshot>,
) -> PartitionCommit {
    PartitionCommit {
        topic_id: t.id,
        partition,
        epoch,
        entries,
        producers,
    }
}
