//! Produce and InitProducerId.
//!
//! A produce is split by owning node and sent to all nodes at once; each partition's outcome is
//! put back where it was in the request. Record batches travel as the client's `Bytes`.

use fjord_storage_node::api::{ProducePartition, ProducePartitionResult};
use fjord_storage_node::ProduceRequest as NodeProduce;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;
use tracing::{debug, warn};

use fjord_tenancy::policy::{Action, Resource};

use super::{owner, per_node, report_views, route_topic, scatter, ByNode, Ctx};
use crate::error::{ConnectionError, RequestError};

/// Handles a produce; `Ok(None)` when the client asked for no response (acks=0), and an error
/// (the connection is closed) when such a produce failed. `sequenced` is dropped once every
/// node it writes to has fixed its order (see `crate::pipeline`).
pub(crate) async fn produce(
    ctx: Ctx<'_>,
    req: ProduceRequest,
    sequenced: Option<oneshot::Sender<()>>,
) -> Result<Option<ProduceResponse>, ConnectionError> {
    let v = ctx.version;
    // (topic index, partition index) → outcome, filled in below.
    let mut results: Vec<Vec<Result<ProducePartitionResult, RequestError>>> = Vec::new();
    let mut by_node: ByNode<ProducePartition> = ByNode::new();
    // The view each topic was routed with, to report if a node says it is stale.
    let mut infos = Vec::with_capacity(req.topic_data.len());
    let transactional = req.transactional_id.is_some();
    // Kafka refuses a produce with idempotent batches whole (CLUSTER_AUTHORIZATION_FAILED in
    // every partition) unless the principal may write idempotently.
    let idempotence_refused = has_idempotent_batch(&req)
        .then(|| {
            ctx.access
                .allow(Action::WriteDataIdempotently, Resource::Cluster)
                .err()
        })
        .flatten();
    for topic in &req.topic_data {
        let info = if transactional {
            Err(RequestError::Unsupported(
                "transactions are not supported yet",
            ))
        } else if let Some(refused) = &idempotence_refused {
            Err(RequestError::Unauthorized(refused.clone()))
        } else {
            let indexes = topic.partition_data.iter().map(|p| p.index);
            ctx.authorized_topic_for(Action::WriteData, topic.name.as_str(), indexes)
                .await
        };
        infos.push(info.as_ref().ok().cloned());
        route_topic(
            &mut by_node,
            &mut results,
            &info,
            &topic.partition_data,
            |info, part| {
                let o = owner(info, part.index)?;
                let records = part.records.clone().ok_or_else(|| {
                    RequestError::Invalid("produce without a record batch".into())
                })?;
                Ok((
                    o.node_id.clone(),
                    ProducePartition {
                        topic_id: info.topic.id,
                        partition: part.index,
                        limits: info.limits,
                        records,
                    },
                ))
            },
        );
    }
    // One ordering signal per node call; the request is ordered once all of them are.
    let (signals, ordered): (Vec<_>, Vec<_>) =
        (0..by_node.len()).map(|_| oneshot::channel()).unzip();
    let signals = parking_lot::Mutex::new(signals);
    let calls = async {
        let answers = per_node(ctx, by_node, |api, partitions| {
            let signal = signals.lock().pop();
            async move {
                let req = NodeProduce {
                    cluster_id: ctx.cluster,
                    partitions,
                };
                match signal {
                    Some(signal) => api.produce_ordered(req, signal).await,
                    None => api.produce(req).await,
                }
                .map(|r| r.partitions)
            }
        })
        .await;
        // Nodes that were never called (unreachable) order nothing.
        signals.lock().clear();
        answers
    };
    let released = async {
        for o in ordered {
            // Err: the node answered or failed without an early signal; ordered either way.
            let _ = o.await;
        }
        drop(sequenced);
    };
    let (answers, ()) = futures::join!(calls, released);
    scatter(&mut results, answers);
    report_views(ctx, infos.iter().map(Option::as_ref), &results, |r| {
        r.error_code
    })
    .await;

    if req.acks == 0 {
        if let Some(failure) = first_failure(&req, &results) {
            return Err(ConnectionError::AcksZeroProduceFailed(failure));
        }
        debug!("acks=0: no response");
        return Ok(None);
    }
    let responses = req
        .topic_data
        .iter()
        .zip(results)
        .map(|(topic, parts)| {
            let partition_responses = topic
                .partition_data
                .iter()
                .zip(parts)
                .map(|(p, r)| partition_response(v, p.index, r))
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_partition_responses(partition_responses)
        })
        .collect();
    Ok(Some(ProduceResponse::default().with_responses(responses)))
}

