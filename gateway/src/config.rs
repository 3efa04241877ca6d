//! The gateway's settings, validated once when the gateway is built.
//!
//! Listeners follow MSK's layout (IAM on 9098, SCRAM on 9096, mutual TLS on 9094, each
//! configurable); a plaintext listener exists only where one is configured.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use fjord_tenancy::quota::ClusterLimits;
use uuid::Uuid;

/// A family of SASL mechanisms offered on a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SaslFamily {
    /// `AWS_MSK_IAM` and `OAUTHBEARER` (the MSK IAM token): what the stock IAM plugins send.
    Iam,
    /// `SCRAM-SHA-512`.
    Scram,
    /// `PLAIN` (access key id and secret; for tools without IAM support).
    Plain,
}

impl SaslFamily {
    /// The SaslHandshake mechanism names of the family.
    pub fn mechanisms(self) -> &'static [&'static str] {
        match self {
            SaslFamily::Iam => &["AWS_MSK_IAM", "OAUTHBEARER"],
            SaslFamily::Scram => &["SCRAM-SHA-512"],
            SaslFamily::Plain => &["PLAIN"],
        }
    }
}

/// How clients of a listener authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenerAuth {
    /// SASL, with these mechanism families only.
    Sasl(Vec<SaslFamily>),
    /// A client certificate verified against the listener's `client_ca`; its subject CN is the
    /// principal (`User:<CN>`), and no SASL exchange takes place.
    Mtls,
    /// No authentication at all: every connection acts as `User:ANONYMOUS` on the listener's
    /// default cluster. For local development only.
    DangerousUnauthenticated,
}

/// TLS settings of a listener. Without `cert_chain` and `key`, a development CA and a
/// certificate signed by it are generated into [`GatewayConfig::tls_dir`] (and reused there).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file with the server certificate followed by its intermediates.
    pub cert_chain: Option<PathBuf>,
    /// PEM file with the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// PEM file with the CAs that sign client certificates: makes TLS mutual (client
    /// certificates are then required).
    pub client_ca: Option<PathBuf>,
}

/// One Kafka listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Name for logs (e.g. `iam`, `scram`, `mtls`, `plaintext`); unique.
    pub name: String,
    /// Address to bind (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Port advertised in Metadata for this listener; default: the bound port.
    pub advertised_port: Option<u16>,
    /// TLS; `None` is plaintext.
    pub tls: Option<TlsSettings>,
    /// How clients authenticate.
    pub auth: ListenerAuth,
    /// The cluster of connections that name none (no TLS SNI, no signed host): the dev cluster.
    /// `None` leaves it to the authenticator's default.
    pub default_cluster: Option<Uuid>,
}

impl ListenerConfig {
    /// MSK's IAM listener: TLS (dev certificate unless files are set), AWS_MSK_IAM and
    /// OAUTHBEARER. MSK's port is 9098.
    pub fn iam(addr: SocketAddr) -> Self {
        Self::new(
            "iam",
            addr,
            Some(TlsSettings::default()),
            ListenerAuth::Sasl(vec![SaslFamily::Iam]),
        )
    }

    /// MSK's SCRAM listener: TLS and SCRAM-SHA-512. MSK's port is 9096.
    pub fn scram(addr: SocketAddr) -> Self {
        Self::new(
            "scram",
            addr,
            Some(TlsSettings::default()),
            ListenerAuth::Sasl(vec![SaslFamily::Scram]),
        )
    }

    /// MSK's mutual-TLS listener, trusting client certificates signed by `client_ca`. MSK's port
    /// is 9094.
    pub fn mtls(addr: SocketAddr, client_ca: PathBuf) -> Self {
        let tls = TlsSettings {
            client_ca: Some(client_ca),
            ..TlsSettings::default()
        };
        Self::new("mtls", addr, Some(tls), ListenerAuth::Mtls)
    }

    /// A plaintext listener with SASL `families` (dev; e.g. IAM and PLAIN on 9092).
    pub fn plaintext(addr: SocketAddr, families: Vec<SaslFamily>) -> Self {
        Self::new("plaintext", addr, None, ListenerAuth::Sasl(families))
    }

    fn new(name: &str, addr: SocketAddr, tls: Option<TlsSettings>, auth: ListenerAuth) -> Self {
        Self {
            name: name.to_owned(),
            addr,
            advertised_port: None,
            tls,
            auth,
            default_cluster: None,
        }
    }

