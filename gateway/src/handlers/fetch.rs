//! Fetch: topics by name (v ≤ 12) or id (v13+), split by owning node, long-polled on every node
//! at once. Incremental fetch sessions are not offered: every response has session id 0, which
//! tells clients to keep sending full fetches.

use bytes::Bytes;
use fjord_storage_node::api::{FetchPartition, FetchPartitionResult};
use fjord_storage_node::FetchRequest as NodeFetch;
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::warn;

use super::{
    check_epoch, owner, report_views, route_topic, scatter, ByNode, Ctx, NodeAnswer, Slot,
};
use crate::error::RequestError;
use fjord_tenancy::policy::Action;

pub(crate) async fn fetch(ctx: Ctx<'_>, req: FetchRequest) -> FetchResponse {
    let v = ctx.version;
    if v >= 7 && req.session_id != 0 {
        // We never hand out a session, so a client naming one is out of sync: it must start
        // over with a full fetch.
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
    }
    let mut results: Vec<Vec<Result<FetchPartitionResult, RequestError>>> = Vec::new();
    let mut names: Vec<Option<String>> = Vec::new();
    // The view each topic was routed with, to report if a node says it is stale.
    let mut infos = Vec::with_capacity(req.topics.len());
    let mut by_node: ByNode<FetchPartition> = ByNode::new();
    for topic in &req.topics {
        let indexes = topic.partitions.iter().map(|p| p.partition);
        let info = if v >= 13 {
            ctx.authorized_topic_by_id_for(Action::ReadData, topic.topic_id, indexes)
                .await
        } else {
            ctx.authorized_topic_for(Action::ReadData, topic.topic.as_str(), indexes)
                .await
        };
        names.push(info.as_ref().ok().map(|i| i.topic.name.clone()));
        infos.push(info.as_ref().ok().cloned());
        route_topic(
            &mut by_node,
            &mut results,
            &info,
            &topic.partitions,
            |info, p| {
                let o = owner(info, p.partition)?;
                if v >= 9 {
                    check_epoch(p.current_leader_epoch, o.epoch)?;
                }
                Ok((
                    o.node_id.clone(),
                    FetchPartition {
                        topic_id: info.topic.id,
                        partition: p.partition,
                        fetch_offset: p.fetch_offset,
                        max_bytes: u32::try_from(p.partition_max_bytes).unwrap_or(0),
                    },
                ))
            },
        );
    }

    let max_wait_ms = u32::try_from(req.max_wait_ms).unwrap_or(0);
    let min_bytes = u32::try_from(req.min_bytes).unwrap_or(0);
    // Split the response byte budget over the nodes so the whole response stays within what
    // the client can receive (each node still returns at least one batch).
    let total_budget = response_budget(v, req.max_bytes, max_fetch_bytes(ctx).await);
    let nodes = by_node.len().max(1) as u32;
    let budget = (total_budget / nodes).max(1);
    let answers = fan_out(ctx, by_node, max_wait_ms, min_bytes, budget).await;
    scatter(&mut results, answers);
    report_views(ctx, infos.iter().map(Option::as_ref), &results, |r| {
        r.error_code
    })
    .await;

    let read_committed = v >= 4 && req.isolation_level == 1;
    let responses = req
        .topics
        .iter()
        .zip(results)
        .zip(names)
        .map(|((topic, parts), name)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(parts)
                .map(|(p, r)| partition_data(v, p.partition, r, read_committed))
                .collect();
            let mut t = FetchableTopicResponse::default().with_partitions(partitions);
            if v >= 13 {
                t = t.with_topic_id(topic.topic_id);
            } else {
                let name = name.unwrap_or_else(|| topic.topic.to_string());
                t = t.with_topic(TopicName(StrBytes::from_string(name)));
            }
            t
        })
        .collect();
    FetchResponse::default().with_responses(responses)
}

/// The cluster's `max-fetch-bytes` (MSK Serverless: 55 MiB); the gateway's default when its
/// quota entry cannot be read.
async fn max_fetch_bytes(ctx: Ctx<'_>) -> u64 {
    match ctx.gw.quotas().cluster(ctx.cluster, ctx.now_ms).await {
        Ok(Some(entry)) => entry.limits().max_fetch_bytes,
        _ => ctx.gw.config.default_limits.max_fetch_bytes,
    }
}

/// The byte budget of one Fetch response: the request's `max_bytes` (v3+; older requests have
/// none), clamped to the cluster's `limit`. Like a Kafka broker with its `fetch.max.bytes`
/// (whose default is MSK's 55 MiB), a larger ask is served up to the limit rather than refused,
/// so clients whose `fetch.max.bytes` is set higher keep working.
fn response_budget(version: i16, max_bytes: i32, limit: u64) -> u32 {
    let asked = match u32::try_from(max_bytes) {
        Ok(n) if version >= 3 && n > 0 => n,
        _ => u32::MAX,
    };
    asked.min(u32::try_from(limit).unwrap_or(u32::MAX))
}

