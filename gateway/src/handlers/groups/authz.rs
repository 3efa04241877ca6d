//! Authorization of the group APIs before they are forwarded to a coordinator, and the
//! filtering of their answers.
//!
//! - JoinGroup, SyncGroup, Heartbeat, LeaveGroup: AlterGroup on the group, else
//!   GROUP_AUTHORIZATION_FAILED.
//! - OffsetCommit: AlterGroup on the group (else every partition GROUP_AUTHORIZATION_FAILED),
//!   ReadData on each topic: refused topics are taken out of the forwarded request (nothing is
//!   committed for them) and answered TOPIC_AUTHORIZATION_FAILED.
//! - OffsetFetch: DescribeGroup on each group (refused groups are not forwarded); in the answer,
//!   topics the principal may not describe are TOPIC_AUTHORIZATION_FAILED when named, and left
//!   out when the client asked for all.
//! - DescribeGroups / DeleteGroups: DescribeGroup / DeleteGroup per group; refused groups are
//!   not forwarded and answered GROUP_AUTHORIZATION_FAILED in request order.
//! - ListGroups: everything with DescribeCluster, else only the groups it may describe.

use std::collections::HashSet;

use bytes::Bytes;
use fjord_tenancy::policy::{Action, Resource, ResourceKind};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use super::{delete_error, describe_error, encode_body, fetch_group_error, GroupReq};
use crate::error::ConnectionError;
use crate::handlers::Ctx;

/// What to do after the checks.
pub(super) enum Gate {
    /// Answer this body without forwarding anything.
    Refuse(Bytes),
    /// Forward this (possibly narrowed) request, then pass the answer through [`Post::apply`].
    Forward(Box<GroupReq>, Bytes, Post),
}

/// How to complete a coordinator's answer.
pub(super) enum Post {
    /// Unchanged.
    None,
    /// OffsetCommit: add the refused topics (with their partitions).
    Commit(Vec<(TopicName, Vec<i32>, i16)>),
    /// OffsetFetch: scrub topics (`named`: the groups, or for v0–7 the request, that named
    /// their topics); put `refused` groups back in `order`.
    Fetch {
        named: HashSet<GroupId>,
        order: Vec<GroupId>,
        refused: Vec<GroupId>,
    },
    /// DescribeGroups: refused groups to put back in this request order.
    Describe {
        order: Vec<GroupId>,
        refused: Vec<GroupId>,
    },
    /// DeleteGroups: refused groups to put back in this request order.
    Delete {
        order: Vec<GroupId>,
        refused: Vec<GroupId>,
    },
    /// ListGroups: keep only the groups the principal may describe.
    List,
}

const GROUP_DENIED: i16 = 30;

