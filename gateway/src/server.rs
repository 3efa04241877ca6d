//! [`Gateway`]: the shared state of all connections, and [`Gateway::serve`], the accept loop.
//!
//! Connection hygiene follows tokio's mini-redis: a semaphore caps open connections (accept
//! waits for a free slot), accept errors back off exponentially, and on shutdown the loop stops
//! accepting, tells every connection to finish, and waits until each has answered the request
//! it was handling.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fjord_metadata::MetadataStore;
use fjord_storage_node::NodeDirectory;
use fjord_tenancy::Authenticator;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{error, info, warn};

use crate::config::{ConfigError, GatewayConfig};
use crate::coordinator::CoordinatorPicker;
use crate::producer_ids::ProducerIdPool;
use crate::quota::groups::Censuses;
use crate::quota::membership::Membership;
use crate::quota::QuotaService;
use crate::topics::TopicService;
use crate::transport::ListenerInfo;

/// One gateway: configuration, the services it uses, and its caches. Shared by all
/// connections (`Arc<Gateway>`).
pub struct Gateway {
    pub(crate) config: GatewayConfig,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) topics: Arc<TopicService>,
    pub(crate) nodes: Arc<dyn NodeDirectory>,
    pub(crate) coordinators: CoordinatorPicker,
    pub(crate) producer_ids: ProducerIdPool,
    pub(crate) store: Arc<dyn MetadataStore>,
    pub(crate) quotas: Arc<QuotaService>,
    /// This process's registration among the live gateways (its share of cluster limits).
    pub(crate) membership: Arc<Membership>,
    pub(crate) group_censuses: Censuses,
    /// `config.cluster_domain`, normalized.
    pub(crate) cluster_domain: Option<String>,
}

impl Gateway {
    /// Builds a gateway; fails if `config` is invalid.
    pub fn new(
        config: GatewayConfig,
        store: Arc<dyn MetadataStore>,
        auth: Arc<Authenticator>,
        topics: Arc<TopicService>,
        nodes: Arc<dyn NodeDirectory>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let quotas = Arc::new(QuotaService::new(
            store.clone(),
            config.default_limits.clone(),
            config.limits_refresh,
        ));
        let membership = Arc::new(Membership::new(
            store.clone(),
            config.membership_heartbeat,
            quotas.gateway_count().clone(),
        ));
        Ok(Self {
            coordinators: CoordinatorPicker::new(
                store.clone(),
                ms(config.node_list_ttl),
                ms(config.node_liveness),
            ),
            producer_ids: ProducerIdPool::new(store.clone(), config.producer_id_block),
            quotas,
            membership,
            group_censuses: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(config.limits_refresh)
                .build(),
            cluster_domain: config
                .cluster_domain
                .as_deref()
                .and_then(crate::transport::names::normalize_domain),
            store,
            config,
            auth,
            topics,
            nodes,
        })
    }

    /// The settings in effect.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The topic service (for its [`TopicService::read_counts`] at exit, for instance).
    pub fn topics(&self) -> &Arc<TopicService> {
        &self.topics
    }

    /// The quota and metering state.
    pub fn quotas(&self) -> &Arc<QuotaService> {
        &self.quotas
    }

    /// This gateway's membership among the live gateways, which sets its share of every
    /// cluster-wide limit. [`Gateway::serve`] and [`Gateway::serve_listeners`] run it (and
    /// remove the registration when they return); tests drive [`Membership::refresh`] directly.
    pub fn membership(&self) -> &Arc<Membership> {
        &self.membership
    }

