//! MSK's topic operations with botocore's shapes: CreateTopic, ListTopics, DescribeTopic,
//! DescribeTopicPartitions, UpdateTopic, DeleteTopic (`configs` is base64 of a JSON object of
//! config names to values, as MSK encodes it).
//!
//! Every change goes through the gateway's [`fjord_gateway::topics::TopicService`], the code
//! path of Kafka's CreateTopics, CreatePartitions, IncrementalAlterConfigs and DeleteTopics,
//! with the same validation, partition limit and placement, and is authorized with the same
//! MSK data-plane actions and prerequisites the gateway checks for those APIs
//! (`kafka-cluster:CreateTopic`, `AlterTopic`, `AlterTopicDynamicConfiguration`, `DeleteTopic`,
//! `DescribeTopic`, all needing `Connect`). Changes count against the cluster's topic-admin
//! request rate, and partitions created (CreateTopic, UpdateTopic's `partitionCount`) or
//! deleted (DeleteTopic) against its partition mutation quota (KIP-599, 250 per 5 minutes by
//! default), with the strict semantics Kafka's CreateTopics v6+ / CreatePartitions v3+ /
//! DeleteTopics v5+ get at the gateway: refused while the quota is in debt, with 429
//! `TooManyRequestsException` naming the limit (the gateway answers THROTTLING_QUOTA_EXCEEDED). ListTopics shows only the topics the caller may describe,
//! as Kafka's Metadata does.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use fjord_gateway::topics::{config, AlterOp, ConfigAlteration, REPORTED_REPLICATION_FACTOR};
use fjord_metadata::{Cluster, Topic};
use fjord_tenancy::policy::{Action, ClusterRef, Resource};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::msk::{find_cluster, parse_arn};
use crate::request::{json, paginate, parse_json, Req};
use crate::server::{AppState, Inner};

/// Default and largest page.
const MAX_RESULTS: i64 = 100;
/// Largest decoded `configs` object accepted.
const MAX_CONFIGS: usize = 64;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateTopicRequest {
    topic_name: Option<String>,
    partition_count: Option<i32>,
    replication_factor: Option<i32>,
    configs: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateTopicRequest {
    configs: Option<String>,
    partition_count: Option<i32>,
}

/// Decodes MSK's `configs`: base64 of a JSON object whose values are strings (numbers and
/// booleans are accepted and turned into their text).
pub fn decode_configs(encoded: &str) -> ApiResult<BTreeMap<String, String>> {
    let bad = |why: &str| {
        ApiError::BadRequest(format!(
            "configs must be base64 of a JSON object of config names to values: {why}"
        ))
    };
    let raw = STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad("not base64"))?;
    let value: Value = serde_json::from_slice(&raw).map_err(|_| bad("not JSON"))?;
    let Value::Object(map) = value else {
        return Err(bad("not an object"));
    };
    if map.len() > MAX_CONFIGS {
        return Err(bad("too many entries"));
    }
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            _ => Err(bad("values must be strings")),
        })
        .collect()
}

/// Encodes configs the way [`decode_configs`] reads them.
pub fn encode_configs(configs: &BTreeMap<String, String>) -> String {
    STANDARD.encode(serde_json::to_vec(configs).unwrap_or_default())
}

