//! Listeners and what the transport says about a connection: TLS, SNI, client certificates.
//!
//! - [`names`]: the per-cluster host names (`<cluster-uuid>.kafka.<region>.<cluster-domain>`)
//!   that TLS clients send as SNI and that Metadata advertises on TLS listeners.
//! - [`tls`]: rustls server configurations (files, mutual TLS, a development CA).
//! - [`cert`]: the subject CN of a verified client certificate.
//! - [`PeerIdentity`]: what the transport established about one connection, kept on the
//!   connection for authentication and authorization.
//!
//! Which cluster a connection talks to: the cluster named by its TLS SNI, else the one named
//! by the signed `host` of an AWS_MSK_IAM payload ([`Gateway::cluster_from_host`]), else its
//! listener's default cluster.
//!
//! Mutual TLS principals: a client certificate verified against the listener's `client_ca`
//! authenticates the connection as `User:<subject CN>` in the account that owns the
//! connection's cluster (Kafka ACLs name it `User:<CN>`). Certificates without exactly one CN
//! are refused at the handshake.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use uuid::Uuid;

use crate::config::{ListenerAuth, ListenerConfig};
use crate::server::Gateway;

pub mod cert;
pub mod names;
pub mod tls;

/// A listener as it runs: its settings, the port it advertises, and its TLS acceptor.
pub struct ListenerInfo {
    /// The settings.
    pub config: ListenerConfig,
    /// The port Metadata advertises for it.
    pub advertised_port: u16,
    acceptor: Option<TlsAcceptor>,
}

impl std::fmt::Debug for ListenerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerInfo")
            .field("name", &self.config.name)
            .field("advertised_port", &self.advertised_port)
            .field("tls", &self.acceptor.is_some())
            .finish()
    }
}

impl ListenerInfo {
    /// A running listener with `config`, advertising `advertised_port` (the configured one, or
    /// the bound port), using `tls` for TLS listeners.
    pub fn new(
        config: ListenerConfig,
        bound_port: u16,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        Self {
            advertised_port: config.advertised_port.unwrap_or(bound_port),
            acceptor: tls.map(TlsAcceptor::from),
            config,
        }
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.acceptor.is_some()
    }
}

/// What the transport established about a connection, before any Kafka byte.
#[derive(Clone, Debug, Default)]
pub struct PeerIdentity {
    /// The listener it came through; `None` for a connection handed over by
    /// [`Gateway::serve`] (plaintext, all mechanisms, the authenticator's default cluster).
    pub listener: Option<Arc<ListenerInfo>>,
    /// The server name the client sent in its TLS ClientHello.
    pub tls_sni: Option<String>,
    /// The cluster `tls_sni` names in the [`names`] scheme.
    pub sni_cluster: Option<Uuid>,
    /// The subject CN of the verified client certificate (mutual TLS).
    pub client_cert_cn: Option<String>,
}

impl PeerIdentity {
    /// The principal of a mutual-TLS connection: `User:<CN>`.
    pub fn principal(&self) -> Option<String> {
        self.client_cert_cn.as_ref().map(|cn| format!("User:{cn}"))
    }

    /// The cluster the transport names: SNI first, then the listener's default.
    pub fn cluster_hint(&self) -> Option<Uuid> {
        self.sni_cluster.or_else(|| {
            self.listener
                .as_ref()
                .and_then(|l| l.config.default_cluster)
        })
    }

    /// Whether SASL mechanism `name` may be used here (every mechanism on a connection from
    /// [`Gateway::serve`]).
    pub fn allows_mechanism(&self, name: &str) -> bool {
        self.listener
            .as_ref()
            .is_none_or(|l| l.config.allows_mechanism(name))
    }

    /// The mechanisms offered here, or `None` when not restricted by a listener.
    pub fn mechanisms(&self) -> Option<Vec<&'static str>> {
        self.listener.as_ref().map(|l| l.config.mechanisms())
    }

    /// Whether the connection is authenticated by the transport alone (mutual TLS, or a
    /// dangerous unauthenticated listener), with no SASL exchange.
    pub fn transport_authenticated(&self) -> bool {
        self.listener.as_ref().is_some_and(|l| {
            matches!(
                l.config.auth,
                ListenerAuth::Mtls | ListenerAuth::DangerousUnauthenticated
            )
        })
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        self.listener.as_ref().is_some_and(|l| l.is_tls())
    }
}

/// A client stream: plain TCP or TLS over it.
pub enum ClientStream {
    /// Plaintext.
    Plain(TcpStream),
    /// TLS.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Why a connection ended before its first Kafka request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The TLS handshake failed (bad client certificate, protocol error, reset).
    #[error("tls handshake: {0}")]
    Handshake(std::io::Error),
    /// The TLS handshake took longer than the configured timeout.
    #[error("tls handshake timed out")]
    HandshakeTimeout,
    /// A mutual-TLS client certificate without exactly one usable subject CN.
    #[error("client certificate has no single usable subject CN")]
    NoCommonName,
}