    /// Whether the SASL mechanism `name` may be used on this listener.
    pub fn allows_mechanism(&self, name: &str) -> bool {
        match &self.auth {
            ListenerAuth::Sasl(families) => families.iter().any(|f| f.mechanisms().contains(&name)),
            ListenerAuth::Mtls | ListenerAuth::DangerousUnauthenticated => false,
        }
    }

    /// The SASL mechanisms offered, in handshake order.
    pub fn mechanisms(&self) -> Vec<&'static str> {
        match &self.auth {
            ListenerAuth::Sasl(families) => families
                .iter()
                .flat_map(|f| f.mechanisms())
                .copied()
                .collect(),
            ListenerAuth::Mtls | ListenerAuth::DangerousUnauthenticated => Vec::new(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |why: String| Err(ConfigError(format!("listener {:?}: {why}", self.name)));
        if self.name.is_empty() {
            return Err(ConfigError("a listener has an empty name".into()));
        }
        if self.advertised_port == Some(0) {
            return bad("advertised_port must not be 0".into());
        }
        match &self.auth {
            ListenerAuth::Sasl(f) if f.is_empty() => return bad("no SASL mechanism".into()),
            ListenerAuth::Mtls
                if self
                    .tls
                    .as_ref()
                    .and_then(|t| t.client_ca.as_ref())
                    .is_none() =>
            {
                return bad("mutual TLS needs tls.client_ca".into())
            }
            _ => {}
        }
        if let Some(tls) = &self.tls {
            if tls.cert_chain.is_some() != tls.key.is_some() {
                return bad("set both cert_chain and key, or neither (dev certificate)".into());
            }
        }
        Ok(())
    }
}

/// Settings of one gateway process. Build with [`GatewayConfig::new`] and adjust fields; every
/// field documents its default and its trade-off.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The Kafka broker id this gateway presents itself as. Every partition's leader, every
    /// group coordinator and the controller are this id, because the gateway forwards them all.
    /// Default 1.
    pub broker_id: i32,
    /// Host name that Metadata and FindCoordinator responses advertise. Clients connect to it
    /// after bootstrapping, so it must be reachable by them (and, for the Java MSK IAM plugin,
    /// contain the region).
    pub advertised_host: String,
    /// Port advertised with `advertised_host`.
    pub advertised_port: u16,
    /// Largest request frame accepted from an authenticated connection. Default 100 MiB (the
    /// Kafka broker's `socket.request.max.bytes`). Larger frames close the connection. Higher
    /// values admit bigger produce requests at the cost of memory per connection.
    pub max_frame_bytes: usize,
    /// Largest frame accepted before authentication. Default 64 KiB: enough for any SASL
    /// payload, and small because `kafka-protocol` pre-allocates arrays from counts on the wire.
    pub max_unauthenticated_frame_bytes: usize,
    /// Simultaneous client connections; further connections wait in the accept queue.
    /// Default 10,000.
    pub max_connections: usize,
    /// Delay before a failed authentication is answered and the connection closed. Default
    /// 500 ms: librdkafka retries a failed login ~20 times a second, and the delay makes each
    /// retry cheap for the gateway. Shorter is friendlier to humans, longer to the CPU.
    pub auth_failure_delay: Duration,
    /// A connection that has not authenticated this long after it was accepted is closed
    /// (it may hold a slot of its cluster's connection limit from its TLS handshake on).
    /// Default 30 s.
    pub authentication_timeout: Duration,
    /// A connection idle (no request) this long is closed. Default 10 minutes (the Kafka
    /// broker's `connections.max.idle.ms`).
    pub idle_timeout: Duration,
    /// Longest time a response may take to be written (a client that stops reading is
    /// disconnected after it). Default 30 s; it also bounds how long shutdown can be held up by
    /// such a client.
    pub write_timeout: Duration,
    /// A storage node whose last heartbeat is older than this is not chosen as a group
    /// coordinator (unless no node is fresher). Default 30 s.
    pub node_liveness: Duration,
    /// How long the list of storage nodes (for group coordinators) is cached. Default 5 s;
    /// shorter reacts faster to node changes, at one metadata read per period.
    pub node_list_ttl: Duration,
    /// Producer ids fetched from metadata at a time. Default 1000; larger means fewer metadata
    /// writes and more ids lost when the gateway restarts (ids are plentiful).
    pub producer_id_block: i64,
    /// Listeners started by [`crate::Gateway::serve_listeners`]. Default none ([`crate::Gateway::serve`]
    /// serves one plaintext listener given by the caller).
    pub listeners: Vec<ListenerConfig>,
    /// DNS domain of the per-cluster bootstrap names, `<cluster-uuid>.kafka.<region>.<domain>`
    /// (see [`crate::transport::names`]). With it, TLS clients pick their cluster by SNI and
    /// Metadata on TLS listeners advertises the cluster's name, or the name a client dialled
    /// ([`crate::Gateway::advertised_endpoint`]). Default none: every listener advertises
    /// `advertised_host`.
    pub cluster_domain: Option<String>,
    /// Where the development CA and certificate are written when a TLS listener has no files.
    /// Default none (such a listener then fails to start).
    pub tls_dir: Option<PathBuf>,
    /// Longest TLS handshake. Default 10 s; a client that stalls longer is dropped.
    pub tls_handshake_timeout: Duration,
    /// Limits of clusters without stored overrides. Default MSK Serverless's
    /// ([`ClusterLimits::default`]); Fjord deployments may raise them (e.g. per-partition
    /// throughput, which MSK keeps at 5/10 MB/s).
    pub default_limits: ClusterLimits,
    /// How long a cluster's limits (stored overrides) are used before being read again.
    /// Default 30 s.
    pub limits_refresh: Duration,
    /// Length of a usage-metering period: counters are written as a usage record at the end of
    /// each. Default 1 h (billing granularity); shorter costs one metadata write per served
    /// cluster per period.
    pub metering_period: Duration,
    /// Source name of this gateway's usage records (records of several sources add up).
    /// Default `gateway-<broker_id>`; make it unique per gateway process.
    pub gateway_id: String,
    /// How often this gateway renews its registration in metadata and re-counts the live
    /// gateways: each live gateway enforces 1/N of every cluster-wide rate limit and of the
    /// connection cap, N = gateways whose registration was renewed within three of these
    /// periods ([`crate::quota::membership`]). Default 1 s; shorter adapts faster to gateways
    /// starting and stopping, at one metadata write and one read per period per gateway.
    pub membership_heartbeat: Duration,
    /// Whether this gateway records cluster-hours and partition-hours for the clusters it
    /// served. Default false: with several gateways they would be counted once per gateway;
    /// set it on exactly one (the single-process `fjord dev`).
    pub meter_cluster_hours: bool,
}

