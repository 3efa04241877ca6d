//! MSK's cluster operations with botocore's shapes (kafka 2018-11-14, REST-JSON, members by
//! their camelCase `locationName`): CreateClusterV2 (serverless only), DescribeClusterV2,
//! ListClustersV2, DeleteCluster, GetBootstrapBrokers.
//!
//! IAM actions, checked on the cluster ARN (`*` for create and list): `kafka:CreateClusterV2`,
//! `kafka:DescribeClusterV2`, `kafka:ListClustersV2`, `kafka:DeleteCluster`,
//! `kafka:GetBootstrapBrokers`. A cluster ARN of another account or region answers
//! NotFoundException, like one that does not exist, so nothing about other tenants leaks.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use fjord_metadata::{Cluster, MetadataError};
use fjord_tenancy::policy::{parse_cluster_arn, ClusterRef};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::request::{json, paginate, parse_json, Req};
use crate::server::{AppState, Inner};
use crate::time::format_iso8601;

/// MSK's `currentVersion` of a cluster. Fjord clusters have no configuration revisions, so the
/// version never changes.
pub const CURRENT_VERSION: &str = "K1";
/// Longest cluster name (MSK's limit).
const MAX_CLUSTER_NAME: usize = 64;
/// Default and largest page of ListClustersV2.
const MAX_RESULTS: i64 = 100;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateClusterV2Request {
    cluster_name: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    provisioned: Option<Value>,
    serverless: Option<ServerlessRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerlessRequest {
    /// Fjord has no VPCs: accepted because MSK requires them, not stored.
    #[allow(dead_code)]
    vpc_configs: Option<Vec<Value>>,
    client_authentication: Option<ClientAuthentication>,
}

#[derive(Deserialize)]
struct ClientAuthentication {
    sasl: Option<Sasl>,
}

#[derive(Deserialize)]
struct Sasl {
    iam: Option<Enabled>,
}

#[derive(Deserialize)]
struct Enabled {
    enabled: Option<bool>,
}

/// MSK's rule for cluster names: a letter or digit, then letters, digits and hyphens.
pub fn validate_cluster_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_CLUSTER_NAME
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "clusterName must be 1 to {MAX_CLUSTER_NAME} letters, digits and hyphens, starting \
             with a letter or digit"
        )))
    }
}

/// The [`ClusterRef`] of a stored cluster.
pub fn cluster_ref(cluster: &Cluster) -> ClusterRef {
    ClusterRef {
        region: cluster.region.clone(),
        account_id: cluster.account_id.clone(),
        name: cluster.name.clone(),
        id: cluster.id,
    }
}

/// MSK's `Cluster` shape for a Fjord (serverless) cluster.
pub fn cluster_info(cluster: &Cluster) -> Value {
    json!({
        "clusterArn": cluster_ref(cluster).cluster_arn(),
        "clusterName": cluster.name,
        "clusterType": "SERVERLESS",
        "creationTime": format_iso8601(cluster.created_ms),
        "currentVersion": CURRENT_VERSION,
        "state": "ACTIVE",
        "tags": {},
        "serverless": {
            "vpcConfigs": [],
            "clientAuthentication": {"sasl": {"iam": {"enabled": true}}},
        },
    })
}

/// Parses a `{clusterArn}` parameter into the canonical cluster ARN used for authorization.
pub(crate) fn parse_arn(arn: &str) -> ApiResult<ClusterRef> {
    parse_cluster_arn(arn).map_err(|e| ApiError::BadRequest(format!("invalid clusterArn: {e}")))
}

/// Finds the caller's cluster an ARN names (after authorization): NotFound for a cluster that
/// does not exist, or that belongs to another account or region.
pub(crate) async fn find_cluster(
    state: &Inner,
    req: &Req,
    cref: &ClusterRef,
) -> ApiResult<Cluster> {
    let not_found = || ApiError::NotFound(format!("cluster {} does not exist", cref.cluster_arn()));
    if cref.account_id != req.caller.account_id || cref.region != state.config.region {
        return Err(not_found());
    }
    match state.store.get_cluster(cref.id).await? {
        Some(c) if c.account_id == cref.account_id && c.name == cref.name => Ok(c),
        _ => Err(not_found()),
    }
}

