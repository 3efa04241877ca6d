//! DeleteTopics (API key 20): by name (all versions) and by topic id (v6+).

use fjord_metadata::Topic;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tracing::instrument;
use uuid::Uuid;

use super::{duplicates, Failure};
use crate::quota::mutations::MutationQuota;
use crate::topics::TopicService;

/// What one entry of the request names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Target {
    Name(String),
    Id(Uuid),
    /// Both or neither given (v6+); what the client gave, to echo back.
    Invalid(Option<String>, Uuid),
}

/// Deletes the requested topics, one result per request entry. The partitions deleted are
/// charged to `quota`, which may refuse topics and sets `throttle_time_ms`.
#[instrument(skip_all, fields(%cluster_id, version))]
pub async fn delete_topics(
    svc: &TopicService,
    cluster_id: Uuid,
    version: i16,
    req: DeleteTopicsRequest,
    quota: &mut MutationQuota,
    now_ms: i64,
) -> DeleteTopicsResponse {
    let targets: Vec<Target> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| match (&t.name, t.topic_id.is_nil()) {
                (Some(name), true) => Target::Name(name.to_string()),
                (None, false) => Target::Id(t.topic_id),
                (name, _) => Target::Invalid(name.as_ref().map(|n| n.to_string()), t.topic_id),
            })
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| Target::Name(n.to_string()))
            .collect()
    };
    let dup = duplicates(&targets);
    let mut results = Vec::with_capacity(targets.len());
    for (target, is_dup) in targets.into_iter().zip(dup) {
        let (name, id) = match &target {
            Target::Name(n) => (Some(n.clone()), Uuid::nil()),
            Target::Id(id) => (None, *id),
            Target::Invalid(name, id) => (name.clone(), *id),
        };
        let outcome = if is_dup && !matches!(target, Target::Invalid(..)) {
            Err(Failure::new(
                ResponseError::InvalidRequest,
                "the topic appears more than once in the request",
            ))
        } else {
            // An invalid entry is refused whatever the quota.
            let admitted = match &target {
                Target::Invalid(..) => Ok(()),
                _ => quota.admit(now_ms),
            };
            match admitted {
                Err(f) => Err(f),
                Ok(()) => {
                    let deleted = delete_one(svc, cluster_id, &target).await;
                    if let Ok(topic) = &deleted {
                        quota.record(now_ms, u64::try_from(topic.partitions).unwrap_or(0));
                    }
                    deleted
                }
            }
        };
        let r = match outcome {
            Ok(deleted) => DeletableTopicResult::default()
                .with_name(Some(topic_name(deleted.name)))
                .with_topic_id(if version >= 6 {
                    deleted.id
                } else {
                    Uuid::nil()
                })
                .with_error_code(0)
                .with_error_message(None),
            Err(f) => {
                tracing::info!(?name, %id, code = f.code, message = %f.message, "delete topic refused");
                DeletableTopicResult::default()
                    // v0-5 have a non-nullable name; v6 names what the client asked for.
                    .with_name(match name {
                        Some(n) => Some(topic_name(n)),
                        None if version >= 6 => None,
                        None => Some(topic_name(String::new())),
                    })
                    .with_topic_id(id)
                    .with_error_code(f.code)
                    .with_error_message(if version >= 5 { f.message() } else { None })
            }
        };
        results.push(r);
    }
    DeleteTopicsResponse::default()
        .with_throttle_time_ms(quota.throttle_ms())
        .with_responses(results)
}

async fn delete_one(
    svc: &TopicService,
    cluster_id: Uuid,
    target: &Target,
) -> Result<Topic, Failure> {
    match target {
        Target::Name(n) => Ok(svc.delete_topic(cluster_id, n).await?),
        Target::Id(id) => Ok(svc.delete_topic_by_id(cluster_id, *id).await?),
        Target::Invalid(..) => Err(Failure::new(
            ResponseError::InvalidRequest,
            "give either a topic name or a topic id, not both or neither",
        )),
    }
}

fn topic_name(s: String) -> TopicName {
    StrBytes::from_string(s).into()
}