    /// Accepts Kafka connections on `listener` until `shutdown` completes, then stops accepting,
    /// lets every connection finish the request it is handling, and returns. Fails only if
    /// accepting keeps failing for over a minute. Runs the topic cache's background refresher
    /// ([`TopicService::spawn_refresher`]), usage metering and this gateway's membership
    /// ([`Membership::run`]: its share of cluster limits) meanwhile.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        // Keeps cached topics fresh off the request path while serving; stopped on return.
        let _refresher = self.topics.spawn_refresher();
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        let (stop_tx, stop_rx) = watch::channel(false);
        let metering = tokio::spawn(crate::quota::metering::run(self.clone(), stop_rx.clone()));
        let membership = tokio::spawn(self.membership.clone().run(stop_rx.clone()));
        // Each connection holds a clone of `done_tx`; the channel closes once all are gone.
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, advertised = %format!("{}:{}", self.config.advertised_host, self.config.advertised_port), "kafka listener started");
        }
        tokio::pin!(shutdown);
        let result = loop {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    // The semaphore is never closed; treat it like a shutdown if it were.
                    Err(_) => break Ok(()),
                },
                () = &mut shutdown => break Ok(()),
            };
            let accepted = tokio::select! {
                r = accept(&listener) => r,
                () = &mut shutdown => break Ok(()),
            };
            let (socket, peer) = match accepted {
                Ok(a) => a,
                Err(e) => break Err(e),
            };
            if let Err(e) = socket.set_nodelay(true) {
                warn!(%peer, error = %e, "set_nodelay failed");
            }
            let gw = self.clone();
            let stop = stop_rx.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                crate::connection::run(gw, socket, peer, stop).await;
                drop(permit);
                drop(done);
            });
        };
        info!("kafka listener stopping; waiting for open connections to finish their requests");
        let _ = stop_tx.send(true);
        drop(done_tx);
        let _ = done_rx.recv().await;
        let _ = metering.await;
        let _ = membership.await;
        info!("kafka listener stopped");
        result
    }

    /// Binds every listener of [`GatewayConfig::listeners`] (preparing their TLS, with a
    /// development certificate when no files are given) and returns them, ready for
    /// [`Gateway::serve_listeners`]. Fails if a listener cannot bind or its TLS cannot be set
    /// up; the error names the listener.
    pub async fn bind_listeners(
        &self,
    ) -> Result<Vec<BoundListener>, crate::transport::tls::TlsError> {
        use crate::transport::tls::{ensure_dev_certificate, server_config, TlsError};
        let needs_dev = self
            .config
            .listeners
            .iter()
            .any(|l| l.tls.as_ref().is_some_and(|t| t.cert_chain.is_none()));
        let dev = match (&self.config.tls_dir, needs_dev) {
            (Some(dir), true) => {
                let dev = ensure_dev_certificate(dir, &self.dev_certificate_names())?;
                info!(ca = %dev.ca_path.display(), cert = %dev.cert_path.display(), "development TLS certificate in use; clients must trust this CA");
                Some(dev)
            }
            (None, true) => return Err(TlsError::NoTlsDir),
            _ => None,
        };
        let mut out = Vec::with_capacity(self.config.listeners.len());
        for l in &self.config.listeners {
            let tls = match &l.tls {
                Some(t) => Some(server_config(t, dev.as_ref())?),
                None => None,
            };
            let socket = TcpListener::bind(l.addr)
                .await
                .map_err(|source| TlsError::Io {
                    path: format!("listener {} on {}", l.name, l.addr).into(),
                    source,
                })?;
            let bound = socket.local_addr().map_err(|source| TlsError::Io {
                path: format!("listener {}", l.name).into(),
                source,
            })?;
            let info = Arc::new(ListenerInfo::new(l.clone(), bound.port(), tls));
            out.push(BoundListener {
                socket,
                info,
                addr: bound,
            });
        }
        Ok(out)
    }

    /// The names the development certificate covers: localhost, the loopback addresses, the
    /// advertised host and, with a cluster domain, every cluster name of the gateway's region.
    pub fn dev_certificate_names(&self) -> Vec<String> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if !names.contains(&self.config.advertised_host) {
            names.push(self.config.advertised_host.clone());
        }
        if let Some(domain) = &self.cluster_domain {
            names.push(format!("*.{domain}"));
            names.push(format!(
                "*.kafka.{}.{domain}",
                self.auth.config().region.to_ascii_lowercase()
            ));
        }
        names
    }

    /// Serves every bound listener until `shutdown` completes, like [`Gateway::serve`]: one
    /// global connection cap, per-cluster connection limits once a connection's cluster is
    /// known, TLS handshakes off the accept loop, usage metering, the gateway membership, and a
    /// drain on shutdown.
    pub async fn serve_listeners(
        self: Arc<Self>,
        listeners: Vec<BoundListener>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let _refresher = self.topics.spawn_refresher();
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        let (stop_tx, stop_rx) = watch::channel(false);
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let metering = tokio::spawn(crate::quota::metering::run(self.clone(), stop_rx.clone()));
        let membership = tokio::spawn(self.membership.clone().run(stop_rx.clone()));
        let mut loops = tokio::task::JoinSet::new();
        for l in listeners {
            info!(listener = %l.info.config.name, addr = %l.addr, tls = l.info.is_tls(), advertised_port = l.info.advertised_port, "kafka listener started");
            loops.spawn(accept_loop(
                self.clone(),
                l,
                limit.clone(),
                stop_rx.clone(),
                done_tx.clone(),
            ));
        }
        drop(done_tx);
        let mut result = Ok(());
        tokio::pin!(shutdown);
        tokio::select! {
            () = &mut shutdown => {}
            Some(r) = loops.join_next() => {
                // An accept loop only ends on its own when accepting keeps failing.
                if let Ok(Err(e)) = r {
                    result = Err(e);
                }
            }
        }
        info!("kafka listeners stopping; waiting for open connections to finish their requests");
        let _ = stop_tx.send(true);
        while loops.join_next().await.is_some() {}
        let _ = done_rx.recv().await;
        let _ = metering.await;
        let _ = membership.await;
        info!("kafka listeners stopped");
        result
    }
}

/// A listener bound by [`Gateway::bind_listeners`].
#[derive(Debug)]
pub struct BoundListener {
    socket: TcpListener,
    info: Arc<ListenerInfo>,
    addr: std::net::SocketAddr,
}

impl BoundListener {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The listener's settings and advertised port.
    pub fn info(&self) -> &Arc<ListenerInfo> {
        &self.info
    }
}

async fn accept_loop(
    gw: Arc<Gateway>,
    l: BoundListener,
    limit: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) -> std::io::Result<()> {
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
            _ = stop.changed() => return Ok(()),
        };
        let (socket, peer) = tokio::select! {
            r = accept(&l.socket) => r?,
            _ = stop.changed() => return Ok(()),
        };
        if let Err(e) = socket.set_nodelay(true) {
            warn!(%peer, error = %e, "set_nodelay failed");
        }
        let gw = gw.clone();
        let info = l.info.clone();
        let stop = stop.clone();
        let done = done.clone();
        tokio::spawn(async move {
            crate::connection::run_listener(gw, info, socket, peer, stop).await;
            drop(permit);
            drop(done);
        });
    }
}

/// Accepts one connection, retrying failed accepts with exponential backoff (1 s doubling to
/// 64 s), as failures like EMFILE are usually transient.
async fn accept(
    listener: &TcpListener,
) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    let mut backoff = Duration::from_secs(1);
    loop {
        match listener.accept().await {
            Ok(a) => return Ok(a),
            Err(e) => {
                if backoff > Duration::from_secs(64) {
                    error!(error = %e, "accept keeps failing; giving up");
                    return Err(e);
                }
                warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
}
