//! The coordinator's error type and its one mapping to Kafka error codes.

use kafka_protocol::ResponseError;

/// Why a group operation was refused. Each variant is a Kafka error the client knows how to
/// react to (rejoin, retry, rediscover the coordinator); [`GroupError::code`] is the only place
/// that maps them to the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The group is being removed (deleted or unloaded); the client should retry.
    #[error("the group is being removed")]
    CoordinatorNotAvailable,
    /// The group id is empty where a group-managed API needs one.
    #[error("invalid group id")]
    InvalidGroupId,
    /// The member id is not (or no longer) known to the group.
    #[error("unknown member id")]
    UnknownMemberId,
    /// The generation id does not match the group's current generation.
    #[error("illegal generation")]
    IllegalGeneration,
    /// The member's protocol type or protocols do not fit the group.
    #[error("inconsistent group protocol")]
    InconsistentGroupProtocol,
    /// The session timeout is outside the configured range.
    #[error("session timeout outside the allowed range")]
    InvalidSessionTimeout,
    /// The group is rebalancing; the member must rejoin.
    #[error("rebalance in progress")]
    RebalanceInProgress,
    /// A new dynamic member must rejoin with the member id it was given (JoinGroup v4+).
    #[error("member id required")]
    MemberIdRequired,
    /// Another member holds this `group.instance.id` now.
    #[error("fenced instance id")]
    FencedInstanceId,
    /// The group has as many members as it may have.
    #[error("group max size reached")]
    GroupMaxSizeReached,
    /// DeleteGroups on a group that still has members.
    #[error("the group is not empty")]
    NonEmptyGroup,
    /// The group does not exist.
    #[error("group id not found")]
    GroupIdNotFound,
    /// A committed offset's metadata string is over the configured limit.
    #[error("offset metadata too large")]
    OffsetMetadataTooLarge,
    /// The metadata store failed; offsets were not (or may not have been) persisted.
    #[error("metadata store failed: {0}")]
    Store(String),
}

impl GroupError {
    /// The Kafka error code sent to the client.
    pub fn code(&self) -> i16 {
        let e = match self {
            // A failing store is transient from the client's point of view: COORDINATOR_NOT_AVAILABLE
            // makes clients rediscover the coordinator and retry, as Kafka answers when it cannot
            // append to the offsets topic.
            GroupError::CoordinatorNotAvailable | GroupError::Store(_) => {
                ResponseError::CoordinatorNotAvailable
            }
            GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
            GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
            GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
            GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
            GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
            GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
            GroupError::MemberIdRequired => ResponseError::MemberIdRequired,
            GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
            GroupError::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
            GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
            GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
            GroupError::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
        };
        e.code()
    }
}

impl From<fjord_metadata::MetadataError> for GroupError {
    fn from(e: fjord_metadata::MetadataError) -> Self {
        GroupError::Store(e.to_string())
    }
}

/// Kafka error code `NONE`.
pub(crate) const NONE: i16 = 0;

/// Code of an optional error (`NONE` when absent).
pub(crate) fn code_of(e: Option<&GroupError>) -> i16 {
    e.map_or(NONE, GroupError::code)
}
