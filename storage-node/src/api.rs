//! The storage node's API as gateways see it: the request and response types that travel over
//! QUIC, and the [`NodeApi`] trait that both the node itself ([`crate::StorageNode`]) and the
//! QUIC client ([`crate::rpc::RemoteNode`]) implement.
//!
//! Per-partition outcomes carry Kafka error codes (`i16`), because the node is the one that
//! validates batches and knows which Kafka error applies; transport-level failures are
//! [`NodeError`]s.

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Kafka error code `NONE`.
pub const NO_ERROR: i16 = 0;

/// The topic settings a node needs to accept a batch. Gateways hold topic configs in their
/// cache and send these with every produce, so the produce path on the node never reads
/// metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicLimits {
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: u32,
    /// `message.timestamp.type=LogAppendTime`: the node stamps the batch's max timestamp.
    pub log_append_time: bool,
}

/// One partition's data in a produce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducePartition {
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// Limits from the topic config.
    pub limits: TopicLimits,
    /// One or more Kafka record batches (magic 2), exactly as the client sent them.
    pub records: Bytes,
}

/// Appends batches to partitions this node owns; answered after the fsync covering them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProduceRequest {
    /// The cluster the topics belong to.
    pub cluster_id: Uuid,
    /// Partitions to append to.
    pub partitions: Vec<ProducePartition>,
}

/// Outcome of one partition of a produce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducePartitionResult {
    /// Kafka error code.
    pub error_code: i16,
    /// Human-readable reason when `error_code` is not 0.
    pub error_message: Option<String>,
    /// Offset assigned to the first record (or of the original append, for a duplicate).
    pub base_offset: i64,
    /// Broker timestamp when LogAppendTime applies, else -1.
    pub log_append_time_ms: i64,
    /// Current log start offset.
    pub log_start_offset: i64,
}

/// Results in the order of [`ProduceRequest::partitions`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProduceResponse {
    /// One result per requested partition, same order.
    pub partitions: Vec<ProducePartitionResult>,
}

/// One partition of a fetch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchPartition {
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// First offset wanted.
    pub fetch_offset: i64,
    /// Byte budget of this partition (at least one whole batch is returned regardless).
    pub max_bytes: u32,
}

/// Reads batches; waits up to `max_wait_ms` (event driven) until `min_bytes` are available.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// Longest wait for `min_bytes`.
    pub max_wait_ms: u32,
    /// Bytes to gather before answering early.
    pub min_bytes: u32,
    /// Byte budget of the whole response.
    pub max_bytes: u32,
    /// Partitions to read.
    pub partitions: Vec<FetchPartition>,
}

/// Outcome of one partition of a fetch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchPartitionResult {
    /// Kafka error code (e.g. OFFSET_OUT_OF_RANGE, NOT_LEADER_OR_FOLLOWER).
    pub error_code: i16,
    /// High watermark (= log end offset: everything acked is durable).
    pub high_watermark: i64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// Whole record batches starting with the one containing `fetch_offset`.
    pub records: Bytes,
}

/// Results in the order of [`FetchRequest::partitions`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchResponse {
    /// One result per requested partition, same order.
    pub partitions: Vec<FetchPartitionResult>,
}

/// One partition of a ListOffsets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOffsetsPartition {
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// -1 latest, -2 earliest, -3 max timestamp, else a timestamp in ms.
    pub timestamp: i64,
}

/// Finds offsets by time or position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOffsetsRequest {
    /// Partitions to look up.
    pub partitions: Vec<ListOffsetsPartition>,
}

/// Outcome of one partition of a ListOffsets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOffsetsPartitionResult {
    /// Kafka error code.
    pub error_code: i16,
    /// The offset found (-1 when none, e.g. a timestamp after the last record).
    pub offset: i64,
    /// Timestamp of that offset's record (-1 when not applicable).
    pub timestamp: i64,
    /// Current leader (ownership) epoch.
    pub leader_epoch: i32,
}

/// Results in the order of [`ListOffsetsRequest::partitions`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOffsetsResponse {
    /// One result per requested partition, same order.
    pub partitions: Vec<ListOffsetsPartitionResult>,
}

