//! Fjord's control plane: an HTTP API that AWS tools already speak, verified with SigV4.
//!
//! - MSK's REST-JSON operations for serverless clusters with botocore's shapes
//!   (CreateClusterV2, DescribeClusterV2, ListClustersV2, DeleteCluster, GetBootstrapBrokers,
//!   and the topic operations CreateTopic, ListTopics, DescribeTopic, DescribeTopicPartitions,
//!   UpdateTopic, DeleteTopic), so `aws kafka … --endpoint-url` and boto3's `kafka` client work
//!   unchanged;
//! - Fjord's own JSON API (documented in `openapi.json`, served at `GET /openapi.json`):
//!   principals and their policies and SCRAM credentials, access keys, cluster limit overrides,
//!   usage;
//! - STS `AssumeRole` (and `GetCallerIdentity`) at `POST /`, for temporary credentials.
//!
//! Every request is signed with an access key Fjord issued; the key's principal's IAM-style
//! policies authorize each operation. Topic changes take the gateway's
//! [`fjord_gateway::topics::TopicService`], the code path of Kafka's admin APIs.
//!
//! Layout:
//! - [`server`]: [`ControlPlane`] (state, router, authentication middleware, `serve`);
//!   [`config`]: [`ControlPlaneConfig`]; [`routes`]: the route table.
//! - [`sigv4`]: SigV4 header-signature verification; [`authz`]: the [`authz::Caller`] and its
//!   policy checks; [`error`]: [`ApiError`] and its mapping to AWS error shapes.
//! - Operations: [`msk`] (clusters), [`topics`], [`principals`] (with [`trust`]: role trust
//!   policies), [`keys`], [`sts`], [`usage`]
//!   (settings and usage), [`openapi`].
//! - `request` (handler context and JSON helpers), [`time`] (date formats).
//!
//! Deployment assumption: a principal can only do what its policies allow, so a tenant's first
//! principal needs a policy: `fjord dev` gives the dev tenant's `user/dev` the allow-all policy
//! `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}` with
//! [`principals::ensure_admin_principal`].

pub mod authz;
pub mod config;
pub mod error;
pub mod keys;
pub mod msk;
pub mod openapi;
pub mod principals;
mod request;
pub mod routes;
pub mod server;
pub mod sigv4;
pub mod sts;
pub mod time;
pub mod topics;
pub mod trust;
pub mod usage;

pub use config::{ConfigError, ControlPlaneConfig};
pub use error::ApiError;
pub use server::ControlPlane;
