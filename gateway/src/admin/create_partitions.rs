//! CreatePartitions (API key 37).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use tracing::instrument;
use uuid::Uuid;

use super::{duplicates, Failure};
use crate::quota::mutations::MutationQuota;
use crate::topics::TopicService;

/// Grows the requested topics. A manual assignment must list one entry per new partition; its
/// broker ids are not used, since Fjord places partitions itself. The partitions added are
/// charged to `quota`, which may refuse topics and sets `throttle_time_ms`.
#[instrument(skip_all, fields(%cluster_id, version, topics = req.topics.len(), validate_only = req.validate_only))]
pub async fn create_partitions(
    svc: &TopicService,
    cluster_id: Uuid,
    version: i16,
    req: CreatePartitionsRequest,
    quota: &mut MutationQuota,
    now_ms: i64,
) -> CreatePartitionsResponse {
    let _ = version; // Every field of the response exists in every version (0-3).
    let names: Vec<&str> = req.topics.iter().map(|t| t.name.as_str()).collect();
    let dup = duplicates(&names);
    let mut results = Vec::with_capacity(req.topics.len());
    for (topic, is_dup) in req.topics.iter().zip(dup) {
        let outcome = if is_dup {
            Err(Failure::new(
                ResponseError::InvalidRequest,
                format!(
                    "topic '{}' appears more than once in the request",
                    topic.name.as_str()
                ),
            ))
        } else if req.validate_only {
            grow(svc, cluster_id, topic, true, now_ms).await.map(|_| ())
        } else {
            match quota.admit(now_ms) {
                Ok(()) => grow(svc, cluster_id, topic, false, now_ms)
                    .await
                    .map(|added| quota.record(now_ms, added)),
                Err(f) => Err(f),
            }
        };
        let r = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        results.push(match outcome {
            Ok(()) => r.with_error_code(0).with_error_message(None),
            Err(f) => {
                tracing::info!(topic = topic.name.as_str(), code = f.code, message = %f.message, "create partitions refused");
                r.with_error_code(f.code).with_error_message(f.message())
            }
        });
    }
    CreatePartitionsResponse::default()
        .with_throttle_time_ms(quota.throttle_ms())
        .with_results(results)
}

/// Grows one topic and returns how many partitions it gained.
async fn grow(
    svc: &TopicService,
    cluster_id: Uuid,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
    now_ms: i64,
) -> Result<u64, Failure> {
    let name = topic.name.as_str();
    let current = svc.get(cluster_id, name).await?.partitions;
    if let Some(assignments) = &topic.assignments {
        let adding = i64::from(topic.count) - i64::from(current);
        if adding > 0 && i64::try_from(assignments.len()).ok() != Some(adding) {
            return Err(Failure::new(
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "the assignment lists {} new partitions but the topic grows by {adding}",
                    assignments.len()
                ),
            ));
        }
    }
    let grown = svc
        .create_partitions(cluster_id, name, topic.count, validate_only, now_ms)
        .await?;
    Ok(u64::try_from(grown.topic.partitions.saturating_sub(current)).unwrap_or(0))
}
