//! The Fjord storage node.
//!
//! A node owns partitions under epoch-fenced ownership recorded in metadata, appends produced
//! record batches to one write-ahead log, acks after the fsync that covers them, keeps recent
//! batches in a tail cache for reads, uploads WAL data to object storage, and hosts consumer-group
//! coordinators. Gateways reach it over QUIC.
//!
//! Layout:
//! - [`api`]: the requests and responses gateways send, and the [`NodeApi`] trait.
//! - [`rpc`]: QUIC transport: the server that serves a [`NodeApi`], and [`rpc::RemoteNode`], the
//!   client gateways use; node certificates.
//! - [`groups`]: consumer-group coordinators.
//! - [`node`]: [`StorageNode`], which ties WAL, partitions, tiering and groups together;
//!   [`config`] its settings and clock.
//! - [`partition`]: per-partition state, batch validation and offset assignment, idempotent
//!   producers, the tail cache, record-level lookups; `produce`, `fetch` and `list_offsets`
//!   (private) are the data path on top.
//! - [`tiering`]: upload to object storage (object format; create-only single PUTs, multipart
//!   above a size), manifest commit, WAL trim, retention, garbage collection of orphaned
//!   objects.
//! - [`counting_objects`]: an object-store wrapper counting requests (cost figures).
//! - [`metering`]: storage byte-hours per cluster, written as usage records.
//! - [`wal`]: the write-ahead log.

pub mod api;
pub mod config;
pub mod counting_objects;
pub mod durable_local;
mod fetch;
pub mod groups;
mod list_offsets;
pub mod local;
pub mod metering;
pub mod node;
pub mod partition;
mod produce;
pub mod rpc;
pub mod tiering;
pub mod wal;

#[cfg(test)]
mod tests;

pub use api::*;
pub use config::{Clock, ConfigError, NodeConfig, SystemClock};
pub use node::{StorageError, StorageNode};
pub use tiering::gc::{GcError, GcReport};
