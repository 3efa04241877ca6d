//! Fjord's shared state: the [`MetadataStore`] contract and its backends.
//!
//! Every part of Fjord that reads or changes state shared between processes goes through
//! [`MetadataStore`]. The trait speaks Fjord's own domain types (in [`types`]), never Kafka wire
//! types, and every ownership change is a conditional write so that a stale writer fails instead
//! of overwriting a newer one.
//!
//! Layout:
//! - [`types`]: the records kept in metadata (accounts, clusters, keys, topics, partitions,
//!   nodes, gateways, manifest entries, group offsets).
//! - [`error`]: the one error type of this layer.
//! - [`store`]: the trait itself.
//! - [`sqlite`]: the embedded backend (a file under the data dir, shareable by local processes).
//! - [`dynamodb`]: the production backend (one DynamoDB table; design in `metadata/README.md`).
//! - [`counting`]: a wrapper that counts calls per method (cost figures, hot-path checks).
//! - `validate`: the argument checks and error messages both backends share.
//! - `conformance` (cargo feature `conformance`): the test suite every backend must pass.

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod counting;
pub mod dynamodb;
pub mod error;
pub mod sqlite;
pub mod store;
pub mod types;
mod validate;

pub use dynamodb::{DynamoRequestCounts, DynamoStore};
pub use error::MetadataError;
pub use sqlite::SqliteStore;
pub use store::MetadataStore;
pub use types::*;
