//! Authorization of the Kafka admin APIs in front of [`crate::admin`]: each requested item is
//! checked, refused items are answered here with the resource's authorization error and a
//! message naming the action, and only the allowed items reach the handler (a refused topic is
//! never created, deleted or altered). Results keep the request's order.

use fjord_tenancy::policy::{Action, Resource, ResourceKind};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Refusal;
use crate::admin::{resource_type, AlterResource};
use crate::error::RequestError;
use crate::handlers::Ctx;
use crate::quota::mutations::MutationQuota;

/// The partition mutation quota of the request's cluster; none (with a warning) when the
/// cluster's quota entry cannot be read, as the other quotas do.
async fn mutation_quota(ctx: Ctx<'_>, api: ApiKey) -> MutationQuota {
    match ctx.gw.quotas().cluster(ctx.cluster, ctx.now_ms).await {
        Ok(Some(entry)) => MutationQuota::for_request(&entry, api, ctx.version),
        Ok(None) => MutationQuota::unlimited(),
        Err(e) => {
            tracing::warn!(cluster = %ctx.cluster, error = %e, "no quota entry; partition mutations not limited");
            MutationQuota::unlimited()
        }
    }
}

/// Puts handler results (for the allowed items, in order) and refusals back in request order.
fn merge<T>(
    checks: Vec<Result<(), Refusal>>,
    handled: Vec<T>,
    refused: impl Fn(usize, Refusal) -> T,
) -> Vec<T> {
    let mut handled = handled.into_iter();
    let mut out = Vec::with_capacity(checks.len());
    for (i, c) in checks.into_iter().enumerate() {
        match c {
            Ok(()) => out.extend(handled.next()),
            Err(r) => out.push(refused(i, r)),
        }
    }
    out
}

fn msg(r: &Refusal) -> Option<StrBytes> {
    Some(StrBytes::from_string(r.message.clone()))
}

fn keep<T: Clone>(items: &[T], checks: &[Result<(), Refusal>]) -> Vec<T> {
    items
        .iter()
        .zip(checks)
        .filter(|(_, c)| c.is_ok())
        .map(|(t, _)| t.clone())
        .collect()
}

/// The action and resource of a config resource (topic or broker); `None` for other types,
/// which the handlers refuse on their own.
fn config_check(ctx: Ctx<'_>, kind: i8, name: &str, alter: bool) -> Result<(), Refusal> {
    let (topic_action, cluster_action) = if alter {
        (
            Action::AlterTopicDynamicConfiguration,
            Action::AlterClusterDynamicConfiguration,
        )
    } else {
        (
            Action::DescribeTopicDynamicConfiguration,
            Action::DescribeClusterDynamicConfiguration,
        )
    };
    match kind {
        resource_type::TOPIC => ctx.access.allow(topic_action, Resource::Topic(name)),
        resource_type::BROKER | resource_type::BROKER_LOGGER => {
            ctx.access.allow(cluster_action, Resource::Cluster)
        }
        _ => Ok(()),
    }
}

pub(crate) async fn create_topics(ctx: Ctx<'_>, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let checks: Vec<_> = req
        .topics
        .iter()
        .map(|t| {
            ctx.access
                .allow(Action::CreateTopic, Resource::Topic(&t.name))
        })
        .collect();
    let names: Vec<_> = req.topics.iter().map(|t| t.name.clone()).collect();
    let allowed = req.clone().with_topics(keep(&req.topics, &checks));
    let svc = &*ctx.gw.topics;
    let mut quota = mutation_quota(ctx, ApiKey::CreateTopics).await;
    let resp = crate::admin::create_topics(
        svc,
        ctx.cluster,
        ctx.version,
        allowed,
        &mut quota,
        ctx.now_ms,
    )
    .await;
    let v = ctx.version;
    let topics = merge(checks, resp.topics.clone(), |i, r| {
        let mut t = CreatableTopicResult::default()
            .with_name(names[i].clone())
            .with_error_code(r.code)
            .with_error_message(msg(&r));
        if v >= 5 {
            t = t
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_configs(None);
        }
        t
    });
    let topics = topics.into_iter().map(|t| hide_configs(ctx, t)).collect();
    resp.with_topics(topics)
}

/// Kafka answers a created topic's configs (v5+) only to a principal that may describe them,
/// else TOPIC_AUTHORIZATION_FAILED in `topic_config_error_code` (KIP-525): CreateTopic alone
/// does not reveal the configs.
fn hide_configs(ctx: Ctx<'_>, t: CreatableTopicResult) -> CreatableTopicResult {
    if ctx.version < 5
        || t.error_code != 0
        || ctx.access.may(
            Action::DescribeTopicDynamicConfiguration,
            Resource::Topic(&t.name),
        )
    {
        return t;
    }
    t.with_configs(Some(Vec::new()))
        .with_topic_config_error_code(ResourceKind::Topic.authorization_failed_code())
}

