//! Handlers of authenticated requests, one module per API family. Each handler is a function
//! of (decoded request, cluster, version, now) → response; this module decodes, dispatches and
//! encodes.

use std::sync::Arc;

use bytes::Bytes;
use fjord_metadata::PartitionOwner;
use fjord_storage_node::NodeApi;
use kafka_protocol::messages::*;
use uuid::Uuid;

use crate::error::RequestError;
use crate::frame::encode_response;
use crate::request::{decode, Outcome};
use crate::server::Gateway;
use crate::topics::TopicInfo;

pub(crate) mod cluster;
mod fetch;
pub(crate) mod groups;
mod offsets;
mod produce;

/// What every handler gets besides its request.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub gw: &'a Gateway,
    /// The connection's cluster: every topic and group lookup is scoped to it.
    pub cluster: Uuid,
    pub version: i16,
    pub now_ms: i64,
    /// The request header's `client.id`, for the group coordinator's member records.
    pub client_id: &'a str,
    /// The connection's peer (`/10.0.0.7`), for the group coordinator's member records.
    pub client_host: &'a str,
    /// What the transport established (listener, TLS SNI, client certificate).
    pub peer: &'a crate::transport::PeerIdentity,
    /// What the request's principal may do: every handler checks its resources with it.
    pub access: &'a crate::authz::Access,
}

impl Ctx<'_> {
    /// A topic of the connection's cluster by name.
    pub async fn topic(&self, name: &str) -> Result<Arc<TopicInfo>, RequestError> {
        self.gw
            .topics
            .lookup(self.cluster, name)
            .await?
            .ok_or_else(|| RequestError::UnknownTopicOrPartition(name.to_owned()))
    }

    /// A topic of the connection's cluster by name, for a request naming `partitions`: a
    /// partition beyond the cached count makes the cache re-read the topic (rate-limited), as
    /// it may have been added through another gateway.
    pub async fn topic_for(
        &self,
        name: &str,
        partitions: impl IntoIterator<Item = i32>,
    ) -> Result<Arc<TopicInfo>, RequestError> {
        let highest = partitions.into_iter().max().unwrap_or(-1);
        self.gw
            .topics
            .lookup_for_partition(self.cluster, name, highest)
            .await?
            .ok_or_else(|| RequestError::UnknownTopicOrPartition(name.to_owned()))
    }

    /// [`Ctx::topic_for`] after checking that the principal may do `action` on the topic; a
    /// refused topic is not looked up (its existence is not revealed).
    pub async fn authorized_topic_for(
        &self,
        action: fjord_tenancy::policy::Action,
        name: &str,
        partitions: impl IntoIterator<Item = i32>,
    ) -> Result<Arc<TopicInfo>, RequestError> {
        self.access
            .allow(action, fjord_tenancy::policy::Resource::Topic(name))?;
        self.topic_for(name, partitions).await
    }

    /// [`Ctx::topic_by_id_for`], then the check of [`Ctx::authorized_topic_for`] on the
    /// topic's name.
    pub async fn authorized_topic_by_id_for(
        &self,
        action: fjord_tenancy::policy::Action,
        id: Uuid,
        partitions: impl IntoIterator<Item = i32>,
    ) -> Result<Arc<TopicInfo>, RequestError> {
        let info = self.topic_by_id_for(id, partitions).await?;
        self.access.allow(
            action,
            fjord_tenancy::policy::Resource::Topic(&info.topic.name),
        )?;
        Ok(info)
    }

    /// A topic of the connection's cluster by id.
    pub async fn topic_by_id(&self, id: Uuid) -> Result<Arc<TopicInfo>, RequestError> {
        self.gw
            .topics
            .lookup_by_id(self.cluster, id)
            .await?
            .ok_or(RequestError::UnknownTopicId(id))
    }

    /// [`Ctx::topic_by_id`] with the partition check of [`Ctx::topic_for`].
    pub async fn topic_by_id_for(
        &self,
        id: Uuid,
        partitions: impl IntoIterator<Item = i32>,
    ) -> Result<Arc<TopicInfo>, RequestError> {
        let highest = partitions.into_iter().max().unwrap_or(-1);
        self.gw
            .topics
            .lookup_by_id_for_partition(self.cluster, id, highest)
            .await?
            .ok_or(RequestError::UnknownTopicId(id))
    }

    /// The API of a storage node.
    pub async fn node(&self, node_id: &str) -> Result<Arc<dyn NodeApi>, RequestError> {
        Ok(self.gw.nodes.node(node_id).await?)
    }
}

