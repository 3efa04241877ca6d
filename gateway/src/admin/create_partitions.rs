//! CreatePartitions (API key 37).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use tracing::instrument;
use uuid::Uuid;

use super::{duplicates, Failure};
use crate::topics::TopicService;

/// Grows the requested topics. A manual assignment must list one entry per new partition; its
/// broker ids are not used, since Fjord places partitions itself.
#[instrument(skip_all, fields(%cluster_id, version, topics = req.topics.len(), validate_only = req.validate_only))]
pub async fn create_partitions(
    svc: &TopicService,
    cluster_id: Uuid,
    version: i16,
    req: CreatePartitionsRequest,
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
        } else {
            grow(svc, cluster_id, topic, req.validate_only, now_ms).await
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
        .with_throttle_time_ms(0)
        .with_results(results)
}

async fn grow(
    svc: &TopicService,
    cluster_id: Uuid,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
    now_ms: i64,
) -> Result<(), Failure> {
    let name = topic.name.as_str();
    if let Some(assignments) = &topic.assignments {
        let current = svc.get(cluster_id, name).await?.partitions;
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
    svc.create_partitions(cluster_id, name, topic.count, validate_only, now_ms)
        .await?;
    Ok(())
}