impl GatewayConfig {
    /// A configuration with defaults, advertising `advertised_host:advertised_port`.
    pub fn new(advertised_host: impl Into<String>, advertised_port: u16) -> Self {
        Self {
            broker_id: 1,
            advertised_host: advertised_host.into(),
            advertised_port,
            max_frame_bytes: 100 * 1024 * 1024,
            max_unauthenticated_frame_bytes: 64 * 1024,
            max_connections: 10_000,
            auth_failure_delay: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(600),
            write_timeout: Duration::from_secs(30),
            node_liveness: Duration::from_secs(30),
            node_list_ttl: Duration::from_secs(5),
            producer_id_block: 1000,
            listeners: Vec::new(),
            cluster_domain: None,
            tls_dir: None,
            tls_handshake_timeout: Duration::from_secs(10),
            authentication_timeout: Duration::from_secs(30),
            default_limits: ClusterLimits::default(),
            limits_refresh: Duration::from_secs(30),
            metering_period: Duration::from_secs(3600),
            gateway_id: "gateway-1".into(),
            membership_heartbeat: Duration::from_secs(1),
            meter_cluster_hours: false,
        }
    }

    /// Checks the settings; the gateway refuses to start with invalid ones.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.advertised_host.is_empty() {
            return Err(ConfigError("advertised_host must not be empty".into()));
        }
        if self.advertised_port == 0 {
            return Err(ConfigError("advertised_port must not be 0".into()));
        }
        if self.broker_id < 0 {
            return Err(ConfigError(format!(
                "broker_id must be >= 0, got {}",
                self.broker_id
            )));
        }
        // The size prefix is an i32, so no larger frame can exist.
        if self.max_frame_bytes < 1024 || self.max_frame_bytes > i32::MAX as usize {
            return Err(ConfigError(format!(
                "max_frame_bytes must be between 1 KiB and 2 GiB, got {}",
                self.max_frame_bytes
            )));
        }
        if self.max_unauthenticated_frame_bytes < 1024
            || self.max_unauthenticated_frame_bytes > self.max_frame_bytes
        {
            return Err(ConfigError(format!(
                "max_unauthenticated_frame_bytes must be between 1 KiB and max_frame_bytes, got {}",
                self.max_unauthenticated_frame_bytes
            )));
        }
        if self.max_connections == 0 {
            return Err(ConfigError("max_connections must be at least 1".into()));
        }
        if self.producer_id_block < 1 {
            return Err(ConfigError("producer_id_block must be at least 1".into()));
        }
        let mut names = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        for l in &self.listeners {
            l.validate()?;
            if !names.insert(l.name.as_str()) {
                return Err(ConfigError(format!("two listeners are named {:?}", l.name)));
            }
            if l.addr.port() != 0 && !addrs.insert(l.addr) {
                return Err(ConfigError(format!("two listeners bind {}", l.addr)));
            }
        }
        if let Some(domain) = &self.cluster_domain {
            if crate::transport::names::normalize_domain(domain).is_none() {
                return Err(ConfigError(format!(
                    "cluster_domain {domain:?} is not a DNS name"
                )));
            }
        }
        self.default_limits
            .validate()
            .map_err(|e| ConfigError(format!("default_limits: {e}")))?;
        for (name, d) in [
            ("tls_handshake_timeout", self.tls_handshake_timeout),
            ("authentication_timeout", self.authentication_timeout),
            ("limits_refresh", self.limits_refresh),
            ("metering_period", self.metering_period),
            ("membership_heartbeat", self.membership_heartbeat),
        ] {
            if d.is_zero() {
                return Err(ConfigError(format!("{name} must be positive")));
            }
        }
        if self.gateway_id.is_empty() {
            return Err(ConfigError("gateway_id must not be empty".into()));
        }
        Ok(())
    }
}