/// Parses the cluster ARN, checks `wanted` with prerequisites, and finds the cluster.
async fn authorized(
    state: &Inner,
    req: &Req,
    wanted: &[(Action, Resource<'_>)],
) -> ApiResult<(Cluster, ClusterRef)> {
    let cref = parse_arn(req.param("clusterArn")?)?;
    req.caller.require_kafka(&cref, wanted)?;
    let cluster = find_cluster(state, req, &cref).await?;
    Ok((cluster, cref))
}

fn topic_summary(cref: &ClusterRef, topic: &Topic) -> Value {
    json!({
        "topicArn": cref.topic_arn(&topic.name),
        "topicName": topic.name,
        "replicationFactor": REPORTED_REPLICATION_FACTOR,
        "partitionCount": topic.partitions,
        "outOfSyncReplicaCount": 0,
    })
}

/// `POST /v1/clusters/{clusterArn}/topics`.
pub(crate) async fn create_topic(
    State(state): State<AppState>,
    req: Req,
    body: Bytes,
) -> ApiResult<Response> {
    let input: CreateTopicRequest = parse_json(&body)?;
    let name = input
        .topic_name
        .ok_or_else(|| ApiError::BadRequest("topicName is required".into()))?;
    let partitions = input
        .partition_count
        .filter(|p| *p >= 1)
        .ok_or_else(|| ApiError::BadRequest("partitionCount must be at least 1".into()))?;
    // Durability comes from the WAL and object storage, not replicas: any factor is accepted
    // (as Kafka's CreateTopics through the gateway does) and 1 is reported.
    if input.replication_factor.is_none_or(|r| r < 1) {
        return Err(ApiError::BadRequest(
            "replicationFactor must be at least 1".into(),
        ));
    }
    let configs = input
        .configs
        .as_deref()
        .map(decode_configs)
        .transpose()?
        .unwrap_or_default();
    let (cluster, cref) = authorized(
        &state,
        &req,
        &[(Action::CreateTopic, Resource::Topic(&name))],
    )
    .await?;
    state.admit_topic_admin(cluster.id, req.now_ms).await?;
    let permit = state
        .admit_partition_mutation(cluster.id, req.now_ms)
        .await?;
    let info = state
        .topics
        .create_topic(cluster.id, &name, partitions, configs, false, req.now_ms)
        .await?;
    permit.record(req.now_ms, info.topic.partitions);
    json(&json!({
        "topicArn": cref.topic_arn(&info.topic.name),
        "topicName": info.topic.name,
        "status": "ACTIVE",
    }))
}

/// `GET /v1/clusters/{clusterArn}/topics`.
pub(crate) async fn list_topics(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let max = req
        .query_int("maxResults", 1..=MAX_RESULTS)?
        .unwrap_or(MAX_RESULTS);
    let (cluster, cref) = authorized(&state, &req, &[(Action::Connect, Resource::Cluster)]).await?;
    let prefix = req.query("topicNameFilter").unwrap_or("");
    let visible: Vec<Topic> = state
        .topics
        .list(cluster.id)
        .await?
        .iter()
        .map(|info| info.topic.clone())
        .filter(|t| t.name.starts_with(prefix))
        .filter(|t| {
            req.caller
                .allows_kafka(&cref, &[(Action::DescribeTopic, Resource::Topic(&t.name))])
        })
        .collect();
    let (page, next) = paginate(
        visible,
        |t| t.name.as_str(),
        req.query("nextToken"),
        usize::try_from(max).unwrap_or(100),
    )?;
    let mut out = json!({
        "topics": page.iter().map(|t| topic_summary(&cref, t)).collect::<Vec<_>>(),
    });
    if let Some(next) = next {
        out["nextToken"] = Value::String(next);
    }
    json(&out)
}

/// `GET /v1/clusters/{clusterArn}/topics/{topicName}`: configs (every known config with its
/// effective value) are included when the caller may also DescribeTopicDynamicConfiguration.
pub(crate) async fn describe_topic(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let name = req.param("topicName")?.to_string();
    let (cluster, cref) = authorized(
        &state,
        &req,
        &[(Action::DescribeTopic, Resource::Topic(&name))],
    )
    .await?;
    let topic = state.topics.get(cluster.id, &name).await?;
    let mut out = topic_summary(&cref, &topic);
    out["status"] = json!("ACTIVE");
    let may_read_configs = req.caller.allows_kafka(
        &cref,
        &[(
            Action::DescribeTopicDynamicConfiguration,
            Resource::Topic(&name),
        )],
    );
    if may_read_configs {
        let effective: BTreeMap<String, String> = config::describe(&topic.configs)
            .into_iter()
            .filter_map(|e| e.value.map(|v| (e.name, v)))
            .collect();
        out["configs"] = Value::String(encode_configs(&effective));
    }
    json(&out)
}

/// `GET /v1/clusters/{clusterArn}/topics/{topicName}/partitions`.
pub(crate) async fn describe_partitions(
    State(state): State<AppState>,
    req: Req,
) -> ApiResult<Response> {
    let name = req.param("topicName")?.to_string();
    let max = req
        .query_int("maxResults", 1..=MAX_RESULTS)?
        .unwrap_or(MAX_RESULTS);
    let (cluster, _) = authorized(
        &state,
        &req,
        &[(Action::DescribeTopic, Resource::Topic(&name))],
    )
    .await?;
    let topic = state.topics.get(cluster.id, &name).await?;
    // Zero-padded so that the token order is the numeric order.
    let keys: Vec<String> = (0..topic.partitions).map(|p| format!("{p:010}")).collect();
    let (page, next) = paginate(
        keys,
        |k| k.as_str(),
        req.query("nextToken"),
        usize::try_from(max).unwrap_or(100),
    )?;
    // Every partition is led by the gateway the client talks to (one replica, see
    // REPORTED_REPLICATION_FACTOR).
    let broker = state.config.broker_id;
    let partitions: Vec<Value> = page
        .iter()
        .filter_map(|k| k.parse::<i32>().ok())
        .map(|p| json!({ "partition": p, "leader": broker, "replicas": [broker], "isr": [broker] }))
        .collect();
    let mut out = json!({ "partitions": partitions });
    if let Some(next) = next {
        out["nextToken"] = Value::String(next);
    }
    json(&out)
}

/// `PUT /v1/clusters/{clusterArn}/topics/{topicName}`: `configs` sets the given configs
/// (IncrementalAlterConfigs SET; others keep their values), `partitionCount` grows the topic
/// (CreatePartitions).
pub(crate) async fn update_topic(
    State(state): State<AppState>,
    req: Req,
    body: Bytes,
) -> ApiResult<Response> {
    let name = req.param("topicName")?.to_string();
    let input: UpdateTopicRequest = parse_json(&body)?;
    let configs = input.configs.as_deref().map(decode_configs).transpose()?;
    let mut wanted = Vec::new();
    if configs.is_some() {
        wanted.push((
            Action::AlterTopicDynamicConfiguration,
            Resource::Topic(&name),
        ));
    }
    if input.partition_count.is_some() {
        wanted.push((Action::AlterTopic, Resource::Topic(&name)));
    }
    if wanted.is_empty() {
        return Err(ApiError::BadRequest(
            "nothing to update: give configs, partitionCount or both".into(),
        ));
    }
    let (cluster, cref) = authorized(&state, &req, &wanted).await?;
    state.admit_topic_admin(cluster.id, req.now_ms).await?;
    if let Some(configs) = configs {
        let ops: Vec<ConfigAlteration> = configs
            .into_iter()
            .map(|(name, value)| ConfigAlteration {
                name,
                op: AlterOp::Set(value),
            })
            .collect();
        state
            .topics
            .incremental_alter_configs(cluster.id, &name, &ops, false)
            .await?;
    }
    if let Some(total) = input.partition_count {
        let permit = state
            .admit_partition_mutation(cluster.id, req.now_ms)
            .await?;
        let before = state.topics.get(cluster.id, &name).await?.partitions;
        let info = state
            .topics
            .create_partitions(cluster.id, &name, total, false, req.now_ms)
            .await?;
        // What this request added (a concurrent grow may have added some of it: then less).
        permit.record(
            req.now_ms,
            info.topic.partitions.saturating_sub(before).max(0),
        );
    }
    json(&json!({
        "topicArn": cref.topic_arn(&name),
        "topicName": name,
        "status": "ACTIVE",
    }))
}

/// `DELETE /v1/clusters/{clusterArn}/topics/{topicName}`.
pub(crate) async fn delete_topic(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let name = req.param("topicName")?.to_string();
    let (cluster, cref) = authorized(
        &state,
        &req,
        &[(Action::DeleteTopic, Resource::Topic(&name))],
    )
    .await?;
    state.admit_topic_admin(cluster.id, req.now_ms).await?;
    let permit = state
        .admit_partition_mutation(cluster.id, req.now_ms)
        .await?;
    let deleted = state.topics.delete_topic(cluster.id, &name).await?;
    permit.record(req.now_ms, deleted.partitions);
    json(&json!({
        "topicArn": cref.topic_arn(&name),
        "topicName": name,
        "status": "DELETING",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_round_trip_and_refusals() {
        let mut c = BTreeMap::new();
        c.insert("retention.ms".to_string(), "1000".to_string());
        assert_eq!(decode_configs(&encode_configs(&c)).expect("decode"), c);
        let numeric = STANDARD.encode(br#"{"retention.ms": 1000}"#);
        assert_eq!(decode_configs(&numeric).expect("decode"), c);
        assert!(decode_configs("%%%").is_err());
        assert!(decode_configs(&STANDARD.encode(b"[1]")).is_err());
        assert!(decode_configs(&STANDARD.encode(br#"{"a": {"b": 1}}"#)).is_err());
    }
}
