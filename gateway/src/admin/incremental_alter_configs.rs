//! IncrementalAlterConfigs (API key 44): SET / DELETE / APPEND / SUBTRACT on single configs.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use tracing::instrument;
use uuid::Uuid;

use super::{alter_each, Failure};
use crate::topics::{AlterOp, ConfigAlteration, TopicService};

/// Applies incremental config changes to the named topics; all changes of one resource apply
/// together or not at all. Broker resources are refused.
#[instrument(skip_all, fields(%cluster_id, version, resources = req.resources.len(), validate_only = req.validate_only))]
pub async fn incremental_alter_configs(
    svc: &TopicService,
    cluster_id: Uuid,
    version: i16,
    req: IncrementalAlterConfigsRequest,
    now_ms: i64,
) -> IncrementalAlterConfigsResponse {
    // Same shape as every admin handler; nothing here depends on time yet.
    let _ = now_ms;
    let _ = version; // Every field of the response exists in every version (0-1).
    let responses = alter_each("IncrementalAlterConfigs", &req.resources, |resource| {
        alter_topic(svc, cluster_id, resource, req.validate_only)
    })
    .await;
    IncrementalAlterConfigsResponse::default()
        .with_throttle_time_ms(0)
        .with_responses(responses)
}

async fn alter_topic(
    svc: &TopicService,
    cluster_id: Uuid,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), Failure> {
    let ops = resource
        .configs
        .iter()
        .map(alteration)
        .collect::<Result<Vec<_>, _>>()?;
    svc.incremental_alter_configs(
        cluster_id,
        resource.resource_name.as_str(),
        &ops,
        validate_only,
    )
    .await?;
    Ok(())
}

/// Kafka's `AlterConfigOp.OpType` codes.
fn alteration(c: &AlterableConfig) -> Result<ConfigAlteration, Failure> {
    let name = c.name.to_string();
    let value = || {
        c.value.as_ref().map(|v| v.to_string()).ok_or_else(|| {
            Failure::new(
                ResponseError::InvalidRequest,
                format!("null value is not supported for config {name}"),
            )
        })
    };
    let op = match c.config_operation {
        0 => AlterOp::Set(value()?),
        1 => AlterOp::Delete,
        2 => AlterOp::Append(value()?),
        3 => AlterOp::Subtract(value()?),
        other => {
            return Err(Failure::new(
                ResponseError::InvalidRequest,
                format!("unknown config operation {other} for config {name}"),
            ))
        }
    };
    Ok(ConfigAlteration { name, op })
}
