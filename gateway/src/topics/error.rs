//! The error type of topic lookups and management, and its one mapping to Kafka error codes.

use fjord_metadata::MetadataError;
use kafka_protocol::error::ResponseError;

/// Why a topic operation failed. Every variant's message names the problem so that it can go
/// to the client as the Kafka `error_message` unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// A topic of that name exists already in the cluster.
    #[error("topic '{0}' already exists")]
    AlreadyExists(String),
    /// No topic of that name in the cluster.
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// No topic with that id in the cluster.
    #[error("topic id {0} does not exist")]
    UnknownTopicId(uuid::Uuid),
    /// The topic name breaks Kafka's naming rules or collides with an existing topic.
    #[error("{0}")]
    InvalidName(String),
    /// A partition count that is out of range or does not grow the topic.
    #[error("{0}")]
    InvalidPartitions(String),
    /// A manual replica assignment that does not match the partition count.
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// A config name or value that is not acceptable.
    #[error("{0}")]
    InvalidConfig(String),
    /// A request for something Fjord manages itself (read-only configs, broker configs).
    #[error("{0}")]
    PolicyViolation(String),
    /// A malformed or contradictory request, or one over a cluster limit (as MSK answers it).
    #[error("{0}")]
    InvalidRequest(String),
    /// No storage node is alive to own new partitions; retrying later may succeed.
    #[error("no live storage node to place partitions on (none heartbeated in the last {liveness_ms} ms)")]
    NoLiveNodes {
        /// The liveness window that every registered node missed.
        liveness_ms: i64,
    },
    /// The topic kept changing underneath a read-modify-write; the client may retry.
    #[error("topic '{name}' was changed concurrently {attempts} times; retry the request")]
    Contended {
        /// Topic name.
        name: String,
        /// How many attempts lost their conditional write.
        attempts: u32,
    },
    /// The metadata store failed.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

impl TopicError {
    /// The Kafka error code that tells a client what happened.
    pub fn kafka_code(&self) -> i16 {
        let e = match self {
            TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
            TopicError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
            TopicError::UnknownTopicId(_) => ResponseError::UnknownTopicId,
            TopicError::InvalidName(_) => ResponseError::InvalidTopicException,
            TopicError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            TopicError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            TopicError::InvalidConfig(_) => ResponseError::InvalidConfig,
            TopicError::PolicyViolation(_) => ResponseError::PolicyViolation,
            TopicError::InvalidRequest(_) => ResponseError::InvalidRequest,
            // Both are retriable in every client: the storage layer is momentarily unable to
            // take the change, which is what KAFKA_STORAGE_ERROR says.
            TopicError::NoLiveNodes { .. } => ResponseError::KafkaStorageError,
            TopicError::Contended { .. } => ResponseError::KafkaStorageError,
            TopicError::Metadata(m) => match m {
                MetadataError::AlreadyExists { .. } => ResponseError::TopicAlreadyExists,
                MetadataError::NotFound { .. } => ResponseError::UnknownTopicOrPartition,
                MetadataError::Backend(_) | MetadataError::Conflict(_) => {
                    ResponseError::KafkaStorageError
                }
                _ => ResponseError::UnknownServerError,
            },
        };
        e.code()
    }

    /// Rebuilds an owned error from one shared by coalesced cache loads. Metadata errors keep
    /// their kind where it matters for the Kafka code (backend failures stay retriable).
    pub(crate) fn from_shared(e: std::sync::Arc<TopicError>) -> TopicError {
        match &*e {
            TopicError::Metadata(MetadataError::Backend(s)) => {
                TopicError::Metadata(MetadataError::Backend(s.clone()))
            }
            TopicError::Metadata(MetadataError::Conflict(s)) => {
                TopicError::Metadata(MetadataError::Conflict(s.clone()))
            }
            other => TopicError::Metadata(MetadataError::Corrupt(other.to_string())),
        }
    }
}
