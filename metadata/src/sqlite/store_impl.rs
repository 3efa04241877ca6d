//! `impl MetadataStore for SqliteStore`: moves the arguments into a blocking closure and picks
//! a plain read or a `BEGIN IMMEDIATE` write for each method.

use async_trait::async_trait;
use uuid::Uuid;

use super::{groups, manifest, nodes, principals, tenants, topics, SqliteStore};
use crate::error::Result;
use crate::store::{MetadataStore, PartitionCommit};
use crate::types::*;

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn create_account(&self, account: &Account) -> Result<()> {
        let a = account.clone();
        self.write("create_account", move |c| tenants::create_account(c, &a))
            .await
    }

    async fn get_account(&self, id: &str) -> Result<Option<Account>> {
        let id = id.to_string();
        self.read("get_account", move |c| tenants::get_account(c, &id))
            .await
    }

    async fn create_cluster(&self, cluster: &Cluster) -> Result<()> {
        let cl = cluster.clone();
        self.write("create_cluster", move |c| tenants::create_cluster(c, &cl))
            .await
    }

    async fn get_cluster(&self, id: Uuid) -> Result<Option<Cluster>> {
        self.read("get_cluster", move |c| tenants::get_cluster(c, id))
            .await
    }

    async fn get_cluster_by_name(&self, account_id: &str, name: &str) -> Result<Option<Cluster>> {
        let (account_id, name) = (account_id.to_string(), name.to_string());
        self.read("get_cluster_by_name", move |c| {
            tenants::get_cluster_by_name(c, &account_id, &name)
        })
        .await
    }

    async fn list_clusters(&self, account_id: &str) -> Result<Vec<Cluster>> {
        let account_id = account_id.to_string();
        self.read("list_clusters", move |c| {
            tenants::list_clusters(c, &account_id)
        })
        .await
    }

    async fn create_access_key(&self, key: &AccessKey) -> Result<()> {
        let k = key.clone();
        self.write("create_access_key", move |c| {
            tenants::create_access_key(c, &k)
        })
        .await
    }

    async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>> {
        let id = id.to_string();
        self.read("get_access_key", move |c| tenants::get_access_key(c, &id))
            .await
    }

    async fn list_access_keys(&self, account_id: &str) -> Result<Vec<AccessKey>> {
        let account_id = account_id.to_string();
        self.read("list_access_keys", move |c| {
            tenants::list_access_keys(c, &account_id)
        })
        .await
    }

    async fn set_access_key_status(&self, id: &str, status: KeyStatus) -> Result<()> {
        let id = id.to_string();
        self.write("set_access_key_status", move |c| {
            tenants::set_access_key_status(c, &id, status)
        })
        .await
    }

    async fn delete_access_key(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.write("delete_access_key", move |c| {
            tenants::delete_access_key(c, &id)
        })
        .await
    }

    async fn create_topic(&self, topic: &Topic, owners: &[PartitionOwner]) -> Result<()> {
        let (t, o) = (topic.clone(), owners.to_vec());
        self.write("create_topic", move |c| topics::create_topic(c, &t, &o))
            .await
    }

    async fn get_topic(&self, cluster_id: Uuid, name: &str) -> Result<Option<Topic>> {
        let name = name.to_string();
        self.read("get_topic", move |c| {
            topics::get_topic(c, cluster_id, &name)
        })
        .await
    }

    async fn get_topic_by_id(&self, topic_id: Uuid) -> Result<Option<Topic>> {
        self.read("get_topic_by_id", move |c| {
            topics::get_topic_by_id(c, topic_id)
        })
        .await
    }

    async fn list_topics(&self, cluster_id: Uuid) -> Result<Vec<Topic>> {
        self.read("list_topics", move |c| topics::list_topics(c, cluster_id))
            .await
    }

    async fn update_topic(&self, topic: &Topic, new_owners: &[PartitionOwner]) -> Result<Topic> {
        let (t, o) = (topic.clone(), new_owners.to_vec());
        self.write("update_topic", move |c| topics::update_topic(c, &t, &o))
            .await
    }

    async fn delete_topic(&self, topic_id: Uuid) -> Result<Vec<ManifestEntry>> {
        self.write("delete_topic", move |c| topics::delete_topic(c, topic_id))
            .await
    }

    async fn list_partition_owners(&self, topic_id: Uuid) -> Result<Vec<PartitionOwner>> {
        self.read("list_partition_owners", move |c| {
            topics::list_partition_owners(c, topic_id)
        })
        .await
    }

    async fn get_partition_owner(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Option<PartitionOwner>> {
        self.read("get_partition_owner", move |c| {
            topics::get_partition_owner(c, topic_id, partition)
        })
        .await
    }

    async fn list_partitions_of_node(&self, node_id: &str) -> Result<Vec<PartitionOwner>> {
        let node_id = node_id.to_string();
        self.read("list_partitions_of_node", move |c| {
            topics::list_partitions_of_node(c, &node_id)
        })
        .await
    }

    async fn claim_partition(
        &self,
        topic_id: Uuid,
        partition: i32,
        node_id: &str,
        expected_epoch: i32,
    ) -> Result<PartitionOwner> {
        let node_id = node_id.to_string();
        self.write("claim_partition", move |c| {
            topics::claim_partition(c, topic_id, partition, &node_id, expected_epoch)
        })
        .await
    }

    async fn advance_log_start(
        &self,
        topic_id: Uuid,
        partition: i32,
        epoch: i32,
        log_start_offset: i64,
    ) -> Result<Vec<ManifestEntry>> {
        self.write("advance_log_start", move |c| {
            topics::advance_log_start(c, topic_id, partition, epoch, log_start_offset)
        })
        .await
    }

    async fn register_node(&self, node: &NodeInfo) -> Result<()> {
        let n = node.clone();
        self.write("register_node", move |c| nodes::register_node(c, &n))
            .await
    }

    async fn heartbeat_node(&self, node_id: &str, now_ms: Millis) -> Result<()> {
        let node_id = node_id.to_string();
        self.write("heartbeat_node", move |c| {
            nodes::heartbeat_node(c, &node_id, now_ms)
        })
        .await
    }

    async fn get_node(&self, node_id: &str) -> Result<Option<NodeInfo>> {
        let node_id = node_id.to_string();
        self.read("get_node", move |c| nodes::get_node(c, &node_id))
            .await
    }

    async fn list_nodes(&self) -> Result<Vec<NodeInfo>> {
        self.read("list_nodes", nodes::list_nodes).await
    }

    async fn heartbeat_gateway(&self, gateway_id: &str, now_ms: Millis) -> Result<()> {
        let gateway_id = gateway_id.to_string();
        self.write("heartbeat_gateway", move |c| {
            nodes::heartbeat_gateway(c, &gateway_id, now_ms)
        })
        .await
    }

    async fn list_gateways(&self) -> Result<Vec<GatewayInfo>> {
        self.read("list_gateways", nodes::list_gateways).await
    }

    async fn remove_gateway(&self, gateway_id: &str) -> Result<()> {
        let gateway_id = gateway_id.to_string();
        self.write("remove_gateway", move |c| {
            nodes::remove_gateway(c, &gateway_id)
        })
        .await
    }

    async fn commit_manifest(&self, node_id: &str, commits: &[PartitionCommit]) -> Result<()> {
        let (node_id, commits) = (node_id.to_string(), commits.to_vec());
        self.write("commit_manifest", move |c| {
            manifest::commit_manifest(c, &node_id, &commits)
        })
        .await
    }

    async fn list_manifest(&self, topic_id: Uuid, partition: i32) -> Result<Vec<ManifestEntry>> {
        self.read("list_manifest", move |c| {
            manifest::list_manifest(c, topic_id, partition)
        })
        .await
    }

    async fn manifest_references(&self, object_key: &str) -> Result<usize> {
        let key = object_key.to_string();
        self.read("manifest_references", move |c| {
            manifest::manifest_references(c, &key)
        })
        .await
    }

    async fn producer_snapshots(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Vec<ProducerSnapshot>> {
        self.read("producer_snapshots", move |c| {
            manifest::producer_snapshots(c, topic_id, partition)
        })
        .await
    }

    async fn commit_offsets(
        &self,
        cluster_id: Uuid,
        group: &str,
        offsets: &[CommittedOffset],
    ) -> Result<()> {
        let (group, offsets) = (group.to_string(), offsets.to_vec());
        self.write("commit_offsets", move |c| {
            groups::commit_offsets(c, cluster_id, &group, &offsets)
        })
        .await
    }

    async fn fetch_offsets(&self, cluster_id: Uuid, group: &str) -> Result<Vec<CommittedOffset>> {
        let group = group.to_string();
        self.read("fetch_offsets", move |c| {
            groups::fetch_offsets(c, cluster_id, &group)
        })
        .await
    }

    async fn delete_group_offsets(&self, cluster_id: Uuid, group: &str) -> Result<()> {
        let group = group.to_string();
        self.write("delete_group_offsets", move |c| {
            groups::delete_group_offsets(c, cluster_id, &group)
        })
        .await
    }

    async fn list_offset_groups(&self, cluster_id: Uuid) -> Result<Vec<String>> {
        self.read("list_offset_groups", move |c| {
            groups::list_offset_groups(c, cluster_id)
        })
        .await
    }

    async fn allocate_producer_ids(&self, count: i64) -> Result<i64> {
        self.write("allocate_producer_ids", move |c| {
            groups::allocate_producer_ids(c, count)
        })
        .await
    }

    async fn delete_cluster(&self, id: Uuid) -> Result<()> {
        self.write("delete_cluster", move |c| principals::delete_cluster(c, id))
            .await
    }

    async fn create_principal(&self, principal: &Principal) -> Result<()> {
        let p = principal.clone();
        self.write("create_principal", move |c| {
            principals::create_principal(c, &p)
        })
        .await
    }

    async fn get_principal(&self, account_id: &str, name: &str) -> Result<Option<Principal>> {
        let (account_id, name) = (account_id.to_string(), name.to_string());
        self.read("get_principal", move |c| {
            principals::get_principal(c, &account_id, &name)
        })
        .await
    }

    async fn list_principals(&self, account_id: &str) -> Result<Vec<Principal>> {
        let account_id = account_id.to_string();
        self.read("list_principals", move |c| {
            principals::list_principals(c, &account_id)
        })
        .await
    }

    async fn update_principal(&self, principal: &Principal) -> Result<Principal> {
        let p = principal.clone();
        self.write("update_principal", move |c| {
            principals::update_principal(c, &p)
        })
        .await
    }

    async fn delete_principal(&self, account_id: &str, name: &str) -> Result<()> {
        let (account_id, name) = (account_id.to_string(), name.to_string());
        self.write("delete_principal", move |c| {
            principals::delete_principal(c, &account_id, &name)
        })
        .await
    }

    async fn auth_epoch(&self) -> Result<i64> {
        self.read("auth_epoch", principals::auth_epoch).await
    }

    async fn get_cluster_settings(&self, cluster_id: Uuid) -> Result<Option<ClusterSettings>> {
        self.read("get_cluster_settings", move |c| {
            principals::get_cluster_settings(c, cluster_id)
        })
        .await
    }

    async fn put_cluster_settings(&self, settings: &ClusterSettings) -> Result<ClusterSettings> {
        let st = settings.clone();
        self.write("put_cluster_settings", move |c| {
            principals::put_cluster_settings(c, &st)
        })
        .await
    }

    async fn create_acls(&self, cluster_id: Uuid, bindings: &[String]) -> Result<usize> {
        let b = bindings.to_vec();
        self.write("create_acls", move |c| {
            principals::create_acls(c, cluster_id, &b)
        })
        .await
    }

    async fn list_acls(&self, cluster_id: Uuid) -> Result<Vec<String>> {
        self.read("list_acls", move |c| principals::list_acls(c, cluster_id))
            .await
    }

    async fn delete_acls(&self, cluster_id: Uuid, bindings: &[String]) -> Result<Vec<String>> {
        let b = bindings.to_vec();
        self.write("delete_acls", move |c| {
            principals::delete_acls(c, cluster_id, &b)
        })
        .await
    }

    async fn record_usage(&self, record: &UsageRecord) -> Result<()> {
        let r = record.clone();
        self.write("record_usage", move |c| principals::record_usage(c, &r))
            .await
    }

    async fn list_usage(
        &self,
        cluster_id: Uuid,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<UsageRecord>> {
        self.read("list_usage", move |c| {
            principals::list_usage(c, cluster_id, from_ms, to_ms)
        })
        .await
    }
}
