//! ListOffsets, OffsetForLeaderEpoch and DeleteRecords: per-partition requests routed to the
//! owning nodes.

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

use super::produce::clone_err;
use super::{
    awaiting, check_epoch, invalidate_stale, owner, per_node, scatter, stale_topics, ByNode, Ctx,
};
use crate::error::RequestError;

/// `timestamp` of ListOffsets meaning "the latest offset".
const LATEST: i64 = -1;

pub(crate) async fn list_offsets(ctx: Ctx<'_>, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let v = ctx.version;
    let mut results = Vec::new();
    let mut by_node: ByNode<NodeListPartition> = ByNode::new();
    for (ti, topic) in req.topics.iter().enumerate() {
        let info = ctx.topic(topic.name.as_str()).await;
        let mut slots = Vec::new();
        for (pi, p) in topic.partitions.iter().enumerate() {
            let routed = info.as_ref().map_err(clone_err).and_then(|info| {
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
            });
            slots.push(route(&mut by_node, routed, (ti, pi)));
        }
        results.push(slots);
    }
    let answers = per_node(ctx, by_node, |api, partitions| async move {
        api.list_offsets(NodeList { partitions })
            .await
            .map(|r| r.partitions)
    })
    .await;
    scatter(&mut results, answers);
    let names = req.topics.iter().map(|t| Some(t.name.as_str()));
    invalidate_stale(ctx, stale_topics(names, &results, |r| r.error_code)).await;
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
    let mut results = Vec::new();
    let mut epochs = Vec::new();
    let mut by_node: ByNode<NodeListPartition> = ByNode::new();
    for (ti, topic) in req.topics.iter().enumerate() {
        let info = ctx.topic(topic.topic.as_str()).await;
        let mut slots = Vec::new();
        let mut topic_epochs = Vec::new();
        for (pi, p) in topic.partitions.iter().enumerate() {
            let routed = info.as_ref().map_err(clone_err).and_then(|info| {
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
            });
            topic_epochs.push(
                info.as_ref()
                    .ok()
                    .and_then(|i| owner(i, p.partition).ok())
                    .map_or(-1, |o| o.epoch),
            );
            slots.push(route(&mut by_node, routed, (ti, pi)));
        }
        results.push(slots);
        epochs.push(topic_epochs);
    }
    let answers = per_node(ctx, by_node, |api, partitions| async move {
        api.list_offsets(NodeList { partitions })
            .await
            .map(|r| r.partitions)
    })
    .await;
    scatter(&mut results, answers);
    let names = req.topics.iter().map(|t| Some(t.topic.as_str()));
    invalidate_stale(ctx, stale_topics(names, &results, |r| r.error_code)).await;
    let topics = req
        .topics
        .iter()
        .zip(results)
        .zip(epochs)
        .map(|((t, parts), topic_epochs)| {
            let partitions = t
                .partitions
                .iter()
                .zip(parts)
                .zip(topic_epochs)
                .map(|((p, r), epoch)| {
                    let base = EpochEndOffset::default().with_partition(p.partition);
                    match r {
                        Ok(r) if r.error_code == 0 => {
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
    let mut results = Vec::new();
    let mut by_node: ByNode<DeleteRecordsPartition> = ByNode::new();
    for (ti, topic) in req.topics.iter().enumerate() {
        let info = ctx.topic(topic.name.as_str()).await;
        let mut slots = Vec::new();
        for (pi, p) in topic.partitions.iter().enumerate() {
            let routed = info.as_ref().map_err(clone_err).and_then(|info| {
                let o = owner(info, p.partition_index)?;
                Ok((
                    o.node_id.clone(),
                    DeleteRecordsPartition {
                        topic_id: info.topic.id,
                        partition: p.partition_index,
                        offset: p.offset,
                    },
                ))
            });
            slots.push(route(&mut by_node, routed, (ti, pi)));
        }
        results.push(slots);
    }
    let answers = per_node(ctx, by_node, |api, partitions| async move {
        api.delete_records(NodeDelete { partitions })
            .await
            .map(|r| r.partitions)
    })
    .await;
    scatter(&mut results, answers);
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

/// Queues a routed partition for its node, returning the placeholder (or the routing error)
/// for its result slot.
pub(crate) fn route<P, R>(
    by_node: &mut ByNode<P>,
    routed: Result<(String, P), RequestError>,
    slot: (usize, usize),
) -> Result<R, RequestError> {
    match routed {
        Ok((node, p)) => {
            let e = by_node.entry(node).or_default();
            e.0.push(slot);
            e.1.push(p);
            awaiting()
        }
        Err(e) => Err(e),
    }
}
