//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup: wire ↔ state machine.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use tokio::time::Instant;
use tracing::debug;
use uuid::Uuid;

use super::codec::{decode, encode, sb, st};
use super::error::{code_of, GroupError};
use super::join::{JoinAction, JoinParams};
use super::members::{LeavingMember, SyncAction, SyncParams};
use super::registry::GroupKey;
use super::state::JoinOutcome;
use super::{ClientInfo, GroupCoordinator};
use crate::api::NodeError;

impl GroupCoordinator {
    pub(super) async fn join_group(
        &self,
        cluster: Uuid,
        body: &Bytes,
        version: i16,
        client: &ClientInfo,
    ) -> Result<Bytes, NodeError> {
        let req: JoinGroupRequest = decode(body, version)?;
        let outcome = self.join_outcome(cluster, req, version, client).await;
        encode(&join_response(outcome, version), version)
    }

    async fn join_outcome(
        &self,
        cluster: Uuid,
        req: JoinGroupRequest,
        version: i16,
        client: &ClientInfo,
    ) -> JoinOutcome {
        let member_id = st(&req.member_id);
        let key = match member_group_key(cluster, &req.group_id) {
            Ok(key) => key,
            Err(e) => return Err((e, member_id)),
        };
        let cfg = &self.config;
        if req.session_timeout_ms < cfg.min_session_timeout_ms
            || req.session_timeout_ms > cfg.max_session_timeout_ms
        {
            return Err((GroupError::InvalidSessionTimeout, member_id));
        }
        // JoinGroup v0 has no rebalance timeout: the session timeout serves as both.
        let rebalance_ms = if version == 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        };
        let instance_id = req.group_instance_id.as_ref().map(st);
        let prefix = match (&instance_id, client.client_id.as_str()) {
            (Some(instance), _) => instance.clone(),
            (None, "") => "member".to_string(),
            (None, client_id) => client_id.to_string(),
        };
        let params = JoinParams {
            member_id,
            instance_id,
            client_id: client.client_id.clone(),
            client_host: client.client_host.clone(),
            session_timeout: millis(req.session_timeout_ms),
            rebalance_timeout: millis(rebalance_ms),
            protocol_type: st(&req.protocol_type),
            protocols: req
                .protocols
                .iter()
                .map(|p| (st(&p.name), p.metadata.clone()))
                .collect(),
            require_known_member_id: version >= 4,
            new_member_id: format!("{prefix}-{}", Uuid::new_v4()),
        };
        let fallback_id = params.member_id.clone();
        let action = self
            .registry
            .with_group(&key, true, cfg, |g| g.join(params, Instant::now(), cfg));
        match action {
            Some(JoinAction::Done(outcome)) => outcome,
            Some(JoinAction::Wait(rx)) => self
                .registry
                .wait(&key, cfg, rx)
                .await
                .unwrap_or(Err((GroupError::RebalanceInProgress, fallback_id))),
            None => Err((GroupError::CoordinatorNotAvailable, fallback_id)),
        }
    }

    pub(super) async fn sync_group(
        &self,
        cluster: Uuid,
        body: &Bytes,
        version: i16,
    ) -> Result<Bytes, NodeError> {
        let req: SyncGroupRequest = decode(body, version)?;
        let (outcome, (ptype, pname)) = match member_group_key(cluster, &req.group_id) {
            Err(e) => (Err(e), (None, None)),
            Ok(key) => self.sync_outcome(&key, &req, version).await,
        };
        if let Err(e) = &outcome {
            debug!(error = %e, "sync group refused");
        }
        let resp = SyncGroupResponse::default()
            .with_error_code(code_of(outcome.as_ref().err()))
            .with_protocol_type(ptype.map(sb))
            .with_protocol_name(pname.map(sb))
            .with_assignment(outcome.unwrap_or_default());
        encode(&resp, version)
    }

    /// SyncGroup on an existing key: the member's assignment and, from v5 on when it succeeds,
    /// the group's protocol type and name.
    async fn sync_outcome(
        &self,
        key: &GroupKey,
        req: &SyncGroupRequest,
        version: i16,
    ) -> (Result<Bytes, GroupError>, (Option<String>, Option<String>)) {
        let params = SyncParams {
            member_id: st(&req.member_id),
            instance_id: req.group_instance_id.as_ref().map(st),
            generation: req.generation_id,
            protocol_type: req.protocol_type.as_ref().map(st),
            protocol_name: req.protocol_name.as_ref().map(st),
            assignments: req
                .assignments
                .iter()
                .map(|a| (st(&a.member_id), a.assignment.clone()))
                .collect(),
        };
        let cfg = &self.config;
        let outcome = match self
            .registry
            .with_group(key, false, cfg, |g| g.sync(params, Instant::now()))
        {
            None => Err(GroupError::UnknownMemberId),
            Some(SyncAction::Done(outcome)) => outcome,
            Some(SyncAction::Wait(rx)) => self
                .registry
                .wait(key, cfg, rx)
                .await
                .unwrap_or(Err(GroupError::RebalanceInProgress)),
        };
        let protocol = match (&outcome, version >= 5) {
            (Ok(_), true) => self.protocol_of(key),
            _ => (None, None),
        };
        (outcome, protocol)
    }

    /// The group's protocol type and name (for SyncGroup v5+ answers).
    fn protocol_of(&self, key: &GroupKey) -> (Option<String>, Option<String>) {
        self.registry
            .with_group(key, false, &self.config, |g| {
                (g.protocol_type.clone(), g.protocol_name.clone())
            })
            .unwrap_or((None, None))
    }

    pub(super) fn heartbeat(
        &self,
        cluster: Uuid,
        body: &Bytes,
        version: i16,
    ) -> Result<Bytes, NodeError> {
        let req: HeartbeatRequest = decode(body, version)?;
        let result = member_group_key(cluster, &req.group_id).and_then(|key| {
            let member = st(&req.member_id);
            let instance = req.group_instance_id.as_ref().map(st);
            self.registry
                .with_group(&key, false, &self.config, |g| {
                    g.heartbeat(
                        &member,
                        instance.as_deref(),
                        req.generation_id,
                        Instant::now(),
                    )
                })
                .unwrap_or(Err(GroupError::UnknownMemberId))
        });
        let resp = HeartbeatResponse::default().with_error_code(code_of(result.err().as_ref()));
        encode(&resp, version)
    }

    pub(super) fn leave_group(
        &self,
        cluster: Uuid,
        body: &Bytes,
        version: i16,
    ) -> Result<Bytes, NodeError> {
        let req: LeaveGroupRequest = decode(body, version)?;
        let leaving: Vec<LeavingMember> = if version >= 3 {
            req.members
                .iter()
                .map(|m| LeavingMember {
                    member_id: st(&m.member_id),
                    instance_id: m.group_instance_id.as_ref().map(st),
                })
                .collect()
        } else {
            vec![LeavingMember {
                member_id: st(&req.member_id),
                instance_id: None,
            }]
        };
        let result = member_group_key(cluster, &req.group_id).and_then(|key| {
            let cfg = &self.config;
            self.registry
                .with_group(&key, false, cfg, |g| g.leave(&leaving, Instant::now(), cfg))
                // An unknown group knows none of the members.
                .unwrap_or_else(|| Ok(vec![Some(GroupError::UnknownMemberId); leaving.len()]))
        });
        let resp = match result {
            Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
            Ok(errors) if version < 3 => {
                // Before v3 there is one member and its error is the top-level error.
                LeaveGroupResponse::default()
                    .with_error_code(code_of(errors.first().and_then(Option::as_ref)))
            }
            Ok(errors) => LeaveGroupResponse::default().with_members(
                leaving
                    .iter()
                    .zip(errors)
                    .map(|(l, e)| {
                        MemberResponse::default()
                            .with_member_id(sb(l.member_id.clone()))
                            .with_group_instance_id(l.instance_id.clone().map(sb))
                            .with_error_code(code_of(e.as_ref()))
                    })
                    .collect(),
            ),
        };
        encode(&resp, version)
    }
}

