//! The Fjord gateway: a stateless Kafka wire-protocol server.
//!
//! Any gateway serves any partition of any tenant: it authenticates connections (SASL with
//! SigV4-signed MSK IAM credentials), checks requests, and routes each partition to the storage
//! node that owns it over QUIC. It holds no data, only caches. To clients it is a one-broker
//! cluster: the leader of every partition and the coordinator of every group, forwarding each
//! to the storage node that really owns it.
//!
//! Layout — a socket-free core and a thin tokio shell around it:
//! - [`config`]: [`GatewayConfig`], validated once.
//! - [`server`]: [`Gateway`] (shared state) and [`Gateway::serve`] (accept loop, connection
//!   limit, graceful shutdown).
//! - [`connection`]: the per-connection shell: framing, frame limits, timeouts.
//! - [`request`]: the core, [`Gateway::handle_frame`]: one frame and a [`Session`] in, an
//!   [`Outcome`] out; checks versions and authentication before decoding bodies.
//! - [`session`]: the SASL state machine (handshake, authenticate, re-authentication, expiry).
//! - `handlers`: one module per API family (metadata, produce, fetch, offsets, groups).
//! - [`versions`]: the APIs and versions answered, and the ApiVersions response.
//! - [`coordinator`]: which storage node coordinates a group; [`producer_ids`]: producer id
//!   blocks.
//! - [`frame`]: request prefix parsing and response framing; [`error`]: the layer's errors and
//!   their one mapping to Kafka codes.
//! - [`topics`]: topic lookups (cached) and topic management (create, delete, partitions,
//!   configs) shared by the Kafka admin APIs and, later, the control plane.
//! - [`admin`]: the Kafka admin API handlers (CreateTopics, DeleteTopics, CreatePartitions,
//!   DescribeConfigs, AlterConfigs, IncrementalAlterConfigs) on top of [`topics`].
//! - [`authz`]: authorization of every request (IAM policies, Kafka ACLs) and the ACL APIs.
//! - [`transport`]: listeners, TLS (files, mutual TLS, a development CA), SNI and the
//!   per-cluster host names, and [`transport::PeerIdentity`].
//! - [`quota`]: per-cluster connection limits, throttling (`throttle_time_ms`), the
//!   consumer-group count, and usage metering.

pub mod admin;
pub mod authz;
pub mod config;
pub mod connection;
pub mod coordinator;
pub mod error;
pub mod frame;
mod handlers;
pub mod pipeline;
pub mod producer_ids;
pub mod quota;
pub mod request;
pub mod server;
pub mod session;
pub mod topics;
pub mod transport;
pub mod versions;

#[cfg(test)]
mod tests;

pub use config::{
    ConfigError, GatewayConfig, ListenerAuth, ListenerConfig, SaslFamily, TlsSettings,
};
pub use error::{ConnectionError, RequestError};
pub use request::{ConnState, Outcome};
pub use server::{BoundListener, Gateway};
pub use session::Session;
pub use transport::PeerIdentity;
