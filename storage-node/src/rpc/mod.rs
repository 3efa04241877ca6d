//! QUIC transport between gateways and storage nodes.
//!
//! Every request travels on its own bidirectional QUIC stream of one connection per
//! (gateway, node) pair, so requests are pipelined and a slow long-poll never blocks a produce.
//! TLS 1.3 protects the link; a node presents a self-signed certificate created at its first
//! start and registered in metadata, and gateways pin exactly that certificate.
//!
//! - [`codec`]: the byte layout of requests and responses on a stream.
//! - [`identity`]: the node's certificate and key, created once and kept in the data dir.
//! - [`server`]: serves a [`crate::NodeApi`] over QUIC.
//! - [`client`]: [`RemoteNode`], a [`crate::NodeApi`] that calls a node over QUIC, and
//!   [`QuicNodeDirectory`], which finds nodes through metadata.

pub mod client;
pub mod codec;
pub mod identity;
pub mod server;
mod tls;

pub use client::{QuicNodeDirectory, RemoteNode};
pub use identity::NodeIdentity;
pub use server::RpcServer;

/// ALPN protocol id of Fjord's node RPC; bumped on incompatible changes.
pub const ALPN: &[u8] = b"fjord-node/1";

/// TLS server name nodes present (the certificate is pinned, so the name is only a label).
pub const SERVER_NAME: &str = "fjord-node";

/// Largest request or response accepted on one stream. Produce requests are bounded by the
/// gateway's frame limit (100 MiB by default); this leaves room for the envelope.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024 * 1024;