/// The key of the group a member request names: an empty group id is INVALID_GROUP_ID, as
/// Kafka's coordinator answers the membership APIs.
fn member_group_key(cluster: Uuid, group_id: &GroupId) -> Result<GroupKey, GroupError> {
    if group_id.is_empty() {
        return Err(GroupError::InvalidGroupId);
    }
    Ok(GroupKey::new(cluster, group_id))
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Builds the JoinGroup response for `version`.
fn join_response(outcome: JoinOutcome, version: i16) -> JoinGroupResponse {
    let resp = match outcome {
        Ok(ok) => JoinGroupResponse::default()
            .with_generation_id(ok.generation)
            .with_protocol_type(ok.protocol_type.map(sb))
            .with_protocol_name(ok.protocol_name.map(sb))
            .with_leader(sb(ok.leader))
            .with_member_id(sb(ok.member_id))
            .with_members(
                ok.members
                    .into_iter()
                    .map(|m| {
                        JoinGroupResponseMember::default()
                            .with_member_id(sb(m.member_id))
                            .with_group_instance_id(if version >= 5 {
                                m.instance_id.map(sb)
                            } else {
                                None
                            })
                            .with_metadata(m.metadata)
                    })
                    .collect(),
            ),
        Err((e, member_id)) => {
            debug!(error = %e, "join group refused");
            JoinGroupResponse::default()
                .with_error_code(e.code())
                .with_generation_id(-1)
                .with_member_id(sb(member_id))
        }
    };
    // Before v7 the protocol name is not nullable and the type is not sent at all.
    if version < 7 {
        let name = resp.protocol_name.clone().unwrap_or_default();
        resp.with_protocol_type(None).with_protocol_name(Some(name))
    } else {
        resp
    }
}
