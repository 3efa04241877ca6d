//! The DynamoDB backend: one table (plus one GSI), every ownership change and manifest commit a
//! conditional transaction, every read that decides ownership strongly consistent. The table
//! design is written down in `metadata/README.md`.

mod exec;
mod fencing;
mod gateways;
mod groups;
mod keys;
mod layout;
mod principals;
mod store_impl;
mod tail;
mod tenants;
mod tiered;
mod topics;

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

use crate::error::{MetadataError, Result};
use exec::backend;

/// Static AWS credentials, for [`DynamoConfig::credentials`].
pub use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::config::SharedCredentialsProvider;

/// Name of the GSI that finds the partitions a node owns.
pub(crate) const NODE_INDEX: &str = "by-node";

/// Attempts of one request (throttling and transient failures) in the SDK's standard retry
/// mode, which backs off exponentially with full jitter.
const REQUEST_ATTEMPTS: u32 = 8;

/// Requests a [`DynamoStore`] made: DynamoDB bills reads and writes per item (and by size), so
/// items are counted beside requests. Every transaction attempt counts, cancelled ones too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DynamoRequestCounts {
    /// GetItem requests and Query pages.
    pub read_requests: u64,
    /// Items those returned.
    pub items_read: u64,
    /// PutItem, UpdateItem and TransactWriteItems requests.
    pub write_requests: u64,
    /// Items those wrote (each action of a transaction is one, condition checks included).
    pub items_written: u64,
}

/// Where and how to reach DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoConfig {
    /// Prefix of the table name: the table is `<prefix>-metadata`.
    pub table_prefix: String,
    /// AWS region (`us-east-1` when not given).
    pub region: String,
    /// Endpoint override (e.g. a local DynamoDB or moto); the regional AWS endpoint when `None`.
    pub endpoint: Option<String>,
    /// Static credentials; `None` reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN` from the environment when connecting.
    pub credentials: Option<Credentials>,
}

impl DynamoConfig {
    /// Parses `dynamodb://<table-prefix>?region=…&endpoint=…`.
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = url::Url::parse(url)
            .map_err(|e| MetadataError::InvalidArgument(format!("metadata url {url:?}: {e}")))?;
        if parsed.scheme() != "dynamodb" {
            return Err(MetadataError::InvalidArgument(format!(
                "metadata url {url:?} is not dynamodb://"
            )));
        }
        let table_prefix = parsed.host_str().unwrap_or_default().to_string();
        if table_prefix.is_empty()
            || !table_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(MetadataError::InvalidArgument(format!(
                "metadata url {url:?}: the table prefix must be non-empty [A-Za-z0-9_.-]"
            )));
        }
        let mut config = DynamoConfig {
            table_prefix,
            region: "us-east-1".to_string(),
            endpoint: None,
            credentials: None,
        };
        for (k, v) in parsed.query_pairs() {
            match k.as_ref() {
                "region" => config.region = v.into_owned(),
                "endpoint" => config.endpoint = Some(v.into_owned()),
                other => {
                    return Err(MetadataError::InvalidArgument(format!(
                        "metadata url {url:?}: unknown parameter {other:?}"
                    )))
                }
            }
        }
        Ok(config)
    }

    /// The table's full name.
    pub fn table_name(&self) -> String {
        format!("{}-metadata", self.table_prefix)
    }
}

/// The credential chain of a deployment, tried in order on first use and cached (refreshed
/// before expiry) by the SDK: the shared config/credentials files (`AWS_PROFILE`), web identity
/// (EKS), the ECS task role, and the EC2 instance profile through IMDSv2 — what terraform's
/// instances use. Failing all of them shows as an error on the first request.
fn deployment_credentials(
    region: &str,
    http: aws_smithy_runtime_api::client::http::SharedHttpClient,
) -> SharedCredentialsProvider {
    use aws_config::ecs::EcsCredentialsProvider;
    use aws_config::imds::credentials::ImdsCredentialsProvider;
    use aws_config::meta::credentials::CredentialsProviderChain;
    use aws_config::profile::ProfileFileCredentialsProvider;
    use aws_config::provider_config::ProviderConfig;
    use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;

    let pc = ProviderConfig::default()
        .with_http_client(http)
        .with_region(Some(Region::new(region.to_string())));
    SharedCredentialsProvider::new(
        CredentialsProviderChain::first_try(
            "Profile",
            ProfileFileCredentialsProvider::builder()
                .configure(&pc)
                .build(),
        )
        .or_else(
            "WebIdentityToken",
            WebIdentityTokenCredentialsProvider::builder()
                .configure(&pc)
                .build(),
        )
        .or_else(
            "EcsContainer",
            EcsCredentialsProvider::builder().configure(&pc).build(),
        )
        .or_else(
            "Ec2InstanceMetadata",
            ImdsCredentialsProvider::builder().configure(&pc).build(),
        ),
    )
}