/// One partition of a DeleteRecords.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRecordsPartition {
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// New log start offset; -1 means the high watermark.
    pub offset: i64,
}

/// Raises log start offsets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRecordsRequest {
    /// Partitions to trim.
    pub partitions: Vec<DeleteRecordsPartition>,
}

/// Outcome of one partition of a DeleteRecords.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRecordsPartitionResult {
    /// Kafka error code.
    pub error_code: i16,
    /// The new log start offset.
    pub low_watermark: i64,
}

/// Results in the order of [`DeleteRecordsRequest::partitions`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRecordsResponse {
    /// One result per requested partition, same order.
    pub partitions: Vec<DeleteRecordsPartitionResult>,
}

/// A consumer-group request forwarded by a gateway to the group's coordinator node: the Kafka
/// request body as the client encoded it (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
/// OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups). The coordinator speaks
/// the group protocol natively, as a Kafka group coordinator does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRequest {
    /// The cluster the group belongs to (groups are per cluster).
    pub cluster_id: Uuid,
    /// Kafka API key.
    pub api_key: i16,
    /// Kafka API version.
    pub api_version: i16,
    /// The encoded request body (without the request header).
    pub body: Bytes,
    /// The `client.id` of the Kafka request header: what DescribeGroups reports as a member's
    /// client id (and the prefix of member ids the coordinator hands out).
    pub client_id: String,
    /// The client's address as the gateway saw it (e.g. `/10.0.0.7`): what DescribeGroups
    /// reports as a member's client host.
    pub client_host: String,
}

/// The encoded Kafka response body (without the response header).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupResponse {
    /// Encoded response body.
    pub body: Bytes,
}

/// Transport- or node-level failure of a whole request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum NodeError {
    /// The node could not be reached or the connection broke.
    #[error("storage node unreachable: {0}")]
    Unreachable(String),
    /// The node is shutting down or recovering.
    #[error("storage node unavailable: {0}")]
    Unavailable(String),
    /// The request was malformed (a bug in the caller or a version skew).
    #[error("invalid node request: {0}")]
    InvalidRequest(String),
    /// The node failed internally (metadata, object store).
    #[error("storage node internal error: {0}")]
    Internal(String),
}

/// What a gateway can ask of a storage node.
#[async_trait]
pub trait NodeApi: Send + Sync + 'static {
    /// Appends batches; answered once durable (fsync'd).
    async fn produce(&self, req: ProduceRequest) -> Result<ProduceResponse, NodeError>;
    /// Like [`NodeApi::produce`], and drops `sequenced` as soon as the node has fixed where
    /// the batches go (offsets assigned, or refused): a produce sent after that lands after
    /// this one on every partition it shares. Lets a gateway pipeline one connection's
    /// produces to the same partition without reordering them. By default the signal comes
    /// with the answer, which is always safe.
    async fn produce_ordered(
        &self,
        req: ProduceRequest,
        sequenced: tokio::sync::oneshot::Sender<()>,
    ) -> Result<ProduceResponse, NodeError> {
        let answer = self.produce(req).await;
        drop(sequenced);
        answer
    }
    /// Reads batches, long-polling per the request.
    async fn fetch(&self, req: FetchRequest) -> Result<FetchResponse, NodeError>;
    /// Finds offsets.
    async fn list_offsets(&self, req: ListOffsetsRequest)
        -> Result<ListOffsetsResponse, NodeError>;
    /// Raises log start offsets.
    async fn delete_records(
        &self,
        req: DeleteRecordsRequest,
    ) -> Result<DeleteRecordsResponse, NodeError>;
    /// Handles a consumer-group request as its coordinator.
    async fn group(&self, req: GroupRequest) -> Result<GroupResponse, NodeError>;
}

/// Finds the [`NodeApi`] of a storage node by id (gateways: QUIC connections to registered
/// nodes; tests: nodes in the same process).
#[async_trait]
pub trait NodeDirectory: Send + Sync + 'static {
    /// The API of node `node_id`.
    async fn node(&self, node_id: &str) -> Result<std::sync::Arc<dyn NodeApi>, NodeError>;
}
