//! AlterConfigs (API key 33): full replacement of a topic's config overrides.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use tracing::instrument;
use uuid::Uuid;

use super::{duplicates, resource_type, unsupported_resource, Failure};
use crate::topics::TopicService;

/// Replaces the config overrides of the named topics: configs not listed return to their
/// defaults (Kafka's legacy AlterConfigs semantics). Broker resources are refused.
#[instrument(skip_all, fields(%cluster_id, version, resources = req.resources.len(), validate_only = req.validate_only))]
pub async fn alter_configs(
    svc: &TopicService,
    cluster_id: Uuid,
    version: i16,
    req: AlterConfigsRequest,
    now_ms: i64,
) -> AlterConfigsResponse {
    // Same shape as every admin handler; nothing here depends on time yet.
    let _ = now_ms;
    let _ = version; // Every field of the response exists in every version (0-2).
    let keys: Vec<(i8, &str)> = req
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.as_str()))
        .collect();
    let dup = duplicates(&keys);
    let mut responses = Vec::with_capacity(req.resources.len());
    for (resource, is_dup) in req.resources.iter().zip(dup) {
        let outcome = if is_dup {
            Err(Failure::new(
                ResponseError::InvalidRequest,
                "the resource appears more than once in the request",
            ))
        } else if resource.resource_type != resource_type::TOPIC {
            Err(unsupported_resource(resource.resource_type))
        } else {
            alter_topic(svc, cluster_id, resource, req.validate_only).await
        };
        let r = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        responses.push(match outcome {
            Ok(()) => r.with_error_code(0).with_error_message(None),
            Err(f) => {
                tracing::info!(resource = resource.resource_name.as_str(), code = f.code, message = %f.message, "alter configs refused");
                r.with_error_code(f.code).with_error_message(f.message())
            }
        });
    }
    AlterConfigsResponse::default()
        .with_throttle_time_ms(0)
        .with_responses(responses)
}

async fn alter_topic(
    svc: &TopicService,
    cluster_id: Uuid,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), Failure> {
    let mut set = BTreeMap::new();
    for c in &resource.configs {
        let Some(value) = &c.value else {
            return Err(Failure::new(
                ResponseError::InvalidRequest,
                format!("null value is not supported for config {}", c.name.as_str()),
            ));
        };
        if set.insert(c.name.to_string(), value.to_string()).is_some() {
            return Err(Failure::new(
                ResponseError::InvalidRequest,
                format!("config {} is given more than once", c.name.as_str()),
            ));
        }
    }
    svc.alter_configs(
        cluster_id,
        resource.resource_name.as_str(),
        set,
        validate_only,
    )
    .await?;
    Ok(())
}
