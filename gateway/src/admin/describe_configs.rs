//! DescribeConfigs (API key 32).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use tracing::instrument;
use uuid::Uuid;

use super::{resource_type, Failure};
use crate::topics::config::broker_configs;
use crate::topics::{ConfigEntry, TopicService};

/// Describes topic configs (every known config with its effective value), the service-wide
/// broker configs (the same for every broker id, since all gateways are alike; read-only), and
/// broker loggers (none). Other resource types get INVALID_REQUEST.
#[instrument(skip_all, fields(%cluster_id, version, resources = req.resources.len()))]
pub async fn describe_configs(
    svc: &TopicService,
    cluster_id: Uuid,
    version: i16,
    req: DescribeConfigsRequest,
    now_ms: i64,
) -> DescribeConfigsResponse {
    // Same shape as every admin handler; nothing here depends on time yet.
    let _ = now_ms;
    let mut results = Vec::with_capacity(req.resources.len());
    for resource in &req.resources {
        let base = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let entries = match resource.resource_type {
            resource_type::TOPIC => svc
                .describe_configs(cluster_id, resource.resource_name.as_str())
                .await
                .map_err(Failure::from),
            resource_type::BROKER => Ok(broker_configs(svc.config().default_partitions)),
            resource_type::BROKER_LOGGER => Ok(Vec::new()),
            other => Err(Failure::new(
                ResponseError::InvalidRequest,
                format!(
                    "resource type {other} is not supported; describe topics (2) or brokers (4)"
                ),
            )),
        };
        results.push(match entries {
            Ok(entries) => base
                .with_error_code(0)
                .with_error_message(None)
                .with_configs(select(entries, resource, &req, version)),
            Err(f) => {
                tracing::info!(resource = resource.resource_name.as_str(), code = f.code, message = %f.message, "describe configs refused");
                base.with_error_code(f.code)
                    .with_error_message(f.message())
            }
        });
    }
    DescribeConfigsResponse::default()
        .with_throttle_time_ms(0)
        .with_results(results)
}

/// Keeps the requested keys (all if none are named) and converts them to the wire form.
fn select(
    entries: Vec<ConfigEntry>,
    resource: &DescribeConfigsResource,
    req: &DescribeConfigsRequest,
    version: i16,
) -> Vec<DescribeConfigsResourceResult> {
    entries
        .into_iter()
        .filter(|e| match &resource.configuration_keys {
            None => true,
            Some(keys) => keys.iter().any(|k| k.as_str() == e.name),
        })
        .map(|e| {
            let synonyms = if req.include_synonyms {
                e.synonyms
                    .iter()
                    .map(|s| {
                        DescribeConfigsSynonym::default()
                            .with_name(StrBytes::from_string(s.name.clone()))
                            .with_value(Some(StrBytes::from_string(s.value.clone())))
                            .with_source(s.source.kafka_code())
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let documentation = (version >= 3 && req.include_documentation)
                .then(|| StrBytes::from_static_str(e.documentation));
            DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_string(e.name))
                .with_value(e.value.map(StrBytes::from_string))
                .with_read_only(e.read_only)
                .with_config_source(e.source.kafka_code())
                .with_is_sensitive(e.sensitive)
                .with_synonyms(synonyms)
                .with_config_type(e.config_type.kafka_code())
                .with_documentation(documentation)
        })
        .collect()
}