/// Credentials from the standard environment variables, if set.
fn env_credentials() -> Option<Credentials> {
    let id = std::env::var("AWS_ACCESS_KEY_ID").ok()?;
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").ok()?;
    let token = std::env::var("AWS_SESSION_TOKEN").ok();
    Some(Credentials::new(id, secret, token, None, "environment"))
}

/// A [`crate::MetadataStore`] on one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// Per node this process commits for: its fence and the checks made under it.
    /// Shared by clones, which are the same store.
    views: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, tiered::NodeView>>>,
    /// What this store has asked of DynamoDB.
    counters: std::sync::Arc<exec::RequestCounters>,
}

impl DynamoStore {
    /// Connects as `dynamodb://<table-prefix>?region=…&endpoint=…` says, with credentials from
    /// the environment. Makes no request: a missing table shows on first use (create it with
    /// [`DynamoStore::create_tables`]).
    pub fn connect(url: &str) -> Result<Self> {
        Self::from_config(DynamoConfig::from_url(url)?)
    }

    /// Builds a client from an explicit configuration.
    pub fn from_config(config: DynamoConfig) -> Result<Self> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let credentials =
            match config.credentials.clone().or_else(env_credentials) {
                Some(c) => SharedCredentialsProvider::new(c),
                // A local endpoint (moto, DynamoDB Local) accepts any signature; AWS does not.
                None if config.endpoint.is_some() => SharedCredentialsProvider::new(
                    Credentials::new("fjord-local", "fjord-local", None, None, "local endpoint"),
                ),
                None => deployment_credentials(&config.region, http.clone()),
            };
        let mut builder = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .http_client(http)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(REQUEST_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(25)),
            );
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(DynamoStore {
            client: aws_sdk_dynamodb::Client::from_conf(builder.build()),
            table: config.table_name(),
            views: Default::default(),
            counters: Default::default(),
        })
    }

    /// The table this store uses.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// What this store has asked of DynamoDB so far (for the cost figures in BENCHMARKS.md).
    pub fn request_counts(&self) -> DynamoRequestCounts {
        self.counters.snapshot()
    }

    /// Creates the table and its index (on-demand billing) and waits until it is active. An
    /// existing table is left alone, so this is safe to run on every deploy.
    pub async fn create_tables(&self) -> Result<()> {
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| MetadataError::Backend(format!("key schema: {e}")))
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| MetadataError::Backend(format!("attribute definition: {e}")))
        };
        let index = GlobalSecondaryIndex::builder()
            .index_name(NODE_INDEX)
            .key_schema(key("gpk", KeyType::Hash)?)
            .key_schema(key("gsk", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .non_key_attributes("node")
                    .non_key_attributes("ep")
                    .non_key_attributes("lso")
                    .non_key_attributes("tid")
                    .non_key_attributes("part")
                    .build(),
            )
            .build()
            .map_err(|e| MetadataError::Backend(format!("index: {e}")))?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr("gpk")?)
            .attribute_definitions(attr("gsk")?)
            .global_secondary_indexes(index)
            .send()
            .await;
        match created {
            Ok(_) => tracing::info!(table = %self.table, "metadata table created"),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                tracing::info!(table = %self.table, "metadata table exists");
            }
            Err(e) => return Err(backend("create_table", e)),
        }
        self.wait_active().await
    }

    async fn wait_active(&self) -> Result<()> {
        for attempt in 0..120u32 {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| backend("describe_table", e))?;
            let status = out.table.and_then(|t| t.table_status);
            if status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
                return Ok(());
            }
            tracing::debug!(table = %self.table, attempt, ?status, "waiting for table");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(MetadataError::Backend(format!(
            "table {} did not become active within a minute",
            self.table
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parses() {
        let c = DynamoConfig::from_url(
            "dynamodb://fjord-prod?region=eu-west-1&endpoint=http://127.0.0.1:5000",
        )
        .expect("parse");
        assert_eq!(c.table_name(), "fjord-prod-metadata");
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        let d = DynamoConfig::from_url("dynamodb://p").expect("parse");
        assert_eq!((d.region.as_str(), d.endpoint), ("us-east-1", None));
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in [
            "s3://x",
            "dynamodb://",
            "dynamodb://a?colour=red",
            "dynamodb://a%20b",
            "not a url",
        ] {
            assert!(
                matches!(
                    DynamoConfig::from_url(url),
                    Err(MetadataError::InvalidArgument(_))
                ),
                "{url}"
            );
        }
    }
}