/// The owner of `partition` of a topic.
pub(crate) fn owner(info: &TopicInfo, partition: i32) -> Result<&PartitionOwner, RequestError> {
    if partition < 0 || partition >= info.topic.partitions {
        return Err(RequestError::UnknownTopicOrPartition(format!(
            "{}-{partition}",
            info.topic.name
        )));
    }
    // Partition indexes are checked non-negative above, so the cast is lossless.
    info.owners
        .get(partition as usize)
        .filter(|o| o.partition == partition)
        .ok_or_else(|| RequestError::LeaderNotAvailable {
            topic: info.topic.name.clone(),
            partition,
        })
}

/// Checks the leader epoch a client sent (-1: none) against the owner's.
pub(crate) fn check_epoch(client: i32, known: i32) -> Result<(), RequestError> {
    match client {
        -1 => Ok(()),
        c if c > known => Err(RequestError::UnknownLeaderEpoch { client: c, known }),
        c if c < known => Err(RequestError::FencedLeaderEpoch { client: c, known }),
        _ => Ok(()),
    }
}

/// Decodes `$ty` from `$body`, runs `$call` with it bound to `$req`, and encodes the response.
macro_rules! typed {
    ($api:expr, $ctx:expr, $corr:expr, $body:expr, $ty:ty, |$req:ident| $call:expr) => {{
        let $req: $ty = match decode($api, $ctx.version, &mut $body) {
            Ok(r) => r,
            Err(e) => return Outcome::Close {
                frame: None,
                delay: std::time::Duration::ZERO,
                reason: e,
            },
        };
        let resp = $call;
        match encode_response($api, $ctx.version, $corr, &resp) {
            Ok(frame) => Outcome::Respond(frame),
            Err(e) => {
                tracing::error!(error = %e, "response does not encode");
                Outcome::Close { frame: None, delay: std::time::Duration::ZERO, reason: e }
            }
        }
    }};
}

