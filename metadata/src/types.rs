//! The records Fjord keeps in metadata. Times are milliseconds since the Unix epoch, always
//! passed in by the caller (the store never reads a clock), so tests can use any clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A tenant account (12-digit id, as on AWS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// 12 decimal digits.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// When it was created.
    pub created_ms: Millis,
}

/// A serverless cluster: the unit that owns topics, groups and quotas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// Cluster UUID (the last part of its ARN).
    pub id: Uuid,
    /// Owning account.
    pub account_id: String,
    /// Cluster name, unique within its account.
    pub name: String,
    /// AWS region name the cluster lives in (e.g. `us-east-1`).
    pub region: String,
    /// When it was created.
    pub created_ms: Millis,
}

/// Whether an access key may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    /// Usable.
    Active,
    /// Refused at authentication.
    Inactive,
}

/// An access key issued by Fjord (Fjord is the identity provider for its tenants).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    /// The access key id (`AKIA…`/`ASIA…`-style, 20 characters).
    pub id: String,
    /// The secret, sealed by the tenancy layer (the store never sees it in the clear).
    pub sealed_secret: Vec<u8>,
    /// Owning account.
    pub account_id: String,
    /// The principal this key authenticates as (e.g. `user/dev`).
    pub principal: String,
    /// Active or inactive.
    pub status: KeyStatus,
    /// Expiry for temporary credentials; `None` for long-lived keys.
    pub expires_ms: Option<Millis>,
    /// When it was created.
    pub created_ms: Millis,
}

/// A topic and its configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    /// Globally unique topic id (Kafka's topic UUID).
    pub id: Uuid,
    /// Owning cluster.
    pub cluster_id: Uuid,
    /// Topic name, unique within the cluster.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Explicitly set topic configs (`retention.ms`, ...); defaults are not stored.
    pub configs: BTreeMap<String, String>,
    /// Optimistic-concurrency version; incremented by every update.
    pub version: i64,
    /// When it was created.
    pub created_ms: Millis,
}

/// Which storage node owns a partition, under which epoch. Epochs only grow; a node that learns
/// of a higher epoch for a partition it serves must stop serving it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOwner {
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// Owning node id.
    pub node_id: String,
    /// Ownership epoch (also used as the Kafka leader epoch).
    pub epoch: i32,
    /// First offset that is still readable (raised by retention and DeleteRecords).
    pub log_start_offset: i64,
}

/// A registered storage node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node id (stable across restarts of the same node).
    pub id: String,
    /// QUIC address gateways dial (`host:port`).
    pub rpc_addr: String,
    /// DER of the node's self-signed certificate, pinned by gateways.
    pub cert_der: Vec<u8>,
    /// Last heartbeat.
    pub heartbeat_ms: Millis,
}

/// A gateway's registration: gateways renew it every second or so, and each enforces its share
/// (1/N, N = gateways with a recent heartbeat) of every cluster-wide rate limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayInfo {
    /// Gateway id (one per process run).
    pub id: String,
    /// Last heartbeat.
    pub heartbeat_ms: Millis,
}

/// One partition's slice of one object in object storage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// First offset in the range (inclusive).
    pub base_offset: i64,
    /// One past the last offset in the range.
    pub end_offset: i64,
    /// Max timestamp of the batches in the range (for ListOffsets by time and retention.ms).
    pub max_timestamp_ms: i64,
    /// Object key in object storage.
    pub object_key: String,
    /// Byte position of the range inside the object.
    pub position: u64,
    /// Byte length of the range.
    pub length: u64,
}

/// A committed consumer-group offset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    /// Topic name (groups address topics by name, as Kafka does).
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The committed offset.
    pub offset: i64,
    /// Leader epoch the client saw, -1 if unknown.
    pub leader_epoch: i32,
    /// Client-supplied metadata string.
    pub metadata: String,
    /// When it was committed.
    pub commit_ms: Millis,
}

/// The idempotent-producer state of one producer on one partition, persisted when data is tiered
/// so that duplicate detection survives the WAL being trimmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerSnapshot {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Last sequence number written.
    pub last_sequence: i32,
    /// Offset of the last batch written.
    pub last_offset: i64,
}

/// An IAM-style principal of an account (a user or a role): what its access keys authenticate
/// as, the policies that say what it may do, and its SCRAM credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Owning account.
    pub account_id: String,
    /// `user/<name>` or `role/<name>`: the string [`AccessKey::principal`] names.
    pub name: String,
    /// Inline policy documents by policy name (IAM JSON, validated by the tenancy layer before
    /// it stores them).
    pub policies: BTreeMap<String, String>,
    /// The SCRAM-SHA-512 credential (salt, iterations, stored and server keys, as the tenancy
    /// layer encodes it), if the principal may log in with SCRAM.
    pub scram: Option<String>,
    /// Optimistic-concurrency version: 0 when created, incremented by every update.
    pub version: i64,
    /// When it was created.
    pub created_ms: Millis,
}

/// Settings of a cluster that its operator may change: overrides of the default limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSettings {
    /// The cluster.
    pub cluster_id: Uuid,
    /// Limit overrides by name (e.g. `ingress_bytes_per_sec`); limits not named keep their
    /// defaults.
    pub limits: BTreeMap<String, i64>,
    /// Optimistic-concurrency version: 0 when created, incremented by every update.
    pub version: i64,
}

/// Usage of one cluster measured by one process (gateway or node) over one period: the
/// dimensions MSK Serverless bills on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The cluster.
    pub cluster_id: Uuid,
    /// Which process measured it (gateway or node id); records of several sources add up.
    pub source: String,
    /// Start of the period (inclusive).
    pub period_start_ms: Millis,
    /// End of the period (exclusive).
    pub period_end_ms: Millis,
    /// Cluster-hours in the period.
    pub cluster_hours: f64,
    /// Partition-hours in the period.
    pub partition_hours: f64,
    /// Bytes produced.
    pub bytes_in: u64,
    /// Bytes fetched.
    pub bytes_out: u64,
    /// Stored bytes × hours.
    pub storage_byte_hours: f64,
}
