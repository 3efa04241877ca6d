//! The gateway's errors: [`RequestError`] (a request or one of its partitions failed; mapped to
//! a Kafka error code in one place, [`RequestError::kafka_code`]) and [`ConnectionError`] (why a
//! connection was closed; never sent to the client, only logged).

use fjord_storage_node::NodeError;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::topics::TopicError;

/// Why a request, or one partition of it, failed. Never closes the connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The topic does not exist in the connection's cluster, or the partition is out of range.
    #[error("unknown topic or partition: {0}")]
    UnknownTopicOrPartition(String),
    /// No topic of the connection's cluster has this id.
    #[error("unknown topic id {0}")]
    UnknownTopicId(Uuid),
    /// The partition has no owner recorded yet (creation in progress).
    #[error("partition {topic}-{partition} has no leader yet")]
    LeaderNotAvailable {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// The client knows a newer leader epoch than this gateway (its cache is behind).
    #[error("leader epoch {client} is newer than the known epoch {known}")]
    UnknownLeaderEpoch {
        /// The client's epoch.
        client: i32,
        /// The gateway's epoch.
        known: i32,
    },
    /// The client's leader epoch is older than the current one.
    #[error("leader epoch {client} is older than the current epoch {known}")]
    FencedLeaderEpoch {
        /// The client's epoch.
        client: i32,
        /// The current epoch.
        known: i32,
    },
    /// A feature Fjord does not offer (yet); the message says which.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The request is well-formed but makes no sense (e.g. a produce without records).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No storage node is registered to coordinate groups.
    #[error("no storage node is available to coordinate groups")]
    NoCoordinator,
    /// The storage node failed or could not be reached.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Topic metadata could not be read.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// The metadata store failed.
    #[error(transparent)]
    Metadata(#[from] fjord_metadata::MetadataError),
    /// The principal may not do this ([`crate::authz`]); carries the Kafka code of the
    /// resource (TOPIC_/GROUP_/CLUSTER_/TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
    #[error(transparent)]
    Unauthorized(#[from] crate::authz::Refusal),
}

impl RequestError {
    /// The Kafka error this maps to. Backend failures map to retriable codes so that clients
    /// retry (after refreshing metadata) instead of giving up.
    pub fn kafka_code(&self) -> ResponseError {
        match self {
            Self::UnknownTopicOrPartition(_) => ResponseError::UnknownTopicOrPartition,
            Self::UnknownTopicId(_) => ResponseError::UnknownTopicId,
            Self::LeaderNotAvailable { .. } => ResponseError::LeaderNotAvailable,
            Self::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
            Self::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
            Self::Unsupported(_) | Self::Invalid(_) => ResponseError::InvalidRequest,
            Self::NoCoordinator => ResponseError::CoordinatorNotAvailable,
            // The owner moved or is recovering: the client refreshes metadata and retries.
            Self::Node(NodeError::Unreachable(_) | NodeError::Unavailable(_)) => {
                ResponseError::NotLeaderOrFollower
            }
            Self::Node(NodeError::InvalidRequest(_)) => ResponseError::UnknownServerError,
            Self::Node(_) => ResponseError::KafkaStorageError,
            Self::Topic(_) | Self::Metadata(_) => ResponseError::KafkaStorageError,
            Self::Unauthorized(r) => match r.code {
                29 => ResponseError::TopicAuthorizationFailed,
                30 => ResponseError::GroupAuthorizationFailed,
                53 => ResponseError::TransactionalIdAuthorizationFailed,
                _ => ResponseError::ClusterAuthorizationFailed,
            },
        }
    }

    /// The numeric Kafka error code.
    pub fn code(&self) -> i16 {
        self.kafka_code().code()
    }

    /// The message sent to the client where the response has room for one.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Why a connection was closed by the gateway. Logged, never sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The size prefix was negative or above the limit for the connection's state.
    #[error("frame size {size} outside 0..={limit}")]
    FrameSize {
        /// The size announced.
        size: i64,
        /// The limit that applied.
        limit: usize,
    },
    /// The frame is too short to hold a request header.
    #[error("frame of {0} bytes is too short for a request header")]
    Truncated(usize),
    /// The request header or body does not decode.
    #[error("{api} v{version} request does not decode: {reason}")]
    Decode {
        /// API name or key.
        api: String,
        /// Version.
        version: i16,
        /// Decoder message.
        reason: String,
    },
    /// An API key this gateway does not know.
    #[error("unknown api key {0}")]
    UnknownApi(i16),
    /// A known API at a version outside the supported range.
    #[error("unsupported version {version} of {api}")]
    UnsupportedVersion {
        /// API name.
        api: String,
        /// Version.
        version: i16,
    },
    /// A produce with acks=0 failed. The client expects no answer, so, as Kafka does, the
    /// connection is closed: the client notices, refreshes metadata and reconnects.
    #[error("acks=0 produce failed, closing the connection: {0}")]
    AcksZeroProduceFailed(String),
    /// A request other than ApiVersions/SaslHandshake/SaslAuthenticate before authentication.
    #[error("{0} before authentication")]
    Unauthenticated(String),
    /// SASL failed or was used out of order.
    #[error("sasl: {0}")]
    Sasl(String),
    /// The authenticated session expired without re-authentication (KIP-368).
    #[error("session expired without re-authentication")]
    SessionExpired,
    /// The connection's credential was deleted, deactivated or expired (or its principal
    /// removed) since it authenticated.
    #[error("credential revoked: {0}")]
    CredentialRevoked(String),
    /// The client did not read a response within the write timeout.
    #[error("write timeout: the client stopped reading")]
    WriteTimeout,
    /// No request within the idle timeout.
    #[error("idle timeout")]
    Idle,
    /// A response could not be encoded (a gateway bug; logged as an error).
    #[error("response encoding failed: {0}")]
    Encode(String),
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_failures_are_retriable() {
        let unreachable = RequestError::Node(NodeError::Unreachable("x".into()));
        assert!(unreachable.kafka_code().is_retriable());
        assert_eq!(unreachable.code(), 6);
        let internal = RequestError::Node(NodeError::Internal("disk".into()));
        assert_eq!(internal.code(), 56);
        assert!(internal.kafka_code().is_retriable());
        let txn = RequestError::Unsupported("transactions are not supported yet");
        assert_eq!(txn.code(), 42);
        assert_eq!(txn.message(), "transactions are not supported yet");
    }
}
