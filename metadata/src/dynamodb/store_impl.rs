//! `impl MetadataStore for DynamoStore`: each method runs in a tracing span named after it and
//! delegates to the module that owns its items.

use async_trait::async_trait;
use tracing::Instrument;
use uuid::Uuid;

use super::DynamoStore;
use crate::error::Result;
use crate::store::{MetadataStore, PartitionCommit};
use crate::types::*;

#[async_trait]
impl MetadataStore for DynamoStore {
    async fn create_account(&self, account: &Account) -> Result<()> {
        self.d_create_account(account)
            .instrument(tracing::debug_span!("dynamodb", op = "create_account"))
            .await
    }

    async fn get_account(&self, id: &str) -> Result<Option<Account>> {
        self.d_get_account(id)
            .instrument(tracing::debug_span!("dynamodb", op = "get_account"))
            .await
    }

    async fn create_cluster(&self, cluster: &Cluster) -> Result<()> {
        self.d_create_cluster(cluster)
            .instrument(tracing::debug_span!("dynamodb", op = "create_cluster"))
            .await
    }

    async fn get_cluster(&self, id: Uuid) -> Result<Option<Cluster>> {
        self.d_get_cluster(id)
            .instrument(tracing::debug_span!("dynamodb", op = "get_cluster"))
            .await
    }

    async fn get_cluster_by_name(&self, account_id: &str, name: &str) -> Result<Option<Cluster>> {
        self.d_get_cluster_by_name(account_id, name)
            .instrument(tracing::debug_span!("dynamodb", op = "get_cluster_by_name"))
            .await
    }

    async fn list_clusters(&self, account_id: &str) -> Result<Vec<Cluster>> {
        self.d_list_clusters(account_id)
            .instrument(tracing::debug_span!("dynamodb", op = "list_clusters"))
            .await
    }

    async fn create_access_key(&self, key: &AccessKey) -> Result<()> {
        self.d_create_access_key(key)
            .instrument(tracing::debug_span!("dynamodb", op = "create_access_key"))
            .await
    }

    async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>> {
        self.d_get_access_key(id)
            .instrument(tracing::debug_span!("dynamodb", op = "get_access_key"))
            .await
    }

    async fn list_access_keys(&self, account_id: &str) -> Result<Vec<AccessKey>> {
        self.d_list_access_keys(account_id)
            .instrument(tracing::debug_span!("dynamodb", op = "list_access_keys"))
            .await
    }

    async fn set_access_key_status(&self, id: &str, status: KeyStatus) -> Result<()> {
        self.d_set_access_key_status(id, status)
            .instrument(tracing::debug_span!(
                "dynamodb",
                op = "set_access_key_status"
            ))
            .await
    }

    async fn delete_access_key(&self, id: &str) -> Result<()> {
        self.d_delete_access_key(id)
            .instrument(tracing::debug_span!("dynamodb", op = "delete_access_key"))
            .await
    }

    async fn create_topic(&self, topic: &Topic, owners: &[PartitionOwner]) -> Result<()> {
        self.d_create_topic(topic, owners)
            .instrument(tracing::debug_span!("dynamodb", op = "create_topic"))
            .await
    }

    async fn get_topic(&self, cluster_id: Uuid, name: &str) -> Result<Option<Topic>> {
        self.d_get_topic(cluster_id, name)
            .instrument(tracing::debug_span!("dynamodb", op = "get_topic"))
            .await
    }

    async fn get_topic_by_id(&self, topic_id: Uuid) -> Result<Option<Topic>> {
        self.d_get_topic_by_id(topic_id)
            .instrument(tracing::debug_span!("dynamodb", op = "get_topic_by_id"))
            .await
    }

    async fn list_topics(&self, cluster_id: Uuid) -> Result<Vec<Topic>> {
        self.d_list_topics(cluster_id)
            .instrument(tracing::debug_span!("dynamodb", op = "list_topics"))
            .await
    }

    async fn update_topic(&self, topic: &Topic, new_owners: &[PartitionOwner]) -> Result<Topic> {
        self.d_update_topic(topic, new_owners)
            .instrument(tracing::debug_span!("dynamodb", op = "update_topic"))
            .await
    }

    async fn delete_topic(&self, topic_id: Uuid) -> Result<Vec<ManifestEntry>> {
        self.d_delete_topic(topic_id)
            .instrument(tracing::debug_span!("dynamodb", op = "delete_topic"))
            .await
    }