/// Authorizes `action` on the cluster an ARN parameter names, then finds it.
pub(crate) async fn authorized_cluster(
    state: &Inner,
    req: &Req,
    action: &str,
) -> ApiResult<(Cluster, ClusterRef)> {
    let cref = parse_arn(req.param("clusterArn")?)?;
    req.caller.require(action, &cref.cluster_arn())?;
    let cluster = find_cluster(state, req, &cref).await?;
    Ok((cluster, cref))
}

/// `POST /api/v2/clusters`.
pub(crate) async fn create_cluster(
    State(state): State<AppState>,
    req: Req,
    body: Bytes,
) -> ApiResult<Response> {
    req.caller.require("kafka:CreateClusterV2", "*")?;
    let input: CreateClusterV2Request = parse_json(&body)?;
    let name = input
        .cluster_name
        .ok_or_else(|| ApiError::BadRequest("clusterName is required".into()))?;
    validate_cluster_name(&name)?;
    if input.provisioned.is_some() {
        return Err(ApiError::BadRequest(
            "provisioned clusters are not supported: Fjord offers serverless clusters only; \
             pass serverless instead"
                .into(),
        ));
    }
    let serverless = input.serverless.ok_or_else(|| {
        ApiError::BadRequest(
            "serverless is required (Fjord offers serverless clusters only)".into(),
        )
    })?;
    let iam_disabled = serverless
        .client_authentication
        .and_then(|a| a.sasl)
        .and_then(|s| s.iam)
        .and_then(|i| i.enabled)
        == Some(false);
    if iam_disabled {
        return Err(ApiError::BadRequest(
            "serverless clusters always use IAM authentication; sasl.iam.enabled cannot be false"
                .into(),
        ));
    }
    if input.tags.is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::BadRequest(
            "tags are not supported by Fjord; create the cluster without tags".into(),
        ));
    }
    let cluster = Cluster {
        id: Uuid::new_v4(),
        account_id: req.caller.account_id.clone(),
        name: name.clone(),
        region: state.config.region.clone(),
        created_ms: req.now_ms,
    };
    match state.store.create_cluster(&cluster).await {
        Ok(()) => {}
        Err(MetadataError::AlreadyExists { .. }) => {
            return Err(ApiError::Conflict(format!(
                "a cluster named {name} already exists in this account"
            )))
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(cluster = %name, cluster_id = %cluster.id, "cluster created");
    json(&json!({
        "clusterArn": cluster_ref(&cluster).cluster_arn(),
        "clusterName": name,
        "state": "ACTIVE",
        "clusterType": "SERVERLESS",
    }))
}

/// `GET /api/v2/clusters/{clusterArn}`.
pub(crate) async fn describe_cluster(
    State(state): State<AppState>,
    req: Req,
) -> ApiResult<Response> {
    let (cluster, _) = authorized_cluster(&state, &req, "kafka:DescribeClusterV2").await?;
    json(&json!({ "clusterInfo": cluster_info(&cluster) }))
}

/// `GET /api/v2/clusters`.
pub(crate) async fn list_clusters(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    req.caller.require("kafka:ListClustersV2", "*")?;
    let max = req
        .query_int("maxResults", 1..=MAX_RESULTS)?
        .unwrap_or(MAX_RESULTS);
    let serverless = match req.query("clusterTypeFilter") {
        None | Some("SERVERLESS") => true,
        Some("PROVISIONED") => false,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "clusterTypeFilter must be PROVISIONED or SERVERLESS".into(),
            ))
        }
    };
    let prefix = req.query("clusterNameFilter").unwrap_or("");
    let clusters: Vec<Cluster> = if serverless {
        state
            .store
            .list_clusters(&req.caller.account_id)
            .await?
            .into_iter()
            .filter(|c| c.region == state.config.region && c.name.starts_with(prefix))
            .collect()
    } else {
        Vec::new()
    };
    let (page, next) = paginate(
        clusters,
        |c| c.name.as_str(),
        req.query("nextToken"),
        usize::try_from(max).unwrap_or(100),
    )?;
    let mut out = json!({ "clusterInfoList": page.iter().map(cluster_info).collect::<Vec<_>>() });
    if let Some(next) = next {
        out["nextToken"] = Value::String(next);
    }
    json(&out)
}

