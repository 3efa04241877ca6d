//! Fjord tenancy: who a client is, and what it may do.
//!
//! Fjord is the identity provider for its tenants: it issues access keys and verifies the SigV4
//! signatures that the stock AWS MSK IAM client plugins make with them.
//!
//! Layout:
//! - [`auth`]: SASL authentication: `AWS_MSK_IAM` JSON payloads, `OAUTHBEARER` MSK IAM tokens,
//!   and `PLAIN` (access key id / secret), verified against keys from the metadata store.
//! - [`calendar`]: day-number arithmetic for the fixed date formats AWS uses.
//! - [`sigv4`]: the SigV4 query-presign verification shared by both IAM mechanisms.
//! - `payload` (private): parsing of the three SASL payloads into their signed parameters.
//! - [`secrets`]: sealing of access-key secrets at rest, and the redacting [`SecretString`].
//! - [`session`]: session tokens of temporary credentials (sealed key id + expiry).
//! - [`bootstrap`]: the dev tenant (account, `dev` cluster, access key, credentials file).
//! - [`signer`]: the client side (MSK IAM tokens and payloads made with `aws-sigv4`), for
//!   Fjord's own tests and load generator.
//! - [`policy`]: IAM-style authorization as MSK does it (ARNs, policy documents, evaluation, the
//!   Kafka API → action table).
//! - [`scram`]: the server side of SASL SCRAM-SHA-512 and its stored credentials.
//! - [`acl`]: Kafka ACLs with Kafka's authorizer semantics, for SCRAM and mTLS principals.
//! - [`quota`]: per-cluster limits (MSK Serverless defaults), token-bucket throttling, counts.
//! - [`metering`]: usage counters per cluster, drained into billing-period records.
//!
//! `policy`, `scram`, `acl`, `quota` and `metering` are pure logic: no I/O, no metadata access
//! and no clock; callers pass in stored data and `now_ms`.

pub mod acl;
pub mod auth;
pub mod bootstrap;
pub mod calendar;
pub mod metering;
mod payload;
pub mod policy;
pub mod quota;
pub mod scram;
pub mod secrets;
pub mod session;
pub mod signer;
pub mod sigv4;

#[cfg(test)]
mod tests;

pub use acl::{AclBinding, AclBindingFilter, AclError};
pub use auth::{AuthConfig, AuthError, Authenticator, Identity, Mechanism};
pub use bootstrap::{ensure_dev_tenant, BootstrapError, DevTenant};
pub use metering::{UsageMeter, UsageRecord};
pub use payload::msk_iam_signed_host;
pub use policy::{Action, ClusterRef, Decision, Denied, PolicyDocument, PolicyError, PolicySet};
pub use quota::{ClusterLimits, ClusterQuotas, CountLimit, LimitExceeded, RateLimiter};
pub use scram::{ScramCredential, ScramError, ScramServer};
pub use secrets::{SealError, SecretSealer, SecretString};
