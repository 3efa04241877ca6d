//! Fjord tenancy: who a client is, and what it may do.
//!
//! Fjord is the identity provider for its tenants: it issues access keys and verifies the SigV4
//! signatures that the stock AWS MSK IAM client plugins make with them.
//!
//! Layout:
//! - [`auth`]: SASL authentication: `AWS_MSK_IAM` JSON payloads, `OAUTHBEARER` MSK IAM tokens,
//!   and `PLAIN` (access key id / secret), verified against keys from the metadata store.
//! - [`sigv4`]: the SigV4 query-presign verification shared by both IAM mechanisms.
//! - `payload` (private): parsing of the three SASL payloads into their signed parameters.
//! - [`secrets`]: sealing of access-key secrets at rest, and the redacting [`SecretString`].
//! - [`bootstrap`]: the dev tenant (account, `dev` cluster, access key, credentials file).
//! - [`signer`]: the client side (MSK IAM tokens and payloads made with `aws-sigv4`), for
//!   Fjord's own tests and load generator.

pub mod auth;
pub mod bootstrap;
mod payload;
pub mod secrets;
pub mod signer;
pub mod sigv4;

#[cfg(test)]
mod tests;

pub use auth::{AuthConfig, AuthError, Authenticator, Identity, Mechanism};
pub use bootstrap::{ensure_dev_tenant, BootstrapError, DevTenant};
pub use secrets::{SealError, SecretSealer, SecretString};