/// An invalid gateway setting; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid gateway config: {0}")]
pub struct ConfigError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        let cfg = GatewayConfig::new("localhost", 9092);
        assert_eq!(cfg.validate(), Ok(()));
        let mut bad = cfg.clone();
        bad.max_unauthenticated_frame_bytes = bad.max_frame_bytes + 1;
        let err = bad
            .validate()
            .expect_err("inverted frame limits are refused");
        assert!(err.0.contains("max_unauthenticated_frame_bytes"), "{err}");
        let mut bad = cfg.clone();
        bad.advertised_port = 0;
        assert!(bad.validate().is_err());

        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let mut ok = cfg.clone();
        ok.listeners = vec![
            ListenerConfig::iam(addr(9098)),
            ListenerConfig::scram(addr(9096)),
            ListenerConfig::mtls(addr(9094), "ca.pem".into()),
        ];
        ok.cluster_domain = Some("fjord.example".into());
        assert_eq!(ok.validate(), Ok(()));
        let mut dup = ok.clone();
        dup.listeners[1].addr = addr(9098);
        assert!(dup.validate().unwrap_err().0.contains("bind"));
        let mut no_ca = ok.clone();
        no_ca.listeners[2].tls = Some(TlsSettings::default());
        assert!(no_ca.validate().unwrap_err().0.contains("client_ca"));
        let mut half = ok.clone();
        half.listeners[0].tls = Some(TlsSettings {
            cert_chain: Some("c.pem".into()),
            ..TlsSettings::default()
        });
        assert!(half.validate().unwrap_err().0.contains("both"));
        let mut domain = ok;
        domain.cluster_domain = Some("bad domain".into());
        assert!(domain.validate().unwrap_err().0.contains("cluster_domain"));
    }

    #[test]
    fn listeners_offer_their_mechanisms_only() {
        let l = ListenerConfig::iam(SocketAddr::from(([127, 0, 0, 1], 9098)));
        assert_eq!(l.mechanisms(), ["AWS_MSK_IAM", "OAUTHBEARER"]);
        assert!(l.allows_mechanism("OAUTHBEARER"));
        assert!(!l.allows_mechanism("PLAIN"));
        let m = ListenerConfig::mtls(SocketAddr::from(([127, 0, 0, 1], 9094)), "ca.pem".into());
        assert!(m.mechanisms().is_empty() && !m.allows_mechanism("AWS_MSK_IAM"));
    }
}
