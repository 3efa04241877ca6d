//! Kafka admin API handlers on top of [`crate::topics::TopicService`].
//!
//! Each handler is a plain async function of (service, cluster, version, decoded request, now)
//! to the response: no sockets, no clock. The connection layer decodes the request, checks the
//! version against what it advertises, authorizes, calls the handler and encodes the response
//! with the same version. Handlers only set fields that exist in that version; every error
//! result carries a message where the version has a message field.
//!
//! Authorization (MSK's CreateTopic / DeleteTopic / AlterTopic / *TopicDynamicConfiguration
//! actions) is the caller's job: it answers unauthorized items itself and passes the rest.
//! All handlers take `now_ms` so they share one shape; only CreateTopics and CreatePartitions
//! use it today (node liveness, creation time).
//!
//! One module per API, each exporting one handler of the same name: `create_topics`,
//! `delete_topics`, `create_partitions`, `describe_configs`, `alter_configs`,
//! `incremental_alter_configs`.

pub mod alter_configs;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_topics;
pub mod describe_configs;
pub mod incremental_alter_configs;

pub use alter_configs::alter_configs;
pub use create_partitions::create_partitions;
pub use create_topics::create_topics;
pub use delete_topics::delete_topics;
pub use describe_configs::describe_configs;
pub use incremental_alter_configs::incremental_alter_configs;

use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;

use crate::topics::TopicError;

/// Kafka `ConfigResource.Type` codes.
pub mod resource_type {
    /// A topic.
    pub const TOPIC: i8 = 2;
    /// A broker (or, with an empty name, the cluster-wide broker defaults).
    pub const BROKER: i8 = 4;
    /// A broker's log levels.
    pub const BROKER_LOGGER: i8 = 8;
}

/// A handler's per-item outcome: the Kafka code and the message to send with it.
pub(crate) struct Failure {
    pub(crate) code: i16,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(e: ResponseError, message: impl Into<String>) -> Self {
        Failure {
            code: e.code(),
            message: message.into(),
        }
    }

    pub(crate) fn message(&self) -> Option<StrBytes> {
        Some(StrBytes::from_string(self.message.clone()))
    }
}

impl From<TopicError> for Failure {
    fn from(e: TopicError) -> Self {
        Failure {
            code: e.kafka_code(),
            message: e.to_string(),
        }
    }
}

/// The error every resource type other than topics gets from the Alter* APIs.
pub(crate) fn unsupported_resource(resource_type: i8) -> Failure {
    match resource_type {
        resource_type::BROKER | resource_type::BROKER_LOGGER => Failure::new(
            ResponseError::PolicyViolation,
            "broker configs are managed by Fjord and cannot be changed",
        ),
        other => Failure::new(
            ResponseError::InvalidRequest,
            format!("resource type {other} is not supported; only topics (2) can be altered"),
        ),
    }
}

/// A resource of AlterConfigs or IncrementalAlterConfigs: the two requests and their responses
/// share this shape, with different generated types.
pub(crate) trait AlterResource {
    /// The per-resource entry of the response.
    type Response;
    /// `(resource type, resource name)`.
    fn key(&self) -> (i8, &str);
    /// The response entry reporting `code` and `message` for this resource.
    fn respond(&self, code: i16, message: Option<StrBytes>) -> Self::Response;
}

/// Implements [`AlterResource`] for a request resource type and its response entry type (the
/// generated types of both APIs have the same fields).
macro_rules! alter_resource {
    ($resource:ty => $response:ty) => {
        impl AlterResource for $resource {
            type Response = $response;

            fn key(&self) -> (i8, &str) {
                (self.resource_type, self.resource_name.as_str())
            }

            fn respond(&self, code: i16, message: Option<StrBytes>) -> Self::Response {
                <$response>::default()
                    .with_resource_type(self.resource_type)
                    .with_resource_name(self.resource_name.clone())
                    .with_error_code(code)
                    .with_error_message(message)
            }
        }
    };
}

alter_resource!(
    kafka_protocol::messages::alter_configs_request::AlterConfigsResource
        => kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse
);
alter_resource!(
    kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource
        => kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse
);

/// The common part of the Alter*Configs handlers: refuses duplicated and non-topic resources,
/// runs `alter` on the rest, one at a time, and answers each in request order. `api` names the
/// request in logs.
pub(crate) async fn alter_each<'r, R, F, Fut>(
    api: &'static str,
    resources: &'r [R],
    alter: F,
) -> Vec<R::Response>
where
    R: AlterResource,
    F: Fn(&'r R) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let keys: Vec<(i8, &str)> = resources.iter().map(R::key).collect();
    let dup = duplicates(&keys);
    let mut responses = Vec::with_capacity(resources.len());
    for ((resource, (kind, name)), is_dup) in resources.iter().zip(&keys).zip(dup) {
        let outcome = if is_dup {
            Err(Failure::new(
                ResponseError::InvalidRequest,
                "the resource appears more than once in the request",
            ))
        } else if *kind != resource_type::TOPIC {
            Err(unsupported_resource(*kind))
        } else {
            alter(resource).await
        };
        responses.push(match outcome {
            Ok(()) => resource.respond(0, None),
            Err(f) => {
                tracing::info!(api, resource = name, code = f.code, message = %f.message, "config change refused");
                resource.respond(f.code, f.message())
            }
        });
    }
    responses
}

/// Indexes of items whose key appears more than once in a request: Kafka refuses all copies.
pub(crate) fn duplicates<K: std::hash::Hash + Eq>(keys: &[K]) -> Vec<bool> {
    let mut counts: std::collections::HashMap<&K, usize> =
        std::collections::HashMap::with_capacity(keys.len());
    for k in keys {
        *counts.entry(k).or_default() += 1;
    }
    keys.iter()
        .map(|k| counts.get(k).is_some_and(|&n| n > 1))
        .collect()
}

#[cfg(test)]
mod tests;