impl Gateway {
    /// Handles a request of an authenticated connection to `ctx.cluster` (`ctx.gw` is `self`).
    pub(crate) async fn handle_authenticated(
        &self,
        ctx: Ctx<'_>,
        api: ApiKey,
        corr: i32,
        mut body: Bytes,
        sequenced: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Outcome {
        let Ctx {
            cluster, version, ..
        } = ctx;
        match api {
            ApiKey::Metadata => {
                typed!(api, ctx, corr, body, MetadataRequest, |r| {
                    cluster::metadata(ctx, r).await
                })
            }
            ApiKey::DescribeCluster => {
                typed!(api, ctx, corr, body, DescribeClusterRequest, |r| {
                    cluster::describe_cluster(ctx, r)
                })
            }
            ApiKey::Produce => {
                let req: ProduceRequest = match decode(api, version, &mut body) {
                    Ok(r) => r,
                    Err(e) => {
                        return Outcome::Close {
                            frame: None,
                            delay: Default::default(),
                            reason: e,
                        }
                    }
                };
                match produce::produce(ctx, req, sequenced).await {
                    // acks=0: the client expects no response at all.
                    Ok(None) => Outcome::Silent,
                    Err(reason) => Outcome::Close {
                        frame: None,
                        delay: Default::default(),
                        reason,
                    },
                    Ok(Some(resp)) => match encode_response(api, version, corr, &resp) {
                        Ok(frame) => Outcome::Respond(frame),
                        Err(e) => Outcome::Close {
                            frame: None,
                            delay: Default::default(),
                            reason: e,
                        },
                    },
                }
            }
            ApiKey::InitProducerId => {
                typed!(api, ctx, corr, body, InitProducerIdRequest, |r| {
                    produce::init_producer_id(ctx, r).await
                })
            }
            ApiKey::Fetch => typed!(api, ctx, corr, body, FetchRequest, |r| fetch::fetch(ctx, r)
                .await),
            ApiKey::ListOffsets => {
                typed!(api, ctx, corr, body, ListOffsetsRequest, |r| {
                    offsets::list_offsets(ctx, r).await
                })
            }
            ApiKey::OffsetForLeaderEpoch => {
                typed!(api, ctx, corr, body, OffsetForLeaderEpochRequest, |r| {
                    offsets::offset_for_leader_epoch(ctx, r).await
                })
            }
            ApiKey::DeleteRecords => {
                typed!(api, ctx, corr, body, DeleteRecordsRequest, |r| {
                    offsets::delete_records(ctx, r).await
                })
            }
            ApiKey::FindCoordinator => {
                typed!(api, ctx, corr, body, FindCoordinatorRequest, |r| {
                    groups::find_coordinator(ctx, r)
                })
            }
            // The admin APIs go through their authorization in front of crate::admin.
            ApiKey::CreateTopics => typed!(api, ctx, corr, body, CreateTopicsRequest, |r| {
                crate::authz::admin::create_topics(ctx, r).await
            }),
            ApiKey::DeleteTopics => typed!(api, ctx, corr, body, DeleteTopicsRequest, |r| {
                crate::authz::admin::delete_topics(ctx, r).await
            }),
            ApiKey::CreatePartitions => {
                typed!(api, ctx, corr, body, CreatePartitionsRequest, |r| {
                    crate::authz::admin::create_partitions(ctx, r).await
                })
            }
            ApiKey::DescribeConfigs => typed!(api, ctx, corr, body, DescribeConfigsRequest, |r| {
                crate::authz::admin::describe_configs(ctx, r).await
            }),
            ApiKey::AlterConfigs => typed!(api, ctx, corr, body, AlterConfigsRequest, |r| {
                crate::authz::admin::alter_configs(ctx, r).await
            }),
            ApiKey::IncrementalAlterConfigs => {
                typed!(api, ctx, corr, body, IncrementalAlterConfigsRequest, |r| {
                    crate::authz::admin::incremental_alter_configs(ctx, r).await
                })
            }
            ApiKey::CreateAcls => typed!(api, ctx, corr, body, CreateAclsRequest, |r| {
                crate::authz::acl_apis::create_acls(ctx.access, &self.auth, cluster, r).await
            }),
            ApiKey::DescribeAcls => typed!(api, ctx, corr, body, DescribeAclsRequest, |r| {
                crate::authz::acl_apis::describe_acls(ctx.access, &self.auth, cluster, r).await
            }),
            ApiKey::DeleteAcls => typed!(api, ctx, corr, body, DeleteAclsRequest, |r| {
                crate::authz::acl_apis::delete_acls(ctx.access, &self.auth, cluster, r).await
            }),
            api if crate::versions::GROUP_APIS.contains(&api) => {
                groups::forward(ctx, api, corr, body).await
            }
            // versions::is_supported admits no other API, so this is only reached if the table
            // and this match disagree: refuse rather than guess.
            other => Outcome::Close {
                frame: Some(crate::frame::unsupported_frame(corr)),
                delay: Default::default(),
                reason: crate::error::ConnectionError::UnsupportedVersion {
                    api: format!("{other:?}"),
                    version,
                },
            },
        }
    }
}

/// Positions of a partition in a request: (topic index, partition index).
pub(crate) type Slot = (usize, usize);

/// Partitions to send to each node, with where each came from in the request.
pub(crate) type ByNode<P> = std::collections::BTreeMap<String, (Vec<Slot>, Vec<P>)>;

/// One node's results, with the request positions they belong to.
pub(crate) type NodeAnswer<R> = (Vec<Slot>, Result<Vec<R>, RequestError>);

/// Calls `call` on every node of `by_node` at once, checking that each answers one result per
/// partition sent.
pub(crate) async fn per_node<P, R, F, Fut>(
    ctx: Ctx<'_>,
    by_node: ByNode<P>,
    call: F,
) -> Vec<NodeAnswer<R>>
where
    F: Fn(Arc<dyn NodeApi>, Vec<P>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<R>, fjord_storage_node::NodeError>>,
{
    let call = &call;
    let sends = by_node
        .into_iter()
        .map(|(node_id, (slots, parts))| async move {
            let count = parts.len();
            let res = match ctx.node(&node_id).await {
                Ok(api) => call(api, parts).await.map_err(RequestError::from),
                Err(e) => Err(e),
            };
            let res = res.and_then(|r| {
                if r.len() == count {
                    Ok(r)
                } else {
                    Err(RequestError::Node(fjord_storage_node::NodeError::Internal(
                        format!("node {node_id} answered {} of {count} partitions", r.len()),
                    )))
                }
            });
            if let Err(e) = &res {
                tracing::warn!(node = %node_id, error = %e, "node request failed");
            }
            (slots, res)
        });
    futures::future::join_all(sends).await
}

/// Routes the partitions of the next topic of a request (its index is `results.len()`): each
/// gets a row entry in `results`, a placeholder while it is queued in `by_node` for its owner's
/// node, or its routing error. `build` makes the node's partition and picks the node; it runs
/// only when the topic was found.
pub(crate) fn route_topic<T, P, R>(
    by_node: &mut ByNode<P>,
    results: &mut Vec<Vec<Result<R, RequestError>>>,
    info: &Result<Arc<TopicInfo>, RequestError>,
    partitions: &[T],
    mut build: impl FnMut(&TopicInfo, &T) -> Result<(String, P), RequestError>,
) {
    let ti = results.len();
    let mut row = Vec::with_capacity(partitions.len());
    for (pi, p) in partitions.iter().enumerate() {
        let routed = match info {
            Ok(info) => build(info, p),
            Err(e) => Err(produce::clone_err(e)),
        };
        row.push(match routed {
            Ok((node, part)) => {
                let e = by_node.entry(node).or_default();
                e.0.push((ti, pi));
                e.1.push(part);
                awaiting()
            }
            Err(e) => Err(e),
        });
    }
    results.push(row);
}

/// Puts per-node results back at their request positions.
pub(crate) fn scatter<R>(
    results: &mut [Vec<Result<R, RequestError>>],
    answers: Vec<NodeAnswer<R>>,
) {
    for (slots, res) in answers {
        match res {
            Ok(parts) => {
                for ((ti, pi), r) in slots.into_iter().zip(parts) {
                    if let Some(slot) = results.get_mut(ti).and_then(|t| t.get_mut(pi)) {
                        *slot = Ok(r);
                    }
                }
            }
            Err(e) => {
                for (ti, pi) in slots {
                    if let Some(slot) = results.get_mut(ti).and_then(|t| t.get_mut(pi)) {
                        *slot = Err(produce::clone_err(&e));
                    }
                }
            }
        }
    }
}

/// The placeholder of a routed partition until its node answers.
pub(crate) fn awaiting<R>() -> Result<R, RequestError> {
    Err(RequestError::Node(fjord_storage_node::NodeError::Internal(
        "no answer from node".into(),
    )))
}

/// What a partition's outcome says about the cached topic view it was routed with (ordered:
/// the strongest evidence of a topic's partitions wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Evidence {
    /// Nothing against the view.
    None,
    /// Maybe stale: the owner could not be reached or is recovering (the controller may move
    /// its partitions), the client knows a newer leader epoch, or the view lacks an owner.
    Suspect,
    /// The owning node says the view is stale: the partition moved or the topic is gone.
    Stale,
}

/// Classifies one partition's outcome (`code` reads a node result's error code).
pub(crate) fn evidence<R>(r: &Result<R, RequestError>, code: impl Fn(&R) -> i16) -> Evidence {
    use fjord_storage_node::NodeError;
    use kafka_protocol::ResponseError as E;
    match r {
        Ok(r) => {
            let c = code(r);
            let stale = [
                E::NotLeaderOrFollower,
                E::FencedLeaderEpoch,
                E::UnknownTopicOrPartition,
                E::UnknownTopicId,
            ];
            if stale.iter().any(|e| e.code() == c) {
                Evidence::Stale
            } else {
                Evidence::None
            }
        }
        Err(RequestError::Node(NodeError::Unreachable(_) | NodeError::Unavailable(_)))
        | Err(RequestError::UnknownLeaderEpoch { .. })
        | Err(RequestError::LeaderNotAvailable { .. }) => Evidence::Suspect,
        // The gateway's own answers from a view it holds (unknown partition, a client behind
        // on epochs) and failures unrelated to ownership say nothing new about the view.
        Err(_) => Evidence::None,
    }
}

/// Reports to the topic cache what a request's outcomes showed about the views it was routed
/// with (`infos[i]` routed `results[i]`), so that the client's retry, after it refreshes its
/// metadata, is routed with fresh ownership. A view is dropped only if it is still cached, so
/// many requests failing on one stale view cause one re-read.
pub(crate) async fn report_views<'a, R>(
    ctx: Ctx<'_>,
    infos: impl IntoIterator<Item = Option<&'a Arc<TopicInfo>>>,
    results: &[Vec<Result<R, RequestError>>],
    code: impl Fn(&R) -> i16,
) {
    let reports: Vec<(&Arc<TopicInfo>, Evidence)> = infos
        .into_iter()
        .zip(results)
        .filter_map(|(info, parts)| {
            let worst = parts.iter().map(|r| evidence(r, &code)).max()?;
            Some((info?, worst))
        })
        .collect();
    for (info, worst) in reports {
        let outcome = match worst {
            Evidence::None => continue,
            Evidence::Suspect => ctx.gw.topics.report_suspect(info).await,
            Evidence::Stale => ctx.gw.topics.report_stale(info).await,
        };
        tracing::debug!(topic = %info.topic.name, ?worst, ?outcome, "cached owner view questioned");
    }
}