    async fn list_partition_owners(&self, topic_id: Uuid) -> Result<Vec<PartitionOwner>> {
        self.d_list_partition_owners(topic_id)
            .instrument(tracing::debug_span!(
                "dynamodb",
                op = "list_partition_owners"
            ))
            .await
    }

    async fn get_partition_owner(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Option<PartitionOwner>> {
        self.d_get_partition_owner(topic_id, partition)
            .instrument(tracing::debug_span!("dynamodb", op = "get_partition_owner"))
            .await
    }

    async fn list_partitions_of_node(&self, node_id: &str) -> Result<Vec<PartitionOwner>> {
        self.d_list_partitions_of_node(node_id)
            .instrument(tracing::debug_span!(
                "dynamodb",
                op = "list_partitions_of_node"
            ))
            .await
    }

    async fn claim_partition(
        &self,
        topic_id: Uuid,
        partition: i32,
        node_id: &str,
        expected_epoch: i32,
    ) -> Result<PartitionOwner> {
        self.d_claim_partition(topic_id, partition, node_id, expected_epoch)
            .instrument(tracing::debug_span!("dynamodb", op = "claim_partition"))
            .await
    }

    async fn advance_log_start(
        &self,
        topic_id: Uuid,
        partition: i32,
        epoch: i32,
        log_start_offset: i64,
    ) -> Result<Vec<ManifestEntry>> {
        self.d_advance_log_start(topic_id, partition, epoch, log_start_offset)
            .instrument(tracing::debug_span!("dynamodb", op = "advance_log_start"))
            .await
    }

    async fn register_node(&self, node: &NodeInfo) -> Result<()> {
        self.d_register_node(node)
            .instrument(tracing::debug_span!("dynamodb", op = "register_node"))
            .await
    }

    async fn heartbeat_node(&self, node_id: &str, now_ms: Millis) -> Result<()> {
        self.d_heartbeat_node(node_id, now_ms)
            .instrument(tracing::debug_span!("dynamodb", op = "heartbeat_node"))
            .await
    }

    async fn get_node(&self, node_id: &str) -> Result<Option<NodeInfo>> {
        self.d_get_node(node_id)
            .instrument(tracing::debug_span!("dynamodb", op = "get_node"))
            .await
    }

    async fn list_nodes(&self) -> Result<Vec<NodeInfo>> {
        self.d_list_nodes()
            .instrument(tracing::debug_span!("dynamodb", op = "list_nodes"))
            .await
    }

    async fn heartbeat_gateway(&self, gateway_id: &str, now_ms: Millis) -> Result<()> {
        self.d_heartbeat_gateway(gateway_id, now_ms)
            .instrument(tracing::debug_span!("dynamodb", op = "heartbeat_gateway"))
            .await
    }

    async fn list_gateways(&self) -> Result<Vec<GatewayInfo>> {
        self.d_list_gateways()
            .instrument(tracing::debug_span!("dynamodb", op = "list_gateways"))
            .await
    }

    async fn remove_gateway(&self, gateway_id: &str) -> Result<()> {
        self.d_remove_gateway(gateway_id)
            .instrument(tracing::debug_span!("dynamodb", op = "remove_gateway"))
            .await
    }

    async fn commit_manifest(&self, node_id: &str, commits: &[PartitionCommit]) -> Result<()> {
        self.d_commit_manifest(node_id, commits)
            .instrument(tracing::debug_span!("dynamodb", op = "commit_manifest"))
            .await
    }

    async fn list_manifest(&self, topic_id: Uuid, partition: i32) -> Result<Vec<ManifestEntry>> {
        self.d_list_manifest(topic_id, partition)
            .instrument(tracing::debug_span!("dynamodb", op = "list_manifest"))
            .await
    }

    async fn manifest_references(&self, object_key: &str) -> Result<usize> {
        self.d_manifest_references(object_key)
            .instrument(tracing::debug_span!("dynamodb", op = "manifest_references"))
            .await
    }

    async fn producer_snapshots(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Vec<ProducerSnapshot>> {
        self.d_producer_snapshots(topic_id, partition)
            .instrument(tracing::debug_span!("dynamodb", op = "producer_snapshots"))
            .await
    }

    async fn commit_offsets(
        &self,
        cluster_id: Uuid,
        group: &str,
        offsets: &[CommittedOffset],
    ) -> Result<()> {
        self.d_commit_offsets(cluster_id, group, offsets)
            .instrument(tracing::debug_span!("dynamodb", op = "commit_offsets"))
            .await
    }

    async fn fetch_offsets(&self, cluster_id: Uuid, group: &str) -> Result<Vec<CommittedOffset>> {
        self.d_fetch_offsets(cluster_id, group)
            .instrument(tracing::debug_span!("dynamodb", op = "fetch_offsets"))
            .await
    }

    async fn delete_group_offsets(&self, cluster_id: Uuid, group: &str) -> Result<()> {
        self.d_delete_group_offsets(cluster_id, group)
            .instrument(tracing::debug_span!(
                "dynamodb",
                op = "delete_group_offsets"
            ))
            .await
    }

    async fn list_offset_groups(&self, cluster_id: Uuid) -> Result<Vec<String>> {
        self.d_list_offset_groups(cluster_id)
            .instrument(tracing::debug_span!("dynamodb", op = "list_offset_groups"))
            .await
    }

    async fn allocate_producer_ids(&self, count: i64) -> Result<i64> {
        self.d_allocate_producer_ids(count)
            .instrument(tracing::debug_span!(
                "dynamodb",
                op = "allocate_producer_ids"
            ))
            .await
    }

    async fn delete_cluster(&self, id: Uuid) -> Result<()> {
        self.d_delete_cluster(id)
            .instrument(tracing::debug_span!("dynamodb", op = "delete_cluster"))
            .await
    }

    async fn create_principal(&self, principal: &Principal) -> Result<()> {
        self.d_create_principal(principal)
            .instrument(tracing::debug_span!("dynamodb", op = "create_principal"))
            .await
    }

    async fn get_principal(&self, account_id: &str, name: &str) -> Result<Option<Principal>> {
        self.d_get_principal(account_id, name)
            .instrument(tracing::debug_span!("dynamodb", op = "get_principal"))
            .await
    }

    async fn list_principals(&self, account_id: &str) -> Result<Vec<Principal>> {
        self.d_list_principals(account_id)
            .instrument(tracing::debug_span!("dynamodb", op = "list_principals"))
            .await
    }

    async fn update_principal(&self, principal: &Principal) -> Result<Principal> {
        self.d_update_principal(principal)
            .instrument(tracing::debug_span!("dynamodb", op = "update_principal"))
            .await
    }

    async fn delete_principal(&self, account_id: &str, name: &str) -> Result<()> {
        self.d_delete_principal(account_id, name)
            .instrument(tracing::debug_span!("dynamodb", op = "delete_principal"))
            .await
    }

    async fn auth_epoch(&self) -> Result<i64> {
        self.d_auth_epoch()
            .instrument(tracing::debug_span!("dynamodb", op = "auth_epoch"))
            .await
    }

    async fn get_cluster_settings(&self, cluster_id: Uuid) -> Result<Option<ClusterSettings>> {
        self.d_get_cluster_settings(cluster_id)
            .instrument(tracing::debug_span!(
                "dynamodb",
                op = "get_cluster_settings"
            ))
            .await
    }

    async fn put_cluster_settings(&self, settings: &ClusterSettings) -> Result<ClusterSettings> {
        self.d_put_cluster_settings(settings)
            .instrument(tracing::debug_span!(
                "dynamodb",
                op = "put_cluster_settings"
            ))
            .await
    }

    async fn create_acls(&self, cluster_id: Uuid, bindings: &[String]) -> Result<usize> {
        self.d_create_acls(cluster_id, bindings)
            .instrument(tracing::debug_span!("dynamodb", op = "create_acls"))
            .await
    }

    async fn list_acls(&self, cluster_id: Uuid) -> Result<Vec<String>> {
        self.d_list_acls(cluster_id)
            .instrument(tracing::debug_span!("dynamodb", op = "list_acls"))
            .await
    }

    async fn delete_acls(&self, cluster_id: Uuid, bindings: &[String]) -> Result<Vec<String>> {
        self.d_delete_acls(cluster_id, bindings)
            .instrument(tracing::debug_span!("dynamodb", op = "delete_acls"))
            .await
    }

    async fn record_usage(&self, record: &UsageRecord) -> Result<()> {
        self.d_record_usage(record)
            .instrument(tracing::debug_span!("dynamodb", op = "record_usage"))
            .await
    }

    async fn list_usage(
        &self,
        cluster_id: Uuid,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<UsageRecord>> {
        self.d_list_usage(cluster_id, from_ms, to_ms)
            .instrument(tracing::debug_span!("dynamodb", op = "list_usage"))
            .await
    }
}
