//! The `MetadataStore` contract.

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::Result;
use crate::types::*;

/// The tiered data of one partition committed together with its ownership fence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionCommit {
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// The epoch under which the committing node owns the partition; the commit fails with
    /// [`crate::MetadataError::Conflict`] if the stored owner or epoch differs.
    pub epoch: i32,
    /// New manifest entries of this partition.
    pub entries: Vec<ManifestEntry>,
    /// Idempotent-producer state as of the end of `entries` (replaces the stored snapshot).
    pub producers: Vec<ProducerSnapshot>,
}

/// The only way any part of Fjord reads or changes shared state.
///
/// Implementations must make every method atomic, and every method documented as conditional
/// must fail with [`crate::MetadataError::Conflict`] rather than overwrite newer state.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    // ---- accounts, clusters, credentials ----

    /// Creates an account; `AlreadyExists` if the id is taken.
    async fn create_account(&self, account: &Account) -> Result<()>;
    /// Reads an account.
    async fn get_account(&self, id: &str) -> Result<Option<Account>>;
    /// Creates a cluster; `AlreadyExists` if its account has a cluster of that name.
    async fn create_cluster(&self, cluster: &Cluster) -> Result<()>;
    /// Reads a cluster by id.
    async fn get_cluster(&self, id: Uuid) -> Result<Option<Cluster>>;
    /// Reads a cluster by account and name.
    async fn get_cluster_by_name(&self, account_id: &str, name: &str) -> Result<Option<Cluster>>;
    /// Lists the clusters of an account, ordered by name.
    async fn list_clusters(&self, account_id: &str) -> Result<Vec<Cluster>>;
    /// Stores a new access key; `AlreadyExists` if the id is taken.
    async fn create_access_key(&self, key: &AccessKey) -> Result<()>;
    /// Reads an access key.
    async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>>;
    /// Lists the access keys of an account, ordered by id.
    async fn list_access_keys(&self, account_id: &str) -> Result<Vec<AccessKey>>;
    /// Activates or deactivates a key; `NotFound` if it does not exist.
    async fn set_access_key_status(&self, id: &str, status: KeyStatus) -> Result<()>;
    /// Deletes a key (no error if absent).
    async fn delete_access_key(&self, id: &str) -> Result<()>;

    // ---- topics and partition ownership ----

    /// Creates a topic together with the owners of all its partitions, atomically;
    /// `AlreadyExists` if the cluster has a topic of that name (or the id is taken).
    /// `InvalidArgument` if the topic has no partitions or an owner belongs to another topic or
    /// lies outside `0..topic.partitions`.
    async fn create_topic(&self, topic: &Topic, owners: &[PartitionOwner]) -> Result<()>;
    /// Reads a topic by cluster and name.
    async fn get_topic(&self, cluster_id: Uuid, name: &str) -> Result<Option<Topic>>;
    /// Reads a topic by id.
    async fn get_topic_by_id(&self, topic_id: Uuid) -> Result<Option<Topic>>;
    /// Lists a cluster's topics, ordered by name.
    async fn list_topics(&self, cluster_id: Uuid) -> Result<Vec<Topic>>;
    /// Conditional update: succeeds only if the stored version equals `topic.version`
    /// (`Conflict` otherwise); stores `topic` with version + 1 and adds `new_owners` (for added
    /// partitions; `AlreadyExists` if one exists). Returns the stored topic. `NotFound` if the
    /// topic id is unknown; `InvalidArgument` for a rename, a move to another cluster or fewer
    /// partitions. `created_ms` is kept from the stored topic.
    async fn update_topic(&self, topic: &Topic, new_owners: &[PartitionOwner]) -> Result<Topic>;
    /// Deletes a topic, its partition owners, producer snapshots and manifest entries, and
    /// returns the manifest entries it removed (their objects may now be garbage), ordered by
    /// partition and base offset. `NotFound` if the topic does not exist. Committed group
    /// offsets (addressed by topic name) are left alone.
    async fn delete_topic(&self, topic_id: Uuid) -> Result<Vec<ManifestEntry>>;
    /// Owners of all partitions of a topic, ordered by partition.
    async fn list_partition_owners(&self, topic_id: Uuid) -> Result<Vec<PartitionOwner>>;
    /// Owner of one partition.
    async fn get_partition_owner(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Option<PartitionOwner>>;
    /// All partitions a node owns.
    async fn list_partitions_of_node(&self, node_id: &str) -> Result<Vec<PartitionOwner>>;
    /// Conditional: hands the partition to `node_id` with epoch `expected_epoch + 1`, only if the
    /// stored epoch is `expected_epoch` (`Conflict` naming the stored owner and epoch otherwise;
    /// `NotFound` if the partition has no owner row). The log start offset is kept. Returns the
    /// new owner record.
    async fn claim_partition(
        &self,
        topic_id: Uuid,
        partition: i32,
        node_id: &str,
        expected_epoch: i32,
    ) -> Result<PartitionOwner>;
    /// Conditional on the owner's epoch (`Conflict` if the stored epoch differs or the
    /// partition no longer exists): raises the log start offset (never lowers it) and
    /// removes manifest entries that end at or below the resulting start, returning them in
    /// base-offset order.
    async fn advance_log_start(
        &self,
        topic_id: Uuid,
        partition: i32,
        epoch: i32,
        log_start_offset: i64,
    ) -> Result<Vec<ManifestEntry>>;

    // ---- storage nodes ----

    /// Registers or re-registers a node (upsert).
    async fn register_node(&self, node: &NodeInfo) -> Result<()>;
    /// Records a heartbeat; `NotFound` if the node is not registered.
    async fn heartbeat_node(&self, node_id: &str, now_ms: Millis) -> Result<()>;
    /// Reads a node.
    async fn get_node(&self, node_id: &str) -> Result<Option<NodeInfo>>;
    /// Lists all nodes, ordered by id.
    async fn list_nodes(&self) -> Result<Vec<NodeInfo>>;

    // ---- gateways ----

    /// Registers a gateway or renews its registration with a heartbeat at `now_ms` (upsert).
    async fn heartbeat_gateway(&self, gateway_id: &str, now_ms: Millis) -> Result<()>;
    /// Lists every registered gateway with its last heartbeat, ordered by id. Registrations of
    /// gateways that stopped without [`MetadataStore::remove_gateway`] stay until someone
    /// removes them, so callers judge liveness by `heartbeat_ms`.
    async fn list_gateways(&self) -> Result<Vec<GatewayInfo>>;
    /// Removes a gateway's registration (no error if absent).
    async fn remove_gateway(&self, gateway_id: &str) -> Result<()>;

    // ---- tiered data ----

    /// Commits manifest entries and producer snapshots of several partitions atomically, fenced
    /// by each partition's owner and epoch (`Conflict` if any differs or a partition no longer
    /// exists); on any error nothing of the call is written.
    ///
    /// Stored entries of a partition never overlap: an entry identical to a stored one is
    /// accepted as a retry and skipped; a different entry overlapping a stored range is a
    /// `Conflict`. An entry for another partition than its commit's, or with an empty range, is
    /// `InvalidArgument`. Each commit's `producers` replaces that partition's snapshot set.
    async fn commit_manifest(&self, node_id: &str, commits: &[PartitionCommit]) -> Result<()>;
    /// Manifest entries of a partition, ordered by base offset.
    async fn list_manifest(&self, topic_id: Uuid, partition: i32) -> Result<Vec<ManifestEntry>>;
    /// Manifest entries that reference an object key (for garbage collection).
    async fn manifest_references(&self, object_key: &str) -> Result<usize>;
    /// The stored idempotent-producer snapshots of a partition, ordered by producer id.
    async fn producer_snapshots(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Vec<ProducerSnapshot>>;

    // ---- consumer groups and producer ids ----

    /// Upserts committed offsets of a group.
    async fn commit_offsets(
        &self,
        cluster_id: Uuid,
        group: &str,
        offsets: &[CommittedOffset],
    ) -> Result<()>;
    /// All committed offsets of a group, ordered by topic and partition.
    async fn fetch_offsets(&self, cluster_id: Uuid, group: &str) -> Result<Vec<CommittedOffset>>;
    /// Deletes all committed offsets of a group.
    async fn delete_group_offsets(&self, cluster_id: Uuid, group: &str) -> Result<()>;
    /// Names of the groups of a cluster that have committed offsets, ordered.
    async fn list_offset_groups(&self, cluster_id: Uuid) -> Result<Vec<String>>;
    /// Allocates a block of `count` producer ids never handed out before (by any process
    /// sharing the store); returns the first. Ids start at 0. `InvalidArgument` if
    /// `count < 1`.
    async fn allocate_producer_ids(&self, count: i64) -> Result<i64>;

    // --- Principals, authorization epoch, cluster settings, ACLs, usage ---

    /// Deletes a cluster's records; `NotFound` if it does not exist. Topics, group offsets,
    /// ACLs and settings of the cluster are the caller's to delete first.
    async fn delete_cluster(&self, id: Uuid) -> Result<()>;
    /// Creates a principal; `AlreadyExists` if its account has one of that name;
    /// `InvalidArgument` unless `version` is 0.
    async fn create_principal(&self, principal: &Principal) -> Result<()>;
    /// Reads a principal.
    async fn get_principal(&self, account_id: &str, name: &str) -> Result<Option<Principal>>;
    /// The principals of an account, ordered by name.
    async fn list_principals(&self, account_id: &str) -> Result<Vec<Principal>>;
    /// Conditional update: succeeds only if the stored version equals `principal.version`
    /// (`Conflict` naming both versions otherwise); stores it with version + 1 and returns the
    /// stored record (`created_ms` kept from the stored one). `NotFound` if absent.
    async fn update_principal(&self, principal: &Principal) -> Result<Principal>;
    /// Deletes a principal (no error if absent). Its access keys are the caller's to delete.
    async fn delete_principal(&self, account_id: &str, name: &str) -> Result<()>;
    /// A counter raised by every change that can take access away: an access key's status
    /// change or delete, a principal's update or delete, an ACL create or delete (a created
    /// Deny binding takes access away; a created Allow should apply as fast). Gateways poll it
    /// (one small read) to drop cached credentials, policies and ACLs within seconds.
    async fn auth_epoch(&self) -> Result<i64>;
    /// The settings of a cluster, if any were stored.
    async fn get_cluster_settings(&self, cluster_id: Uuid) -> Result<Option<ClusterSettings>>;
    /// Stores settings, conditional on `settings.version` like [`MetadataStore::update_topic`]
    /// (0 = create; `Conflict` if the stored version differs or, for 0, settings exist);
    /// returns the stored record with version + 1.
    async fn put_cluster_settings(&self, settings: &ClusterSettings) -> Result<ClusterSettings>;
    /// Adds ACL bindings to a cluster. A binding is an opaque canonical string made by the
    /// tenancy layer; one already stored is kept once. Returns how many were new. Raises the
    /// auth epoch when any was new.
    async fn create_acls(&self, cluster_id: Uuid, bindings: &[String]) -> Result<usize>;
    /// The ACL bindings of a cluster, ordered.
    async fn list_acls(&self, cluster_id: Uuid) -> Result<Vec<String>>;
    /// Removes ACL bindings; returns those that were stored (ordered). Raises the auth epoch
    /// when any was removed.
    async fn delete_acls(&self, cluster_id: Uuid, bindings: &[String]) -> Result<Vec<String>>;
    /// Stores a usage record, keyed by (cluster, source, period start): storing the same key
    /// again replaces it, so a retried write is harmless.
    async fn record_usage(&self, record: &UsageRecord) -> Result<()>;
    /// Usage records of a cluster whose period starts in `[from_ms, to_ms)`, ordered by period
    /// start, then source.
    async fn list_usage(
        &self,
        cluster_id: Uuid,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<UsageRecord>>;
}
