//! The multi-node cases of group forwarding: requests naming groups on several coordinators
//! are split and their answers merged; ListGroups asks every node.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;

use super::{
    coordinator_error, delete_error, describe_error, encode_body, fetch_group_error, send, GroupReq,
};
use crate::error::{ConnectionError, RequestError};
use crate::handlers::Ctx;

/// Sends each node the part of a multi-group request it coordinates and merges the answers in
/// the request's order.
pub(super) async fn split(
    ctx: Ctx<'_>,
    api: ApiKey,
    req: &GroupReq,
    by_node: BTreeMap<String, Vec<String>>,
) -> Result<Bytes, ConnectionError> {
    let v = ctx.version;
    let mut sends = Vec::new();
    for (node, groups) in &by_node {
        let sub = match req {
            GroupReq::Describe(r) => encode_body(
                &r.clone()
                    .with_groups(groups.iter().map(|g| group_id(g)).collect()),
                v,
            )?,
            GroupReq::Delete(r) => encode_body(
                &r.clone()
                    .with_groups_names(groups.iter().map(|g| group_id(g)).collect()),
                v,
            )?,
            GroupReq::Fetch(r) => {
                let part = r
                    .groups
                    .iter()
                    .filter(|g| groups.contains(&g.group_id.to_string()))
                    .cloned()
                    .collect();
                encode_body(&r.clone().with_groups(part), v)?
            }
            // Single-group requests never have more than one node.
            _ => return req.error_body(v, ResponseError::InvalidRequest.code()),
        };
        sends.push(async move { (groups.clone(), send(ctx, node, api, sub).await) });
    }
    let answers = futures::future::join_all(sends).await;
    match req {
        GroupReq::Describe(r) => {
            let groups = merge_by_group(
                v,
                answers,
                r.groups.iter(),
                |resp: DescribeGroupsResponse| resp.groups,
                |g| g.group_id.to_string(),
                describe_error,
            );
            encode_body(&DescribeGroupsResponse::default().with_groups(groups), v)
        }
        GroupReq::Delete(r) => {
            let results = merge_by_group(
                v,
                answers,
                r.groups_names.iter(),
                |resp: DeleteGroupsResponse| resp.results,
                |g| g.group_id.to_string(),
                delete_error,
            );
            encode_body(&DeleteGroupsResponse::default().with_results(results), v)
        }
        GroupReq::Fetch(r) => {
            let groups = merge_by_group(
                v,
                answers,
                r.groups.iter().map(|g| &g.group_id),
                |resp: OffsetFetchResponse| resp.groups,
                |g| g.group_id.to_string(),
                fetch_group_error,
            );
            encode_body(&OffsetFetchResponse::default().with_groups(groups), v)
        }
        _ => req.error_body(v, ResponseError::InvalidRequest.code()),
    }
}

/// Puts the per-group entries of the nodes' answers back in the request's group order
/// (`order`). `entries` takes a decoded answer apart and `id` names an entry's group; the groups
/// of a node that failed, or that its answer left out, get `error(group, code)`.
fn merge_by_group<'g, Resp: Decodable, E>(
    v: i16,
    answers: Vec<(Vec<String>, Result<Bytes, RequestError>)>,
    order: impl Iterator<Item = &'g GroupId>,
    entries: impl Fn(Resp) -> Vec<E>,
    id: impl Fn(&E) -> String,
    error: impl Fn(&GroupId, i16) -> E,
) -> Vec<E> {
    let mut found: HashMap<String, E> = HashMap::new();
    for (groups, res) in answers {
        match res.and_then(|mut b| {
            Resp::decode(&mut b, v).map_err(|e| RequestError::Invalid(e.to_string()))
        }) {
            Ok(resp) => found.extend(entries(resp).into_iter().map(|g| (id(&g), g))),
            Err(e) => {
                let code = coordinator_error(&e);
                found.extend(
                    groups
                        .iter()
                        .map(|g| (g.clone(), error(&group_id(g), code))),
                );
            }
        }
    }
    order
        .map(|g| {
            found
                .remove(g.as_str())
                .unwrap_or_else(|| error(g, ResponseError::CoordinatorNotAvailable.code()))
        })
        .collect()
}

/// ListGroups: every coordinator node lists its groups, and the lists are merged so that each
/// group appears once. Every node lists the groups that merely have committed offsets in the
/// shared store (as Empty, with no protocol type); the group's coordinator may know it better
/// (members, a protocol type), and its entry wins.
pub(super) async fn list_everywhere(
    ctx: Ctx<'_>,
    api: ApiKey,
    req: &GroupReq,
    body: Bytes,
) -> Result<Bytes, ConnectionError> {
    let v = ctx.version;
    let nodes = match ctx.gw.coordinators.nodes(ctx.now_ms).await {
        Ok(n) => n,
        Err(e) => return req.error_body(v, coordinator_error(&e)),
    };
    match nodes.as_slice() {
        [] => req.error_body(v, coordinator_error(&RequestError::NoCoordinator)),
        [only] => match send(ctx, only, api, body).await {
            Ok(b) => Ok(b),
            Err(e) => req.error_body(v, coordinator_error(&e)),
        },
        many => {
            let answers =
                futures::future::join_all(many.iter().map(|n| send(ctx, n, api, body.clone())))
                    .await;
            let mut merged = ListGroupsResponse::default();
            let mut listed: Vec<ListedGroup> = Vec::new();
            let mut index: HashMap<String, usize> = HashMap::new();
            for res in answers {
                let decoded = res.and_then(|mut b| {
                    ListGroupsResponse::decode(&mut b, v)
                        .map_err(|e| RequestError::Invalid(e.to_string()))
                });
                match decoded {
                    Ok(resp) => {
                        if merged.error_code == 0 {
                            merged.error_code = resp.error_code;
                        }
                        for g in resp.groups {
                            match index.get(g.group_id.as_str()) {
                                Some(&i) => {
                                    if let Some(kept) = listed.get_mut(i) {
                                        if listing_rank(&g) > listing_rank(kept) {
                                            *kept = g;
                                        }
                                    }
                                }
                                None => {
                                    index.insert(g.group_id.to_string(), listed.len());
                                    listed.push(g);
                                }
                            }
                        }
                    }
                    Err(e) => {
                        let code = coordinator_error(&e);
                        if merged.error_code == 0 {
                            merged.error_code = code;
                        }
                    }
                }
            }
            merged.groups = listed;
            encode_body(&merged, v)
        }
    }
}

/// How much a node knows about a listed group: a live state (v4+ lists states) beats Empty,
/// then a protocol type beats none (offsets-only groups have neither).
fn listing_rank(g: &ListedGroup) -> (bool, bool) {
    let state = g.group_state.as_str();
    (
        !state.is_empty() && state != "Empty",
        !g.protocol_type.is_empty(),
    )
}

fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_owned()))
}
