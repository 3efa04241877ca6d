//! The multi-node cases of group forwarding: requests naming groups on several coordinators
//! are split and their answers merged; ListGroups asks every node.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
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
            let mut found: HashMap<String, DescribedGroup> = HashMap::new();
            for (groups, res) in answers {
                match res.and_then(|mut b| {
                    DescribeGroupsResponse::decode(&mut b, v)
                        .map_err(|e| RequestError::Invalid(e.to_string()))
                }) {
                    Ok(resp) => {
                        found.extend(resp.groups.into_iter().map(|g| (g.group_id.to_string(), g)))
                    }
                    Err(e) => {
                        let code = coordinator_error(&e);
                        found.extend(
                            groups
                                .iter()
                                .map(|g| (g.clone(), describe_error(&group_id(g), code))),
                        );
                    }
                }
            }
            let groups = r
                .groups
                .iter()
                .map(|g| {
                    found.remove(g.as_str()).unwrap_or_else(|| {
                        describe_error(g, ResponseError::CoordinatorNotAvailable.code())
                    })
                })
                .collect();
            encode_body(&DescribeGroupsResponse::default().with_groups(groups), v)
        }
        GroupReq::Delete(r) => {
            let mut found: HashMap<String, DeletableGroupResult> = HashMap::new();
            for (groups, res) in answers {
                match res.and_then(|mut b| {
                    DeleteGroupsResponse::decode(&mut b, v)
                        .map_err(|e| RequestError::Invalid(e.to_string()))
                }) {
                    Ok(resp) => found.extend(
                        resp.results
                            .into_iter()
                            .map(|g| (g.group_id.to_string(), g)),
                    ),
                    Err(e) => {
                        let code = coordinator_error(&e);
                        found.extend(
                            groups
                                .iter()
                                .map(|g| (g.clone(), delete_error(&group_id(g), code))),
                        );
                    }
                }
            }
            let results = r
                .groups_names
                .iter()
                .map(|g| {
                    found.remove(g.as_str()).unwrap_or_else(|| {
                        delete_error(g, ResponseError::CoordinatorNotAvailable.code())
                    })
                })
                .collect();
            encode_body(&DeleteGroupsResponse::default().with_results(results), v)
        }
        GroupReq::Fetch(r) => {
            let mut found: HashMap<String, OffsetFetchResponseGroup> = HashMap::new();
            for (groups, res) in answers {
                match res.and_then(|mut b| {
                    OffsetFetchResponse::decode(&mut b, v)
                        .map_err(|e| RequestError::Invalid(e.to_string()))
                }) {
                    Ok(resp) => {
                        found.extend(resp.groups.into_iter().map(|g| (g.group_id.to_string(), g)))
                    }
                    Err(e) => {
                        let code = coordinator_error(&e);
                        found.extend(
                            groups
                                .iter()
                                .map(|g| (g.clone(), fetch_group_error(&group_id(g), code))),
                        );
                    }
                }
            }
            let groups = r
                .groups
                .iter()
                .map(|g| {
                    found.remove(g.group_id.as_str()).unwrap_or_else(|| {
                        fetch_group_error(
                            &g.group_id,
                            ResponseError::CoordinatorNotAvailable.code(),
                        )
                    })
                })
                .collect();
            encode_body(&OffsetFetchResponse::default().with_groups(groups), v)
        }
        _ => req.error_body(v, ResponseError::InvalidRequest.code()),
    }
}

/// ListGroups: every coordinator node lists its groups; the lists are concatenated.
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
                        merged.groups.extend(resp.groups);
                    }
                    Err(e) => {
                        let code = coordinator_error(&e);
                        if merged.error_code == 0 {
                            merged.error_code = code;
                        }
                    }
                }
            }
            encode_body(&merged, v)
        }
    }
}

fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_owned()))
}
