//! CreateTopics (API key 19).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use tracing::instrument;
use uuid::Uuid;

use super::{duplicates, Failure};
use crate::quota::mutations::MutationQuota;
use crate::topics::{ConfigEntry, TopicInfo, TopicService, REPORTED_REPLICATION_FACTOR};

/// Creates the requested topics, one result per distinct topic name. Replication factors are
/// accepted and ignored (durability is the storage layer's); a manual replica assignment only
/// fixes the partition count, since Fjord places partitions itself. The partitions created are
/// charged to `quota`, which may refuse topics and sets `throttle_time_ms`.
#[instrument(skip_all, fields(%cluster_id, version, topics = req.topics.len(), validate_only = req.validate_only))]
pub async fn create_topics(
    svc: &TopicService,
    cluster_id: Uuid,
    version: i16,
    req: CreateTopicsRequest,
    quota: &mut MutationQuota,
    now_ms: i64,
) -> CreateTopicsResponse {
    let names: Vec<&str> = req.topics.iter().map(|t| t.name.as_str()).collect();
    let dup = duplicates(&names);
    let mut results = Vec::with_capacity(req.topics.len());
    let mut seen_dups: Vec<&str> = Vec::new();
    for (topic, is_dup) in req.topics.iter().zip(dup) {
        let name = topic.name.as_str();
        let outcome = if is_dup {
            if seen_dups.contains(&name) {
                continue;
            }
            seen_dups.push(name);
            Err(Failure::new(
                ResponseError::InvalidRequest,
                format!("topic '{name}' appears more than once in the request"),
            ))
        } else if req.validate_only {
            create_one(svc, cluster_id, topic, true, now_ms).await
        } else {
            match quota.admit(now_ms) {
                Ok(()) => {
                    let created = create_one(svc, cluster_id, topic, false, now_ms).await;
                    if let Ok(info) = &created {
                        quota.record(now_ms, u64::try_from(info.topic.partitions).unwrap_or(0));
                    }
                    created
                }
                Err(f) => Err(f),
            }
        };
        results.push(match outcome {
            Ok(info) => success(version, &info, req.validate_only),
            Err(f) => {
                tracing::info!(topic = name, code = f.code, message = %f.message, "create topic refused");
                CreatableTopicResult::default()
                    .with_name(topic.name.clone())
                    .with_error_code(f.code)
                    .with_error_message(f.message())
            }
        });
    }
    CreateTopicsResponse::default()
        .with_throttle_time_ms(quota.throttle_ms())
        .with_topics(results)
}

async fn create_one(
    svc: &TopicService,
    cluster_id: Uuid,
    topic: &CreatableTopic,
    validate_only: bool,
    now_ms: i64,
) -> Result<std::sync::Arc<TopicInfo>, Failure> {
    let partitions = partition_count(topic)?;
    let mut configs = BTreeMap::new();
    for c in &topic.configs {
        let Some(value) = &c.value else {
            return Err(Failure::new(
                ResponseError::InvalidConfig,
                format!(
                    "null value is not supported for topic config {}",
                    c.name.as_str()
                ),
            ));
        };
        if configs
            .insert(c.name.to_string(), value.to_string())
            .is_some()
        {
            return Err(Failure::new(
                ResponseError::InvalidRequest,
                format!("topic config {} is given more than once", c.name.as_str()),
            ));
        }
    }
    Ok(svc
        .create_topic(
            cluster_id,
            topic.name.as_str(),
            partitions,
            configs,
            validate_only,
            now_ms,
        )
        .await?)
}

/// The partition count a request asks for: `num_partitions`, or the size of a manual
/// assignment (whose broker ids Fjord does not use).
fn partition_count(topic: &CreatableTopic) -> Result<i32, Failure> {
    if topic.assignments.is_empty() {
        return Ok(topic.num_partitions);
    }
    if topic.num_partitions != -1 || topic.replication_factor != -1 {
        return Err(Failure::new(
            ResponseError::InvalidRequest,
            "num_partitions or replication_factor was set together with a replica assignment; \
             use one or the other",
        ));
    }
    let mut indexes: Vec<i32> = topic
        .assignments
        .iter()
        .map(|a| a.partition_index)
        .collect();
    indexes.sort_unstable();
    if indexes
        .iter()
        .enumerate()
        .any(|(i, &p)| usize::try_from(p).ok() != Some(i))
    {
        return Err(Failure::new(
            ResponseError::InvalidReplicaAssignment,
            "the partitions of a replica assignment must be numbered 0 to n-1 without gaps",
        ));
    }
    i32::try_from(indexes.len()).map_err(|_| {
        Failure::new(
            ResponseError::InvalidReplicaAssignment,
            "replica assignment has too many partitions",
        )
    })
}

fn success(version: i16, info: &TopicInfo, validate_only: bool) -> CreatableTopicResult {
    let t = &info.topic;
    let mut r = CreatableTopicResult::default()
        .with_name(StrBytes::from_string(t.name.clone()).into())
        .with_error_code(0)
        .with_error_message(None);
    if version >= 7 && !validate_only {
        r = r.with_topic_id(t.id);
    }
    if version >= 5 {
        let configs = crate::topics::config::describe(&t.configs)
            .into_iter()
            .map(config_result)
            .collect();
        r = r
            .with_num_partitions(t.partitions)
            .with_replication_factor(REPORTED_REPLICATION_FACTOR)
            .with_configs(Some(configs));
    } else {
        r = r.with_configs(None);
    }
    r
}

fn config_result(e: ConfigEntry) -> CreatableTopicConfigs {
    CreatableTopicConfigs::default()
        .with_name(StrBytes::from_string(e.name))
        .with_value(e.value.map(StrBytes::from_string))
        .with_read_only(e.read_only)
        .with_config_source(e.source.kafka_code())
        .with_is_sensitive(e.sensitive)
}