/// `DELETE /v1/clusters/{clusterArn}`: deletes the cluster and everything in it, as MSK does:
/// its topics (through the topic service, the path Kafka's DeleteTopics takes), committed group
/// offsets, ACLs and limit overrides, then the cluster. Its topic deletions are not charged to
/// the partition mutation quota: deleting a cluster is not a Kafka admin request, and a cluster
/// with more partitions than one window allows must still be deletable in one call.
pub(crate) async fn delete_cluster(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let (cluster, cref) = authorized_cluster(&state, &req, "kafka:DeleteCluster").await?;
    if let Some(version) = req.query("currentVersion") {
        if version != CURRENT_VERSION {
            return Err(ApiError::BadRequest(format!(
                "currentVersion {version} does not match the cluster's version {CURRENT_VERSION}"
            )));
        }
    }
    let topics = state.topics.list(cluster.id).await?;
    for topic in &topics {
        match state
            .topics
            .delete_topic(cluster.id, &topic.topic.name)
            .await
        {
            Ok(_) => {}
            // Deleted concurrently: the goal is reached.
            Err(fjord_gateway::topics::TopicError::UnknownTopic(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for group in state.store.list_offset_groups(cluster.id).await? {
        state.store.delete_group_offsets(cluster.id, &group).await?;
    }
    let acls = state.store.list_acls(cluster.id).await?;
    if !acls.is_empty() {
        state.store.delete_acls(cluster.id, &acls).await?;
    }
    clear_settings(&state, cluster.id).await?;
    state.forget_limits(cluster.id).await;
    match state.store.delete_cluster(cluster.id).await {
        Ok(()) | Err(MetadataError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(cluster = %cluster.name, topics = topics.len(), "cluster deleted");
    json(&json!({ "clusterArn": cref.cluster_arn(), "state": "DELETING" }))
}

/// The store has no way to delete a cluster's settings; emptying the overrides leaves a row
/// that no new cluster can reach (cluster ids are random UUIDs) and that means "defaults".
async fn clear_settings(state: &Inner, cluster_id: Uuid) -> ApiResult<()> {
    if let Some(mut settings) = state.store.get_cluster_settings(cluster_id).await? {
        if !settings.limits.is_empty() {
            settings.limits.clear();
            state.store.put_cluster_settings(&settings).await?;
        }
    }
    Ok(())
}

/// Fills a bootstrap template for a cluster.
pub fn render_bootstrap(template: &str, cluster: &Cluster) -> String {
    template
        .replace("{cluster}", &cluster.name)
        .replace("{cluster_id}", &cluster.id.to_string())
        .replace("{account}", &cluster.account_id)
        .replace("{region}", &cluster.region)
}

/// `GET /v1/clusters/{clusterArn}/bootstrap-brokers`.
pub(crate) async fn bootstrap_brokers(
    State(state): State<AppState>,
    req: Req,
) -> ApiResult<Response> {
    let (cluster, _) = authorized_cluster(&state, &req, "kafka:GetBootstrapBrokers").await?;
    let config = &state.config;
    let mut out = json!({
        "bootstrapBrokerStringSaslIam": render_bootstrap(&config.bootstrap_brokers, &cluster),
    });
    if let Some(t) = &config.bootstrap_brokers_scram {
        out["bootstrapBrokerStringSaslScram"] = Value::String(render_bootstrap(t, &cluster));
    }
    if let Some(t) = &config.bootstrap_brokers_tls {
        out["bootstrapBrokerStringTls"] = Value::String(render_bootstrap(t, &cluster));
    }
    json(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_follow_msk_rules() {
        for ok in ["a", "orders-1", "9x", &"a".repeat(64)] {
            assert!(validate_cluster_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a_b", "a/b", "a b", &"a".repeat(65)] {
            assert!(validate_cluster_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bootstrap_templates_are_per_cluster() {
        let c = Cluster {
            id: Uuid::nil(),
            account_id: "123456789012".into(),
            name: "orders".into(),
            region: "eu-west-1".into(),
            created_ms: 0,
        };
        assert_eq!(
            render_bootstrap("boot-{cluster}.{account}.{region}.fjord.example:9098", &c),
            "boot-orders.123456789012.eu-west-1.fjord.example:9098"
        );
        assert_eq!(render_bootstrap("127.0.0.1:9092", &c), "127.0.0.1:9092");
    }
}