/// `topic-partition: what went wrong` for the first partition that failed, if any.
fn first_failure(
    req: &ProduceRequest,
    results: &[Vec<Result<ProducePartitionResult, RequestError>>],
) -> Option<String> {
    req.topic_data
        .iter()
        .zip(results)
        .find_map(|(topic, parts)| {
            topic.partition_data.iter().zip(parts).find_map(|(p, r)| {
                let why = match r {
                    Ok(r) if r.error_code == 0 => return None,
                    Ok(r) => r
                        .error_message
                        .clone()
                        .unwrap_or_else(|| format!("error code {}", r.error_code)),
                    Err(e) => e.message(),
                };
                Some(format!("{}-{}: {why}", topic.name.as_str(), p.index))
            })
        })
}

fn partition_response(
    v: i16,
    index: i32,
    r: Result<ProducePartitionResult, RequestError>,
) -> PartitionProduceResponse {
    let base = PartitionProduceResponse::default().with_index(index);
    let (code, message, base_offset, append_time, log_start) = match r {
        Ok(r) => (
            r.error_code,
            r.error_message,
            r.base_offset,
            r.log_append_time_ms,
            r.log_start_offset,
        ),
        Err(e) => (e.code(), Some(e.message()), -1, -1, -1),
    };
    let mut resp = base
        .with_error_code(code)
        .with_base_offset(base_offset)
        .with_log_append_time_ms(append_time);
    if v >= 5 {
        resp = resp.with_log_start_offset(log_start);
    }
    if v >= 8 {
        resp = resp.with_error_message(message.map(StrBytes::from_string));
    }
    resp
}

/// Request errors hold non-`Clone` sources; a per-partition copy keeps code and message.
pub(crate) fn clone_err(e: &RequestError) -> RequestError {
    match e {
        RequestError::UnknownTopicOrPartition(s) => {
            RequestError::UnknownTopicOrPartition(s.clone())
        }
        RequestError::UnknownTopicId(id) => RequestError::UnknownTopicId(*id),
        RequestError::LeaderNotAvailable { topic, partition } => RequestError::LeaderNotAvailable {
            topic: topic.clone(),
            partition: *partition,
        },
        RequestError::UnknownLeaderEpoch { client, known } => RequestError::UnknownLeaderEpoch {
            client: *client,
            known: *known,
        },
        RequestError::FencedLeaderEpoch { client, known } => RequestError::FencedLeaderEpoch {
            client: *client,
            known: *known,
        },
        RequestError::Unsupported(s) => RequestError::Unsupported(s),
        RequestError::Invalid(s) => RequestError::Invalid(s.clone()),
        RequestError::NoCoordinator => RequestError::NoCoordinator,
        RequestError::Node(n) => RequestError::Node(n.clone()),
        RequestError::Unauthorized(r) => RequestError::Unauthorized(r.clone()),
        // Metadata failures: keep the mapping (a retriable storage error) and the text.
        other => RequestError::Node(fjord_storage_node::NodeError::Internal(other.to_string())),
    }
}

pub(crate) async fn init_producer_id(
    ctx: Ctx<'_>,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let fail = |e: RequestError| {
        warn!(error = %e, "InitProducerId refused");
        InitProducerIdResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let refused = match req.transactional_id.as_deref() {
        Some(id) => ctx
            .access
            .allow(Action::AlterTransactionalId, Resource::TransactionalId(id)),
        None => ctx
            .access
            .allow(Action::WriteDataIdempotently, Resource::Cluster),
    };
    if let Err(refused) = refused {
        return fail(RequestError::Unauthorized(refused));
    }
    if req.transactional_id.is_some() {
        return fail(RequestError::Unsupported(
            "transactions are not supported yet",
        ));
    }
    // An idempotent producer that asks to bump its epoch (v3+, after a sequence error) gets a
    // fresh id instead: equivalent for idempotence, and ids are plentiful.
    match ctx.gw.producer_ids.next().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => fail(e),
    }
}

/// Offset of the producer id in a v2 record batch header (base offset 8, length 4, leader
/// epoch 4, magic 1, crc 4, attributes 2, last offset delta 4, two timestamps 16).
const PRODUCER_ID_OFFSET: usize = 43;
const MAGIC_OFFSET: usize = 16;

/// Whether any partition's first record batch carries a producer id (an idempotent or
/// transactional producer); only the header bytes are read, nothing is decoded.
fn has_idempotent_batch(req: &ProduceRequest) -> bool {
    req.topic_data
        .iter()
        .flat_map(|t| t.partition_data.iter())
        .filter_map(|p| p.records.as_ref())
        .any(|records| {
            records.get(MAGIC_OFFSET) == Some(&2)
                && records
                    .get(PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .is_some_and(|b| i64::from_be_bytes(b) >= 0)
        })
}
