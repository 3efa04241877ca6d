//! FindCoordinator and the consumer-group APIs.
//!
//! Clients see this gateway as every group's coordinator. Each group request is decoded only to
//! learn its group id(s), then its original body is forwarded to the storage node that
//! coordinates the group ([`crate::coordinator`]), and the node's encoded response is returned
//! as is. Requests naming several groups (DescribeGroups, DeleteGroups, OffsetFetch v8+) are
//! split by node when their groups live on different nodes; ListGroups asks every node.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use fjord_storage_node::GroupRequest;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::ResponseError;
use tracing::warn;

mod authz;
mod split;

use split::{list_everywhere, split};

use fjord_tenancy::policy::{Action, Resource};

use super::Ctx;
use crate::error::{ConnectionError, RequestError};
use crate::frame::encode_raw_response;
use crate::request::{decode, Outcome};

/// FindCoordinator key type of consumer groups.
const KEY_GROUP: i8 = 0;
/// FindCoordinator key type of transactional ids.
const KEY_TRANSACTION: i8 = 1;

pub(crate) fn find_coordinator(
    ctx: Ctx<'_>,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let v = ctx.version;
    let cfg = &ctx.gw.config;
    let answer = |key_type: i8, key: &str| -> Result<(), RequestError> {
        match key_type {
            KEY_GROUP => Ok(ctx
                .access
                .allow(Action::DescribeGroup, Resource::Group(key))?),
            KEY_TRANSACTION => {
                ctx.access.allow(
                    Action::DescribeTransactionalId,
                    Resource::TransactionalId(key),
                )?;
                Err(RequestError::Unsupported(
                    "transactions are not supported yet",
                ))
            }
            _ => Err(RequestError::Unsupported(
                "only consumer-group coordinators exist",
            )),
        }
    };
    let (host, port) = ctx.gw.advertised_endpoint(ctx.cluster, ctx.peer);
    let host = StrBytes::from_string(host);
    let me = BrokerId(cfg.broker_id);
    if v >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key.clone());
                match answer(req.key_type, key) {
                    Ok(()) => c.with_node_id(me).with_host(host.clone()).with_port(port),
                    Err(e) => c
                        .with_node_id(BrokerId(-1))
                        .with_error_code(e.code())
                        .with_error_message(Some(StrBytes::from_string(e.message()))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match answer(if v >= 1 { req.key_type } else { KEY_GROUP }, &req.key) {
        Ok(()) => FindCoordinatorResponse::default()
            .with_node_id(me)
            .with_host(host)
            .with_port(port),
        Err(e) => {
            let mut r = FindCoordinatorResponse::default()
                .with_error_code(e.code())
                .with_node_id(BrokerId(-1));
            if v >= 1 {
                r = r.with_error_message(Some(StrBytes::from_string(e.message())));
            }
            r
        }
    }
}

/// A decoded group request, kept to find its groups and to build an error answer.
pub(super) enum GroupReq {
    Join(JoinGroupRequest),
    Sync(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    Leave(LeaveGroupRequest),
    Commit(OffsetCommitRequest),
    Fetch(OffsetFetchRequest),
    Describe(DescribeGroupsRequest),
    /// Decoded only to refuse garbage; it names no group.
    List,
    Delete(DeleteGroupsRequest),
}

impl GroupReq {
    fn decode(api: ApiKey, version: i16, mut body: Bytes) -> Result<Self, ConnectionError> {
        let b = &mut body;
        Ok(match api {
            ApiKey::JoinGroup => Self::Join(decode(api, version, b)?),
            ApiKey::SyncGroup => Self::Sync(decode(api, version, b)?),
            ApiKey::Heartbeat => Self::Heartbeat(decode(api, version, b)?),
            ApiKey::LeaveGroup => Self::Leave(decode(api, version, b)?),
            ApiKey::OffsetCommit => Self::Commit(decode(api, version, b)?),
            ApiKey::OffsetFetch => Self::Fetch(decode(api, version, b)?),
            ApiKey::DescribeGroups => Self::Describe(decode(api, version, b)?),
            ApiKey::ListGroups => {
                decode::<ListGroupsRequest>(api, version, b)?;
                Self::List
            }
            ApiKey::DeleteGroups => Self::Delete(decode(api, version, b)?),
            other => {
                return Err(ConnectionError::UnsupportedVersion {
                    api: format!("{other:?}"),
                    version,
                })
            }
        })
    }

    /// The groups the request names; `None` for ListGroups (all groups).
    fn groups(&self, version: i16) -> Option<Vec<String>> {
        let one = |g: &GroupId| Some(vec![g.to_string()]);
        match self {
            Self::Join(r) => one(&r.group_id),
            Self::Sync(r) => one(&r.group_id),
            Self::Heartbeat(r) => one(&r.group_id),
            Self::Leave(r) => one(&r.group_id),
            Self::Commit(r) => one(&r.group_id),
            Self::Fetch(r) if version >= 8 => {
                Some(r.groups.iter().map(|g| g.group_id.to_string()).collect())
            }
            Self::Fetch(r) => one(&r.group_id),
            Self::Describe(r) => Some(r.groups.iter().map(|g| g.to_string()).collect()),
            Self::Delete(r) => Some(r.groups_names.iter().map(|g| g.to_string()).collect()),
            Self::List => None,
        }
    }

    /// The encoded response that reports `code` for everything the request asked.
    fn error_body(&self, version: i16, code: i16) -> Result<Bytes, ConnectionError> {
        match self {
            Self::Join(_) => {
                let mut r = JoinGroupResponse::default().with_error_code(code);
                if version < 7 {
                    r = r.with_protocol_name(Some(StrBytes::default()));
                }
                encode_body(&r, version)
            }
            Self::Sync(_) => {
                encode_body(&SyncGroupResponse::default().with_error_code(code), version)
            }
            Self::Heartbeat(_) => {
                encode_body(&HeartbeatResponse::default().with_error_code(code), version)
            }
            Self::Leave(_) => encode_body(
                &LeaveGroupResponse::default().with_error_code(code),
                version,
            ),
            Self::Commit(r) => {
                let topics = r
                    .topics
                    .iter()
                    .map(|t| {
                        OffsetCommitResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        OffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                encode_body(
                    &OffsetCommitResponse::default().with_topics(topics),
                    version,
                )
            }
            Self::Fetch(r) if version >= 8 => {
                let groups = r
                    .groups
                    .iter()
                    .map(|g| fetch_group_error(&g.group_id, code))
                    .collect();
                encode_body(&OffsetFetchResponse::default().with_groups(groups), version)
            }
            Self::Fetch(r) => {
                let topics = r
                    .topics
                    .iter()
                    .flatten()
                    .map(|t| {
                        OffsetFetchResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partition_indexes
                                    .iter()
                                    .map(|p| {
                                        OffsetFetchResponsePartition::default()
                                            .with_partition_index(*p)
                                            .with_committed_offset(-1)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                let mut resp = OffsetFetchResponse::default().with_topics(topics);
                if version >= 2 {
                    resp = resp.with_error_code(code);
                }
                encode_body(&resp, version)
            }
            Self::Describe(r) => {
                let groups = r.groups.iter().map(|g| describe_error(g, code)).collect();
                encode_body(
                    &DescribeGroupsResponse::default().with_groups(groups),
                    version,
                )
            }
            Self::List => encode_body(
                &ListGroupsResponse::default().with_error_code(code),
                version,
            ),
            Self::Delete(r) => {
                let results = r
                    .groups_names
                    .iter()
                    .map(|g| delete_error(g, code))
                    .collect();
                encode_body(
                    &DeleteGroupsResponse::default().with_results(results),
                    version,
                )
            }
        }
    }
}

pub(super) fn fetch_group_error(group: &GroupId, code: i16) -> OffsetFetchResponseGroup {
    OffsetFetchResponseGroup::default()
        .with_group_id(group.clone())
        .with_error_code(code)
}

pub(super) fn describe_error(group: &GroupId, code: i16) -> DescribedGroup {
    DescribedGroup::default()
        .with_group_id(group.clone())
        .with_error_code(code)
}

pub(super) fn delete_error(group: &GroupId, code: i16) -> DeletableGroupResult {
    DeletableGroupResult::default()
        .with_group_id(group.clone())
        .with_error_code(code)
}

/// Encodes a message body without header or size.
pub(crate) fn encode_body<M: Encodable>(m: &M, version: i16) -> Result<Bytes, ConnectionError> {
    let size = m
        .compute_size(version)
        .map_err(|e| ConnectionError::Encode(e.to_string()))?;
    let mut buf = BytesMut::with_capacity(size);
    m.encode(&mut buf, version)
        .map_err(|e| ConnectionError::Encode(e.to_string()))?;
    Ok(buf.freeze())
}

/// The error code a group request gets when its coordinator cannot be used: retriable, so the
/// client looks the coordinator up again and retries.
pub(super) fn coordinator_error(e: &RequestError) -> i16 {
    warn!(error = %e, "group coordinator unavailable");
    ResponseError::CoordinatorNotAvailable.code()
}

/// Forwards a group request and frames the coordinator's answer.
pub(crate) async fn forward(ctx: Ctx<'_>, api: ApiKey, corr: i32, body: Bytes) -> Outcome {
    let v = ctx.version;
    let close = |reason| Outcome::Close {
        frame: None,
        delay: Default::default(),
        reason,
    };
    let req = match GroupReq::decode(api, v, body.clone()) {
        Ok(r) => r,
        Err(reason) => return close(reason),
    };
    // Authorization first: a refused request is answered without reaching a coordinator.
    let (req, body, post) = match authz::gate(ctx, req, body) {
        Ok(authz::Gate::Forward(req, body, post)) => (*req, body, post),
        Ok(authz::Gate::Refuse(answer)) => {
            return match encode_raw_response(api, v, corr, &answer) {
                Ok(frame) => Outcome::Respond(frame),
                Err(reason) => close(reason),
            }
        }
        Err(reason) => return close(reason),
    };
    if let Some(refused) = crate::quota::groups::refuse_new_group(ctx, api, corr, &body).await {
        return refused;
    }
    let answer = match req.groups(v) {
        Some(groups) => to_groups(ctx, api, &req, &groups, body).await,
        None => list_everywhere(ctx, api, &req, body).await,
    };
    let answer = answer.and_then(|b| post.apply(ctx, b));
    match answer.and_then(|b| encode_raw_response(api, v, corr, &b)) {
        Ok(frame) => Outcome::Respond(frame),
        Err(reason) => Outcome::Close {
            frame: None,
            delay: Default::default(),
            reason,
        },
    }
}

pub(super) async fn send(
    ctx: Ctx<'_>,
    node: &str,
    api: ApiKey,
    body: Bytes,
) -> Result<Bytes, RequestError> {
    let req = GroupRequest {
        cluster_id: ctx.cluster,
        api_key: api as i16,
        api_version: ctx.version,
        body,
        client_id: ctx.client_id.to_owned(),
        client_host: ctx.client_host.to_owned(),
    };
    Ok(ctx.node(node).await?.group(req).await?.body)
}

async fn to_groups(
    ctx: Ctx<'_>,
    api: ApiKey,
    req: &GroupReq,
    groups: &[String],
    body: Bytes,
) -> Result<Bytes, ConnectionError> {
    let v = ctx.version;
    let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in groups {
        match ctx.gw.coordinators.pick(ctx.cluster, g, ctx.now_ms).await {
            Ok(node) => by_node.entry(node).or_default().push(g.clone()),
            Err(e) => return req.error_body(v, coordinator_error(&e)),
        }
    }
    if by_node.len() <= 1 {
        let node = match by_node.keys().next() {
            Some(n) => n.clone(),
            // A request naming no group (e.g. DescribeGroups []) still goes to a coordinator,
            // which answers it in its own terms.
            None => match ctx.gw.coordinators.nodes(ctx.now_ms).await {
                Ok(nodes) => match nodes.first() {
                    Some(n) => n.clone(),
                    None => {
                        return req.error_body(v, coordinator_error(&RequestError::NoCoordinator))
                    }
                },
                Err(e) => return req.error_body(v, coordinator_error(&e)),
            },
        };
        return match send(ctx, &node, api, body).await {
            Ok(b) => Ok(b),
            Err(e) => req.error_body(v, coordinator_error(&e)),
        };
    }
    split(ctx, api, req, by_node).await
}