impl Gateway {
    /// The cluster a host name designates in the per-cluster naming scheme (`None` without a
    /// configured `cluster_domain` or for any other name). For the signed `host` of an
    /// AWS_MSK_IAM payload as for TLS SNI; the caller still checks that the cluster exists
    /// and that the credential may use it.
    pub fn cluster_from_host(&self, host: &str) -> Option<Uuid> {
        let domain = self.cluster_domain.as_deref()?;
        names::parse_cluster_host(host, domain).map(|h| h.cluster)
    }

    /// The bootstrap name of `cluster` in `region`, if a `cluster_domain` is configured.
    pub fn cluster_host_name(&self, cluster: Uuid, region: &str) -> Option<String> {
        let domain = self.cluster_domain.as_deref()?;
        Some(names::cluster_host_name(cluster, region, domain))
    }

    /// The broker host and port that Metadata, DescribeCluster and FindCoordinator advertise
    /// to a connection of `cluster` through `peer`. The port is the listener's. The host, on
    /// TLS listeners with a cluster domain:
    /// - the name the client dialled (its SNI), when that is the cluster's own name or a name
    ///   outside the cluster scheme (`localhost`, a load balancer's name, an alias): the client
    ///   evidently resolves and reaches it, and a reconnection by that name meets the same
    ///   SNI, listener and credentials, so it lands on the same cluster;
    /// - the cluster's own name when the client sent no SNI (it dialled an IP address), so
    ///   that reconnections carry SNI.
    ///
    /// On plaintext listeners: the listener's address for its default cluster, the cluster's
    /// name (with a cluster domain) for any other cluster a login reached by its signed host.
    ///
    /// Advertising the cluster's name to a client that dialled another name strands clients
    /// that cannot resolve it: librdkafka ≥ 2.10 drops its bootstrap connection as soon as the
    /// first Metadata names the brokers (failing requests still in flight on it) and then only
    /// dials the advertised name. Elsewhere: `advertised_host`.
    pub fn advertised_endpoint(&self, cluster: Uuid, peer: &PeerIdentity) -> (String, i32) {
        let port = peer
            .listener
            .as_ref()
            .map_or(self.config.advertised_port, |l| l.advertised_port);
        let host = if peer.is_tls() {
            match (&peer.tls_sni, peer.sni_cluster) {
                // A name of another cluster never reaches here (the connection's cluster is
                // the one its SNI names); answer with this cluster's name if it ever does.
                (Some(_), Some(c)) if c != cluster => {
                    self.cluster_host_name(cluster, &self.auth.config().region)
                }
                (Some(sni), _) if self.cluster_domain.is_some() => Some(sni.to_ascii_lowercase()),
                _ => self.cluster_host_name(cluster, &self.auth.config().region),
            }
        } else if peer.cluster_hint() != Some(cluster) {
            // A plaintext login that reached a cluster other than the listener's default (by
            // the host its AWS_MSK_IAM payload was signed for): the client's next connections
            // must sign for that cluster's name again, so advertise it rather than the
            // listener's address, where they would land on the default cluster.
            self.cluster_host_name(cluster, &self.auth.config().region)
        } else {
            None
        };
        (
            host.unwrap_or_else(|| self.config.advertised_host.clone()),
            i32::from(port),
        )
    }

    /// Completes the transport of a new connection on `listener`: the TLS handshake (bounded
    /// by the handshake timeout) and what it reveals (SNI, client certificate).
    pub async fn accept_transport(
        &self,
        listener: &Arc<ListenerInfo>,
        socket: TcpStream,
        peer: SocketAddr,
    ) -> Result<(ClientStream, PeerIdentity), TransportError> {
        let mut identity = PeerIdentity {
            listener: Some(listener.clone()),
            ..PeerIdentity::default()
        };
        let Some(acceptor) = &listener.acceptor else {
            return Ok((ClientStream::Plain(socket), identity));
        };
        let tls =
            match tokio::time::timeout(self.config.tls_handshake_timeout, acceptor.accept(socket))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(TransportError::Handshake(e)),
                Err(_) => return Err(TransportError::HandshakeTimeout),
            };
        let (_, conn) = tls.get_ref();
        identity.tls_sni = conn.server_name().map(str::to_owned);
        identity.sni_cluster = identity
            .tls_sni
            .as_deref()
            .and_then(|h| self.cluster_from_host(h));
        if let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) {
            identity.client_cert_cn = cert::subject_common_name(leaf);
            if identity.client_cert_cn.is_none() {
                return Err(TransportError::NoCommonName);
            }
        }
        tracing::debug!(%peer, sni = ?identity.tls_sni, cn = ?identity.client_cert_cn, "tls established");
        Ok((ClientStream::Tls(Box::new(tls)), identity))
    }
}

#[cfg(test)]
mod rdkafka_tests;
#[cfg(test)]
pub(crate) mod tests;
