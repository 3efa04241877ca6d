//! ListOffsets, OffsetForLeaderEpoch and DeleteRecords: per-partition requests routed to the
//! owning nodes.

use std::sync::Arc;

use fjord_storage_node::api::{
    DeleteRecordsPartition, DeleteRecordsPartitionResult,
    ListOffsetsPartition as NodeListPartition, ListOffsetsPartitionResult,
};
use fjord_storage_node::{DeleteRecordsRequest as NodeDelete, ListOffsetsRequest as NodeList};
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult as KDeletePartition, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};

use super::{check_epoch, owner, per_node, report_views, route_topic, scatter, ByNode, Ctx};
use crate::error::RequestError;
use crate::topics::TopicInfo;
use fjord_tenancy::policy::Action;

/// `timestamp` of ListOffsets meaning "the latest offset".
const LATEST: i64 = -1;

pub(crate) async fn list_offsets(ctx: Ctx<'_>, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let v = ctx.version;
    let topics = req
        .topics
        .iter()
        .map(|t| (t.name.as_str(), &t.partitions[..]));
    let Routed {
        infos,
        mut results,
        by_node,
    } = route_by_name(
        ctx,
        Action::DescribeTopic,
        topics,
        |p| p.partition_index,
        |info, p| {
            let o = owner(info, p.partition_index)?;
            if v >= 4 {
                check_epoch(p.current_leader_epoch, o.epoch)?;
            }
            Ok((
                o.node_id.clone(),
                NodeListPartition {
                    topic_id: info.topic.id,
                    partition: p.partition_index,
                    timestamp: p.timestamp,
                },
            ))
        },
    )
    .await;
    list_on_nodes(ctx, by_node, &mut results).await;
    report_views(ctx, infos.iter().map(|i| i.as_ref().ok()), &results, |r| {
        r.error_code
    })
    .await;
    let topics = req
        .topics
        .iter()
        .zip(results)
        .map(|(t, parts)| {
            let partitions = t
                .partitions
                .iter()
                .zip(parts)
                .map(|(p, r)| list_partition(v, p.partition_index, r))
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn list_partition(
    v: i16,
    index: i32,
    r: Result<ListOffsetsPartitionResult, RequestError>,
) -> ListOffsetsPartitionResponse {
    let base = ListOffsetsPartitionResponse::default().with_partition_index(index);
    match r {
        Ok(r) => {
            let mut out = base
                .with_error_code(r.error_code)
                .with_timestamp(r.timestamp)
                .with_offset(r.offset);
            if v >= 4 {
                out = out.with_leader_epoch(r.leader_epoch);
            }
            out
        }
        Err(e) => base
            .with_error_code(e.code())
            .with_timestamp(-1)
            .with_offset(-1),
    }
}

/// Fjord never truncates a log, so the end of any epoch up to the current one is the log end:
/// answering (current epoch, log end offset) tells a consumer that nothing it read was lost.
pub(crate) async fn offset_for_leader_epoch(
    ctx: Ctx<'_>,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| (t.topic.as_str(), &t.partitions[..]));
    let Routed {
        infos,
        mut results,
        by_node,
    } = route_by_name(
        ctx,
        Action::DescribeTopic,
        topics,
        |p| p.partition,
        |info, p| {
            let o = owner(info, p.partition)?;
            check_epoch(p.current_leader_epoch, o.epoch)?;
            if p.leader_epoch > o.epoch {
                return Err(RequestError::FencedLeaderEpoch {
                    client: p.leader_epoch,
                    known: o.epoch,
                });
            }
            Ok((
                o.node_id.clone(),
                NodeListPartition {
                    topic_id: info.topic.id,
                    partition: p.partition,
                    timestamp: LATEST,
                },
            ))
        },
    )
    .await;
    list_on_nodes(ctx, by_node, &mut results).await;
    report_views(ctx, infos.iter().map(|i| i.as_ref().ok()), &results, |r| {
        r.error_code
    })
    .await;
    let topics = req
        .topics
        .iter()
        .zip(results)
        .zip(infos)
        .map(|((t, parts), info)| {
            let partitions = t
                .partitions
                .iter()
                .zip(parts)
                .map(|(p, r)| {
                    let base = EpochEndOffset::default().with_partition(p.partition);
                    match r {
                        Ok(r) if r.error_code == 0 => {
                            // The owner's epoch as this gateway routed by it.
                            let epoch = info
                                .as_ref()
                                .ok()
                                .and_then(|i| owner(i, p.partition).ok())
                                .map_or(-1, |o| o.epoch);
                            base.with_leader_epoch(epoch).with_end_offset(r.offset)
                        }
                        Ok(r) => base.with_error_code(r.error_code),
                        Err(e) => base.with_error_code(e.code()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

pub(crate) async fn delete_records(
    ctx: Ctx<'_>,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| (t.name.as_str(), &t.partitions[..]));
    let Routed {
        infos,
        mut results,
        by_node,
    } = route_by_name(
        ctx,
        Action::DeleteTopic,
        topics,
        |p| p.partition_index,
        |info, p| {
            let o = owner(info, p.partition_index)?;
            Ok((
                o.node_id.clone(),
                DeleteRecordsPartition {
                    topic_id: info.topic.id,
                    partition: p.partition_index,
                    offset: p.offset,
                },
            ))
        },
    )
    .await;
    let answers = per_node(ctx, by_node, |api, partitions| async move {
        api.delete_records(NodeDelete { partitions })
            .await
            .map(|r| r.partitions)
    })
    .await;
    scatter(&mut results, answers);
    report_views(ctx, infos.iter().map(|i| i.as_ref().ok()), &results, |r| {
        r.error_code
    })
    .await;
    let topics = req
        .topics
        .iter()
        .zip(results)
        .map(|(t, parts)| {
            let partitions = t
                .partitions
                .iter()
                .zip(parts)
                .map(
                    |(p, r): (_, Result<DeleteRecordsPartitionResult, RequestError>)| {
                        let base =
                            KDeletePartition::default().with_partition_index(p.partition_index);
                        match r {
                            Ok(r) => base
                                .with_error_code(r.error_code)
                                .with_low_watermark(r.low_watermark),
                            Err(e) => base.with_error_code(e.code()).with_low_watermark(-1),
                        }
                    },
                )
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

/// A request's topics, looked up by name, with their partitions routed.
struct Routed<P, R> {
    /// Each topic as found (or why not), in request order.
    infos: Vec<Result<Arc<TopicInfo>, RequestError>>,
    /// Per topic and partition: a placeholder until the node answers, or the routing error.
    results: Vec<Vec<Result<R, RequestError>>>,
    /// What to send to each node.
    by_node: ByNode<P>,
}

/// Checks `action` on, and looks up, each `(name, partitions)` topic of a request (`index` gives a partition's index)
/// and routes its partitions with `build` (see [`route_topic`]).
async fn route_by_name<'t, T: 't, P, R>(
    ctx: Ctx<'_>,
    action: Action,
    topics: impl Iterator<Item = (&'t str, &'t [T])>,
    index: impl Fn(&T) -> i32,
    mut build: impl FnMut(&TopicInfo, &T) -> Result<(String, P), RequestError>,
) -> Routed<P, R> {
    let mut routed = Routed {
        infos: Vec::new(),
        results: Vec::new(),
        by_node: ByNode::new(),
    };
    for (name, partitions) in topics {
        let info = ctx
            .authorized_topic_for(action, name, partitions.iter().map(&index))
            .await;
        route_topic(
            &mut routed.by_node,
            &mut routed.results,
            &info,
            partitions,
            &mut build,
        );
        routed.infos.push(info);
    }
    routed
}

/// Asks the owners of `by_node`'s partitions for their offsets and puts the answers in
/// `results`.
async fn list_on_nodes(
    ctx: Ctx<'_>,
    by_node: ByNode<NodeListPartition>,
    results: &mut [Vec<Result<ListOffsetsPartitionResult, RequestError>>],
) {
    let answers = per_node(ctx, by_node, |api, partitions| async move {
        api.list_offsets(NodeList { partitions })
            .await
            .map(|r| r.partitions)
    })
    .await;
    scatter(results, answers);
}