/// Checks a decoded group request; `body` is its original encoding.
pub(super) fn gate(ctx: Ctx<'_>, req: GroupReq, body: Bytes) -> Result<Gate, ConnectionError> {
    let v = ctx.version;
    let a = ctx.access;
    let group_ok = |action: Action, g: &GroupId| a.allow(action, Resource::Group(g)).is_ok();
    let single = |g: &GroupId| -> Result<Option<Gate>, ConnectionError> {
        if group_ok(Action::AlterGroup, g) {
            Ok(None)
        } else {
            Ok(Some(Gate::Refuse(req.error_body(v, GROUP_DENIED)?)))
        }
    };
    let refusal = match &req {
        GroupReq::Join(r) => single(&r.group_id)?,
        GroupReq::Sync(r) => single(&r.group_id)?,
        GroupReq::Heartbeat(r) => single(&r.group_id)?,
        GroupReq::Leave(r) => single(&r.group_id)?,
        _ => None,
    };
    if let Some(refused) = refusal {
        return Ok(refused);
    }
    match req {
        GroupReq::Commit(r) => {
            if !group_ok(Action::AlterGroup, &r.group_id) {
                let req = GroupReq::Commit(r);
                return Ok(Gate::Refuse(req.error_body(v, GROUP_DENIED)?));
            }
            let mut refused = Vec::new();
            let mut kept = Vec::new();
            for t in &r.topics {
                let wanted = [
                    (Action::ReadData, Resource::Topic(&t.name)),
                    (Action::AlterGroup, Resource::Group(&r.group_id)),
                ];
                match a.check(&wanted, ResourceKind::Topic) {
                    Ok(()) => kept.push(t.clone()),
                    Err(e) => refused.push((
                        t.name.clone(),
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                        e.code,
                    )),
                }
            }
            if refused.is_empty() {
                return Ok(Gate::Forward(
                    Box::new(GroupReq::Commit(r)),
                    body,
                    Post::None,
                ));
            }
            let narrowed = r.with_topics(kept);
            let body = encode_body(&narrowed, v)?;
            Ok(Gate::Forward(
                Box::new(GroupReq::Commit(narrowed)),
                body,
                Post::Commit(refused),
            ))
        }
        GroupReq::Fetch(r) if v >= 8 => {
            let order: Vec<GroupId> = r.groups.iter().map(|g| g.group_id.clone()).collect();
            let named = r
                .groups
                .iter()
                .filter(|g| g.topics.is_some())
                .map(|g| g.group_id.clone())
                .collect();
            let (kept, refused): (Vec<_>, Vec<_>) = r
                .groups
                .iter()
                .cloned()
                .partition(|g| group_ok(Action::DescribeGroup, &g.group_id));
            let refused: Vec<GroupId> = refused.into_iter().map(|g| g.group_id).collect();
            let post = Post::Fetch {
                named,
                order,
                refused: refused.clone(),
            };
            if refused.is_empty() {
                return Ok(Gate::Forward(Box::new(GroupReq::Fetch(r)), body, post));
            }
            let narrowed = r.with_groups(kept);
            let body = encode_body(&narrowed, v)?;
            Ok(Gate::Forward(
                Box::new(GroupReq::Fetch(narrowed)),
                body,
                post,
            ))
        }
        GroupReq::Fetch(r) => {
            if !group_ok(Action::DescribeGroup, &r.group_id) {
                let req = GroupReq::Fetch(r);
                return Ok(Gate::Refuse(req.error_body(v, GROUP_DENIED)?));
            }
            let named = if r.topics.is_some() {
                HashSet::from([r.group_id.clone()])
            } else {
                HashSet::new()
            };
            Ok(Gate::Forward(
                Box::new(GroupReq::Fetch(r)),
                body,
                Post::Fetch {
                    named,
                    order: Vec::new(),
                    refused: Vec::new(),
                },
            ))
        }
        GroupReq::Describe(r) => {
            let order = r.groups.clone();
            let (kept, refused): (Vec<_>, Vec<_>) = r
                .groups
                .iter()
                .cloned()
                .partition(|g| group_ok(Action::DescribeGroup, g));
            let post = Post::Describe { order, refused };
            let narrowed = r.with_groups(kept);
            let body = encode_body(&narrowed, v)?;
            Ok(Gate::Forward(
                Box::new(GroupReq::Describe(narrowed)),
                body,
                post,
            ))
        }
        GroupReq::Delete(r) => {
            let order = r.groups_names.clone();
            let (kept, refused): (Vec<_>, Vec<_>) = r
                .groups_names
                .iter()
                .cloned()
                .partition(|g| group_ok(Action::DeleteGroup, g));
            let post = Post::Delete { order, refused };
            let narrowed = r.with_groups_names(kept);
            let body = encode_body(&narrowed, v)?;
            Ok(Gate::Forward(
                Box::new(GroupReq::Delete(narrowed)),
                body,
                post,
            ))
        }
        GroupReq::List => {
            let post = if a.may(Action::DescribeCluster, Resource::Cluster) {
                Post::None
            } else {
                Post::List
            };
            Ok(Gate::Forward(Box::new(GroupReq::List), body, post))
        }
        other => Ok(Gate::Forward(Box::new(other), body, Post::None)),
    }
}

fn decode<T: Decodable>(mut b: Bytes, v: i16) -> Result<T, ConnectionError> {
    T::decode(&mut b, v).map_err(|e| ConnectionError::Decode {
        api: "coordinator answer".into(),
        version: v,
        reason: e.to_string(),
    })
}

