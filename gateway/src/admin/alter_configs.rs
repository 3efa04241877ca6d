//! AlterConfigs (API key 33): full replacement of a topic's config overrides.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use tracing::instrument;
use uuid::Uuid;

use super::{alter_each, Failure};
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
    let responses = alter_each("AlterConfigs", &req.resources, |resource| {
        alter_topic(svc, cluster_id, resource, req.validate_only)
    })
    .await;
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
