//! Read-modify-write under contention: a store that lets a rival writer change the topic just
//! before each of the service's conditional writes.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use fjord_metadata::error::Result;
use fjord_metadata::store::PartitionCommit;
use fjord_metadata::*;
use uuid::Uuid;

use super::tests::{node, NOW};
use super::*;

/// Delegates to SQLite, but before each `update_topic` (while `rivals` is positive) a rival
/// sets `retention.ms=123` on the same topic, so the caller's conditional write loses.
struct Meddling {
    inner: SqliteStore,
    rivals: AtomicU32,
}

#[async_trait]
impl MetadataStore for Meddling {
    async fn update_topic(&self, topic: &Topic, new_owners: &[PartitionOwner]) -> Result<Topic> {
        if self
            .rivals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let mut rival = self.inner.get_topic_by_id(topic.id).await?.unwrap();
            rival.configs.insert("retention.ms".into(), "123".into());
            self.inner.update_topic(&rival, &[]).await?;
        }
        self.inner.update_topic(topic, new_owners).await
    }
    async fn create_account(&self, account: &Account) -> Result<()> {
        self.inner.create_account(account).await
    }
    async fn get_account(&self, id: &str) -> Result<Option<Account>> {
        self.inner.get_account(id).await
    }
    async fn create_cluster(&self, cluster: &Cluster) -> Result<()> {
        self.inner.create_cluster(cluster).await
    }
    async fn get_cluster(&self, id: Uuid) -> Result<Option<Cluster>> {
        self.inner.get_cluster(id).await
    }
    async fn get_cluster_by_name(&self, account_id: &str, name: &str) -> Result<Option<Cluster>> {
        self.inner.get_cluster_by_name(account_id, name).await
    }
    async fn list_clusters(&self, account_id: &str) -> Result<Vec<Cluster>> {
        self.inner.list_clusters(account_id).await
    }
    async fn create_access_key(&self, key: &AccessKey) -> Result<()> {
        self.inner.create_access_key(key).await
    }
    async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>> {
        self.inner.get_access_key(id).await
    }
    async fn list_access_keys(&self, account_id: &str) -> Result<Vec<AccessKey>> {
        self.inner.list_access_keys(account_id).await
    }
    async fn set_access_key_status(&self, id: &str, status: KeyStatus) -> Result<()> {
        self.inner.set_access_key_status(id, status).await
    }
    async fn delete_access_key(&self, id: &str) -> Result<()> {
        self.inner.delete_access_key(id).await
    }
    async fn create_topic(&self, topic: &Topic, owners: &[PartitionOwner]) -> Result<()> {
        self.inner.create_topic(topic, owners).await
    }
    async fn get_topic(&self, cluster_id: Uuid, name: &str) -> Result<Option<Topic>> {
        self.inner.get_topic(cluster_id, name).await
    }
    async fn get_topic_by_id(&self, topic_id: Uuid) -> Result<Option<Topic>> {
        self.inner.get_topic_by_id(topic_id).await
    }
    async fn list_topics(&self, cluster_id: Uuid) -> Result<Vec<Topic>> {
        self.inner.list_topics(cluster_id).await
    }
    async fn delete_topic(&self, topic_id: Uuid) -> Result<Vec<ManifestEntry>> {
        self.inner.delete_topic(topic_id).await
    }
    async fn list_partition_owners(&self, topic_id: Uuid) -> Result<Vec<PartitionOwner>> {
        self.inner.list_partition_owners(topic_id).await
    }
    async fn get_partition_owner(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Option<PartitionOwner>> {
        self.inner.get_partition_owner(topic_id, partition).await
    }
    async fn list_partitions_of_node(&self, node_id: &str) -> Result<Vec<PartitionOwner>> {
        self.inner.list_partitions_of_node(node_id).await
    }
    async fn claim_partition(
        &self,
        topic_id: Uuid,
        partition: i32,
        node_id: &str,
        expected_epoch: i32,
    ) -> Result<PartitionOwner> {
        self.inner
            .claim_partition(topic_id, partition, node_id, expected_epoch)
            .await
    }
    async fn advance_log_start(
        &self,
        topic_id: Uuid,
        partition: i32,
        epoch: i32,
        log_start_offset: i64,
    ) -> Result<Vec<ManifestEntry>> {
        self.inner
            .advance_log_start(topic_id, partition, epoch, log_start_offset)
            .await
    }
    async fn register_node(&self, node: &NodeInfo) -> Result<()> {
        self.inner.register_node(node).await
    }
    async fn heartbeat_node(&self, node_id: &str, now_ms: Millis) -> Result<()> {
        self.inner.heartbeat_node(node_id, now_ms).await
    }
    async fn get_node(&self, node_id: &str) -> Result<Option<NodeInfo>> {
        self.inner.get_node(node_id).await
    }
    async fn list_nodes(&self) -> Result<Vec<NodeInfo>> {
        self.inner.list_nodes().await
    }
    async fn heartbeat_gateway(&self, gateway_id: &str, now_ms: Millis) -> Result<()> {
        self.inner.heartbeat_gateway(gateway_id, now_ms).await
    }
    async fn list_gateways(&self) -> Result<Vec<GatewayInfo>> {
        self.inner.list_gateways().await
    }
    async fn remove_gateway(&self, gateway_id: &str) -> Result<()> {
        self.inner.remove_gateway(gateway_id).await
    }
    async fn commit_manifest(&self, node_id: &str, commits: &[PartitionCommit]) -> Result<()> {
        self.inner.commit_manifest(node_id, commits).await
    }
    async fn list_manifest(&self, topic_id: Uuid, partition: i32) -> Result<Vec<ManifestEntry>> {
        self.inner.list_manifest(topic_id, partition).await
    }
    async fn manifest_references(&self, object_key: &str) -> Result<usize> {
        self.inner.manifest_references(object_key).await
    }
    async fn producer_snapshots(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Vec<ProducerSnapshot>> {
        self.inner.producer_snapshots(topic_id, partition).await
    }
    async fn commit_offsets(
        &self,
        cluster_id: Uuid,
        group: &str,
        offsets: &[CommittedOffset],
    ) -> Result<()> {
        self.inner.commit_offsets(cluster_id, group, offsets).await
    }
    async fn fetch_offsets(&self, cluster_id: Uuid, group: &str) -> Result<Vec<CommittedOffset>> {
        self.inner.fetch_offsets(cluster_id, group).await
    }
    async fn delete_group_offsets(&self, cluster_id: Uuid, group: &str) -> Result<()> {
        self.inner.delete_group_offsets(cluster_id, group).await
    }
    async fn list_offset_groups(&self, cluster_id: Uuid) -> Result<Vec<String>> {
        self.inner.list_offset_groups(cluster_id).await
    }
    async fn allocate_producer_ids(&self, count: i64) -> Result<i64> {
        self.inner.allocate_producer_ids(count).await
    }
    async fn delete_cluster(&self, id: Uuid) -> Result<()> {
        self.inner.delete_cluster(id).await
    }
    async fn create_principal(&self, principal: &Principal) -> Result<()> {
        self.inner.create_principal(principal).await
    }
    async fn get_principal(&self, account_id: &str, name: &str) -> Result<Option<Principal>> {
        self.inner.get_principal(account_id, name).await
    }
    async fn list_principals(&self, account_id: &str) -> Result<Vec<Principal>> {
        self.inner.list_principals(account_id).await
    }
    async fn update_principal(&self, principal: &Principal) -> Result<Principal> {
        self.inner.update_principal(principal).await
    }
    async fn delete_principal(&self, account_id: &str, name: &str) -> Result<()> {
        self.inner.delete_principal(account_id, name).await
    }
    async fn auth_epoch(&self) -> Result<i64> {
        self.inner.auth_epoch().await
    }
    async fn get_cluster_settings(&self, cluster_id: Uuid) -> Result<Option<ClusterSettings>> {
        self.inner.get_cluster_settings(cluster_id).await
    }
    async fn put_cluster_settings(&self, settings: &ClusterSettings) -> Result<ClusterSettings> {
        self.inner.put_cluster_settings(settings).await
    }
    async fn create_acls(&self, cluster_id: Uuid, bindings: &[String]) -> Result<usize> {
        self.inner.create_acls(cluster_id, bindings).await
    }
    async fn list_acls(&self, cluster_id: Uuid) -> Result<Vec<String>> {
        self.inner.list_acls(cluster_id).await
    }
    async fn delete_acls(&self, cluster_id: Uuid, bindings: &[String]) -> Result<Vec<String>> {
        self.inner.delete_acls(cluster_id, bindings).await
    }
    async fn record_usage(&self, record: &UsageRecord) -> Result<()> {
        self.inner.record_usage(record).await
    }
    async fn list_usage(
        &self,
        cluster_id: Uuid,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<UsageRecord>> {
        self.inner.list_usage(cluster_id, from_ms, to_ms).await
    }
}

async fn setup(rivals: u32, attempts: u32) -> (tempfile::TempDir, Arc<Meddling>, TopicService) {
    let dir = tempfile::tempdir().unwrap();
    let inner = SqliteStore::open(&dir.path().join("meta.db")).unwrap();
    node(&inner, "node-1", NOW).await;
    let store = Arc::new(Meddling {
        inner,
        rivals: AtomicU32::new(0),
    });
    let svc = TopicService::with_config(
        store.clone(),
        TopicServiceConfig {
            conflict_attempts: attempts,
            ..TopicServiceConfig::default()
        },
    );
    svc.create_topic(Uuid::nil(), "t", 1, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    store.rivals.store(rivals, Ordering::SeqCst);
    (dir, store, svc)
}

#[tokio::test]
async fn config_changes_retry_on_fresh_state() {
    let (_dir, store, svc) = setup(2, 3).await;
    let info = svc
        .incremental_alter_configs(
            Uuid::nil(),
            "t",
            &[ConfigAlteration {
                name: "compression.type".into(),
                op: AlterOp::Set("zstd".into()),
            }],
            false,
        )
        .await
        .unwrap();
    // The rival's change survived: the retry re-read instead of overwriting it.
    assert_eq!(info.topic.configs["retention.ms"], "123");
    assert_eq!(info.topic.configs["compression.type"], "zstd");
    assert_eq!(store.rivals.load(Ordering::SeqCst), 0);
    let cached = svc.lookup(Uuid::nil(), "t").await.unwrap().unwrap();
    assert_eq!(cached.topic.version, info.topic.version);
}

#[tokio::test]
async fn partition_growth_retries_on_fresh_state() {
    let (_dir, store, svc) = setup(1, 3).await;
    let info = svc
        .create_partitions(Uuid::nil(), "t", 3, false, NOW)
        .await
        .unwrap();
    assert_eq!((info.topic.partitions, info.owners.len()), (3, 3));
    assert_eq!(info.topic.configs["retention.ms"], "123");
    let owners = store
        .inner
        .list_partition_owners(info.topic.id)
        .await
        .unwrap();
    assert_eq!(owners.len(), 3);
}

#[tokio::test]
async fn endless_contention_gives_up_with_a_retriable_error() {
    let (_dir, store, svc) = setup(100, 3).await;
    let e = svc
        .alter_configs(Uuid::nil(), "t", BTreeMap::new(), false)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), 56);
    assert_eq!(
        e.to_string(),
        "topic 't' was changed concurrently 3 times; retry the request"
    );
    assert_eq!(store.rivals.load(Ordering::SeqCst), 97);
}