/// Puts refused groups' error entries back among the answered ones, in request order.
fn in_order<E>(
    order: &[GroupId],
    refused: &[GroupId],
    answered: Vec<E>,
    id: impl Fn(&E) -> &GroupId,
    error: impl Fn(&GroupId) -> E,
) -> Vec<E> {
    let refused: HashSet<&GroupId> = refused.iter().collect();
    let mut answered: Vec<Option<E>> = answered.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(order.len());
    for g in order {
        if refused.contains(g) {
            out.push(error(g));
        } else if let Some(slot) = answered
            .iter_mut()
            .find(|e| e.as_ref().is_some_and(|e| id(e) == g))
        {
            out.extend(slot.take());
        }
    }
    // Anything the coordinator answered that the request did not name stays, at the end.
    out.extend(answered.into_iter().flatten());
    out
}

impl Post {
    /// Completes the coordinator's answer `body` (encoded at the request's version).
    pub(super) fn apply(self, ctx: Ctx<'_>, body: Bytes) -> Result<Bytes, ConnectionError> {
        let v = ctx.version;
        let a = ctx.access;
        let describable = |t: &str| a.may(Action::DescribeTopic, Resource::Topic(t));
        match self {
            Post::None => Ok(body),
            Post::Commit(refused) => {
                let mut resp: OffsetCommitResponse = decode(body, v)?;
                resp.topics
                    .extend(refused.into_iter().map(|(name, parts, code)| {
                        OffsetCommitResponseTopic::default()
                            .with_name(name)
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|p| {
                                        OffsetCommitResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    }));
                encode_body(&resp, v)
            }
            Post::Fetch {
                named,
                order,
                refused,
            } => {
                let mut resp: OffsetFetchResponse = decode(body, v)?;
                if v >= 8 {
                    for g in &mut resp.groups {
                        let named = named.contains(&g.group_id);
                        g.topics.retain_mut(|t| {
                            keep_topic(&t.name, named, &describable, |code| {
                                for p in &mut t.partitions {
                                    p.error_code = code;
                                    p.committed_offset = -1;
                                }
                            })
                        });
                    }
                    let groups = std::mem::take(&mut resp.groups);
                    resp.groups = in_order(
                        &order,
                        &refused,
                        groups,
                        |g| &g.group_id,
                        |g| fetch_group_error(g, GROUP_DENIED),
                    );
                } else {
                    let named = !named.is_empty();
                    resp.topics.retain_mut(|t| {
                        keep_topic(&t.name, named, &describable, |code| {
                            for p in &mut t.partitions {
                                p.error_code = code;
                                p.committed_offset = -1;
                            }
                        })
                    });
                }
                encode_body(&resp, v)
            }
            Post::Describe { order, refused } => {
                let mut resp: DescribeGroupsResponse = decode(body, v)?;
                let groups = std::mem::take(&mut resp.groups);
                resp.groups = in_order(
                    &order,
                    &refused,
                    groups,
                    |g| &g.group_id,
                    |g| describe_error(g, GROUP_DENIED),
                );
                encode_body(&resp, v)
            }
            Post::Delete { order, refused } => {
                let mut resp: DeleteGroupsResponse = decode(body, v)?;
                let results = std::mem::take(&mut resp.results);
                resp.results = in_order(
                    &order,
                    &refused,
                    results,
                    |g| &g.group_id,
                    |g| delete_error(g, GROUP_DENIED),
                );
                encode_body(&resp, v)
            }
            Post::List => {
                let mut resp: ListGroupsResponse = decode(body, v)?;
                resp.groups
                    .retain(|g| a.may(Action::DescribeGroup, Resource::Group(&g.group_id)));
                encode_body(&resp, v)
            }
        }
    }
}

/// Whether an OffsetFetch answer keeps a topic: describable topics stay; others stay only when
/// the client named them, marked with TOPIC_AUTHORIZATION_FAILED by `deny`.
fn keep_topic(
    name: &TopicName,
    named: bool,
    describable: &impl Fn(&str) -> bool,
    deny: impl FnOnce(i16),
) -> bool {
    if describable(name) {
        return true;
    }
    if named {
        deny(ResourceKind::Topic.authorization_failed_code());
    }
    named
}
