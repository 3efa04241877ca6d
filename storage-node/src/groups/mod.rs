//! Consumer-group coordinators: Kafka's classic group protocol (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup), committed offsets (OffsetCommit, OffsetFetch) and group administration
//! (DescribeGroups, ListGroups, DeleteGroups), answering the request bodies gateways forward.
//!
//! Layout:
//! - [`config`]: [`GroupConfig`], Kafka's group settings.
//! - `state`: one group's state machine (states, members, rebalance start and completion,
//!   expiry); `timers`: its deadlines; `join`, `members`: JoinGroup and Sync/Heartbeat/Leave on
//!   it. All synchronous and given `now`.
//! - `registry`: the hosted groups keyed by (cluster, group), locking, deadline-driven waits.
//! - `wire_check`, `codec`: bounds-checking and decoding request bodies, encoding responses.
//! - `membership_api`, `offsets`, `admin`: the per-API handlers (wire ↔ state machine, store).
//! - [`error`]: [`GroupError`], the one mapping to Kafka error codes.
//!
//! Membership lives in memory only (as on a Kafka broker that just became coordinator, members
//! rejoin after a coordinator restart); committed offsets are durable in the metadata store,
//! which is the truth for OffsetFetch, ListGroups and DeleteGroups.
//!
//! Time: rebalance and session deadlines run on tokio's monotonic clock (so tests can pause
//! it); the `now_ms` given to [`GroupCoordinator::handle`] is wall-clock time and stamps
//! committed offsets.

mod admin;
mod codec;
pub mod config;
pub mod error;
mod join;
mod members;
mod membership_api;
mod offsets;
mod registry;
mod state;
mod timers;
mod wire_check;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use fjord_metadata::MetadataStore;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DescribeGroupsRequest, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
    SyncGroupRequest,
};
use kafka_protocol::protocol::Message;
use tracing::{debug, info_span, Instrument};

use crate::api::{GroupRequest, GroupResponse, NodeError};

pub use config::GroupConfig;
pub use error::GroupError;

use registry::Registry;

const fn range<T: Message>(key: ApiKey) -> (i16, i16, i16) {
    (key as i16, T::VERSIONS.min, T::VERSIONS.max)
}

/// `(api key, min version, max version)` of every API the coordinator answers: all versions
/// the `kafka-protocol` crate decodes (Kafka 4.0's ranges). Gateways advertise exactly these.
pub const SUPPORTED_VERSIONS: &[(i16, i16, i16)] = &[
    range::<OffsetCommitRequest>(ApiKey::OffsetCommit),
    range::<OffsetFetchRequest>(ApiKey::OffsetFetch),
    range::<JoinGroupRequest>(ApiKey::JoinGroup),
    range::<HeartbeatRequest>(ApiKey::Heartbeat),
    range::<LeaveGroupRequest>(ApiKey::LeaveGroup),
    range::<SyncGroupRequest>(ApiKey::SyncGroup),
    range::<DescribeGroupsRequest>(ApiKey::DescribeGroups),
    range::<ListGroupsRequest>(ApiKey::ListGroups),
    range::<DeleteGroupsRequest>(ApiKey::DeleteGroups),
];

/// Who sent a request, as the gateway saw it (Kafka's request header client id and the peer
/// address). Used for member ids and DescribeGroups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The `client.id` of the request header.
    pub client_id: String,
    /// The client's address (e.g. `/10.0.0.7`).
    pub client_host: String,
}

/// Hosts the consumer groups whose coordinator shard this node owns.
pub struct GroupCoordinator {
    store: Arc<dyn MetadataStore>,
    config: GroupConfig,
    registry: Registry,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GroupCoordinator {
    /// Creates a coordinator with Kafka's default settings that keeps committed offsets in
    /// `store`.
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        Self::with_config(store, GroupConfig::default())
    }

    /// Creates a coordinator with explicit settings.
    pub fn with_config(store: Arc<dyn MetadataStore>, config: GroupConfig) -> Self {
        Self {
            store,
            config,
            registry: Registry::new(),
        }
    }

    /// Handles one forwarded group request without client details (member ids then start
    /// with `member-`, DescribeGroups shows empty client id and host).
    pub async fn handle(&self, req: GroupRequest, now_ms: i64) -> Result<GroupResponse, NodeError> {
        self.handle_from(req, &ClientInfo::default(), now_ms).await
    }

    /// Handles one forwarded group request sent by `client`. Long waits (JoinGroup until the
    /// join phase completes, SyncGroup until the leader assigns) happen inside.
    pub async fn handle_from(
        &self,
        req: GroupRequest,
        client: &ClientInfo,
        now_ms: i64,
    ) -> Result<GroupResponse, NodeError> {
        let key = ApiKey::try_from(req.api_key)
            .map_err(|()| NodeError::InvalidRequest(format!("unknown api key {}", req.api_key)))?;
        let supported = SUPPORTED_VERSIONS
            .iter()
            .any(|(k, min, max)| *k == req.api_key && (*min..=*max).contains(&req.api_version));
        if !supported {
            return Err(NodeError::InvalidRequest(format!(
                "the group coordinator does not answer {key:?} v{}",
                req.api_version
            )));
        }
        wire_check::check(key, req.api_version, &req.body)?;
        let span = info_span!("group_request", api = ?key, version = req.api_version, cluster = %req.cluster_id);
        async {
            let v = req.api_version;
            let cluster = req.cluster_id;
            let body = match key {
                ApiKey::JoinGroup => self.join_group(cluster, &req.body, v, client).await?,
                ApiKey::SyncGroup => self.sync_group(cluster, &req.body, v).await?,
                ApiKey::Heartbeat => self.heartbeat(cluster, &req.body, v)?,
                ApiKey::LeaveGroup => self.leave_group(cluster, &req.body, v)?,
                ApiKey::OffsetCommit => self.offset_commit(cluster, &req.body, v, now_ms).await?,
                ApiKey::OffsetFetch => self.offset_fetch(cluster, &req.body, v).await?,
                ApiKey::DescribeGroups => self.describe_groups(cluster, &req.body, v).await?,
                ApiKey::ListGroups => self.list_groups(cluster, &req.body, v).await?,
                ApiKey::DeleteGroups => self.delete_groups(cluster, &req.body, v).await?,
                other => {
                    return Err(NodeError::InvalidRequest(format!(
                        "{other:?} is not a group api"
                    )))
                }
            };
            debug!(bytes = body.len(), "group request answered");
            Ok(GroupResponse { body })
        }
        .instrument(span)
        .await
    }
}