/// Sends each node its partitions. With several nodes, as soon as the answers in hand hold
/// `min_bytes`, the nodes still long-polling are asked again without waiting, so that data from
/// one node is not held back for another node's full `max_wait_ms`.
async fn fan_out(
    ctx: Ctx<'_>,
    by_node: ByNode<FetchPartition>,
    max_wait_ms: u32,
    min_bytes: u32,
    budget: u32,
) -> Vec<NodeAnswer<FetchPartitionResult>> {
    let call = |node_id: String,
                slots: Vec<Slot>,
                partitions: Vec<FetchPartition>,
                wait: u32,
                min: u32| async move {
        let count = partitions.len();
        let req = NodeFetch {
            max_wait_ms: wait,
            min_bytes: min,
            max_bytes: budget,
            partitions,
        };
        let res =
            async { Ok::<_, RequestError>(ctx.node(&node_id).await?.fetch(req).await?) }.await;
        let res = res.and_then(|r| {
            if r.partitions.len() == count {
                Ok(r.partitions)
            } else {
                Err(RequestError::Node(fjord_storage_node::NodeError::Internal(
                    format!(
                        "node {node_id} answered {} of {count} partitions",
                        r.partitions.len()
                    ),
                )))
            }
        });
        if let Err(e) = &res {
            warn!(node = %node_id, error = %e, "fetch from node failed");
        }
        (node_id, slots, (), res)
    };
    // What each node was asked, in case its long poll has to be replaced by a quick read.
    let mut outstanding = by_node.clone();
    let mut pending: FuturesUnordered<_> = by_node
        .into_iter()
        .map(|(node, (slots, parts))| call(node, slots, parts, max_wait_ms, min_bytes))
        .collect();
    let mut done = Vec::new();
    let mut gathered: u64 = 0;
    while let Some((node_id, slots, _, res)) = pending.next().await {
        outstanding.remove(&node_id);
        if let Ok(parts) = &res {
            gathered += parts.iter().map(|p| p.records.len() as u64).sum::<u64>();
        }
        done.push((slots, res));
        if gathered > 0 && gathered >= u64::from(min_bytes) && !pending.is_empty() {
            break;
        }
    }
    // Dropping the remaining long polls cancels them (a fetch has no side effects); ask those
    // nodes again for whatever they hold right now.
    drop(pending);
    let quick = outstanding
        .into_iter()
        .map(|(node, (slots, parts))| call(node, slots, parts, 0, 0));
    for (_, slots, _, res) in futures::future::join_all(quick).await {
        done.push((slots, res));
    }
    done
}

fn partition_data(
    v: i16,
    index: i32,
    r: Result<FetchPartitionResult, RequestError>,
    read_committed: bool,
) -> PartitionData {
    let base = PartitionData::default().with_partition_index(index);
    let mut pd = match r {
        Ok(r) => {
            let mut pd = base
                .with_error_code(r.error_code)
                .with_high_watermark(r.high_watermark)
                .with_last_stable_offset(r.high_watermark)
                .with_records(Some(r.records));
            if v >= 5 {
                pd = pd.with_log_start_offset(r.log_start_offset);
            }
            pd
        }
        Err(e) => base
            .with_error_code(e.code())
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_records(Some(Bytes::new())),
    };
    if read_committed {
        // No transactions exist, so no batch was ever aborted.
        pd = pd.with_aborted_transactions(Some(Vec::new()));
    }
    pd
}

#[cfg(test)]
mod tests {
    use fjord_tenancy::quota::ClusterLimits;

    use super::response_budget;

    #[test]
    fn fetch_budgets_are_clamped_to_the_limit() {
        let limit = ClusterLimits::default().max_fetch_bytes;
        assert_eq!(
            limit,
            55 << 20,
            "MSK Serverless's (and Kafka's fetch.max.bytes) 55 MiB"
        );
        assert_eq!(
            response_budget(12, 50 << 20, limit),
            50 << 20,
            "librdkafka's default"
        );
        assert_eq!(response_budget(12, i32::MAX, limit), 55 << 20);
        // No budget in v0-2, and none in a non-positive one: the limit.
        assert_eq!(response_budget(2, 1024, limit), 55 << 20);
        assert_eq!(response_budget(12, 0, limit), 55 << 20);
        assert_eq!(response_budget(12, -1, limit), 55 << 20);
        assert_eq!(response_budget(12, 1, u64::MAX), 1);
    }
}