pub(crate) async fn delete_topics(ctx: Ctx<'_>, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let v = ctx.version;
    let svc = &*ctx.gw.topics;
    if v >= 6 {
        let mut checks = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            checks.push(match (&t.name, t.topic_id.is_nil()) {
                (Some(n), _) => ctx.access.allow(Action::DeleteTopic, Resource::Topic(n)),
                // By id: authorize on the topic's name; an unknown id is the handler's answer.
                (None, false) => match ctx.topic_by_id(t.topic_id).await {
                    Ok(info) => delete_by_id(ctx, t.topic_id, &info.topic.name),
                    Err(_) => Ok(()),
                },
                (None, true) => Ok(()),
            });
        }
        let allowed = req.clone().with_topics(keep(&req.topics, &checks));
        let mut quota = mutation_quota(ctx, ApiKey::DeleteTopics).await;
        let resp =
            crate::admin::delete_topics(svc, ctx.cluster, v, allowed, &mut quota, ctx.now_ms).await;
        let responses = merge(checks, resp.responses.clone(), |i, r| {
            let t = &req.topics[i];
            DeletableTopicResult::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_error_code(r.code)
                .with_error_message(msg(&r))
        });
        return resp.with_responses(responses);
    }
    let checks: Vec<_> = req
        .topic_names
        .iter()
        .map(|n| ctx.access.allow(Action::DeleteTopic, Resource::Topic(n)))
        .collect();
    let allowed = req
        .clone()
        .with_topic_names(keep(&req.topic_names, &checks));
    let mut quota = mutation_quota(ctx, ApiKey::DeleteTopics).await;
    let resp =
        crate::admin::delete_topics(svc, ctx.cluster, v, allowed, &mut quota, ctx.now_ms).await;
    let responses = merge(checks, resp.responses.clone(), |i, r| {
        let mut t = DeletableTopicResult::default()
            .with_name(Some(req.topic_names[i].clone()))
            .with_error_code(r.code);
        if v >= 5 {
            t = t.with_error_message(msg(&r));
        }
        t
    });
    resp.with_responses(responses)
}

/// A topic named by id that the principal may not describe is refused as an unknown id, as
/// Kafka does, so that its existence is not revealed; one it may describe needs DeleteTopic.
fn delete_by_id(ctx: Ctx<'_>, id: uuid::Uuid, name: &str) -> Result<(), Refusal> {
    if !ctx.access.may(Action::DescribeTopic, Resource::Topic(name)) {
        return Err(Refusal {
            code: ResponseError::UnknownTopicId.code(),
            message: RequestError::UnknownTopicId(id).to_string(),
        });
    }
    ctx.access.allow(Action::DeleteTopic, Resource::Topic(name))
}

pub(crate) async fn create_partitions(
    ctx: Ctx<'_>,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let checks: Vec<_> = req
        .topics
        .iter()
        .map(|t| {
            ctx.access
                .allow(Action::AlterTopic, Resource::Topic(&t.name))
        })
        .collect();
    let allowed = req.clone().with_topics(keep(&req.topics, &checks));
    let svc = &*ctx.gw.topics;
    let mut quota = mutation_quota(ctx, ApiKey::CreatePartitions).await;
    let resp = crate::admin::create_partitions(
        svc,
        ctx.cluster,
        ctx.version,
        allowed,
        &mut quota,
        ctx.now_ms,
    )
    .await;
    let results = merge(checks, resp.results.clone(), |i, r| {
        CreatePartitionsTopicResult::default()
            .with_name(req.topics[i].name.clone())
            .with_error_code(r.code)
            .with_error_message(msg(&r))
    });
    resp.with_results(results)
}

pub(crate) async fn describe_configs(
    ctx: Ctx<'_>,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let checks: Vec<_> = req
        .resources
        .iter()
        .map(|r| config_check(ctx, r.resource_type, &r.resource_name, false))
        .collect();
    let allowed = req.clone().with_resources(keep(&req.resources, &checks));
    let svc = &*ctx.gw.topics;
    let resp =
        crate::admin::describe_configs(svc, ctx.cluster, ctx.version, allowed, ctx.now_ms).await;
    let results = merge(checks, resp.results.clone(), |i, r| {
        let res = &req.resources[i];
        DescribeConfigsResult::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone())
            .with_error_code(r.code)
            .with_error_message(msg(&r))
    });
    resp.with_results(results)
}

pub(crate) async fn alter_configs(ctx: Ctx<'_>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let checks: Vec<_> = req
        .resources
        .iter()
        .map(|r| config_check(ctx, r.resource_type, &r.resource_name, true))
        .collect();
    let allowed = req.clone().with_resources(keep(&req.resources, &checks));
    let svc = &*ctx.gw.topics;
    let resp =
        crate::admin::alter_configs(svc, ctx.cluster, ctx.version, allowed, ctx.now_ms).await;
    let responses = merge(checks, resp.responses.clone(), |i, r| {
        req.resources[i].respond(r.code, msg(&r))
    });
    resp.with_responses(responses)
}

pub(crate) async fn incremental_alter_configs(
    ctx: Ctx<'_>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let checks: Vec<_> = req
        .resources
        .iter()
        .map(|r| config_check(ctx, r.resource_type, &r.resource_name, true))
        .collect();
    let allowed = req.clone().with_resources(keep(&req.resources, &checks));
    let svc = &*ctx.gw.topics;
    let resp =
        crate::admin::incremental_alter_configs(svc, ctx.cluster, ctx.version, allowed, ctx.now_ms)
            .await;
    let responses = merge(checks, resp.responses.clone(), |i, r| {
        req.resources[i].respond(r.code, msg(&r))
    });
    resp.with_responses(responses)
}
