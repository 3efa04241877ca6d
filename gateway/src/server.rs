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
use crate::topics::TopicService;

/// One gateway: configuration, the services it uses, and its caches. Shared by all
/// connections (`Arc<Gateway>`).
pub struct Gateway {
    pub(crate) config: GatewayConfig,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) topics: Arc<TopicService>,
    pub(crate) nodes: Arc<dyn NodeDirectory>,
    pub(crate) coordinators: CoordinatorPicker,
    pub(crate) producer_ids: ProducerIdPool,
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
        Ok(Self {
            coordinators: CoordinatorPicker::new(
                store.clone(),
                ms(config.node_list_ttl),
                ms(config.node_liveness),
            ),
            producer_ids: ProducerIdPool::new(store, config.producer_id_block),
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

    /// Accepts Kafka connections on `listener` until `shutdown` completes, then stops accepting,
    /// lets every connection finish the request it is handling, and returns. Fails only if
    /// accepting keeps failing for over a minute. Runs the topic cache's background refresher
    /// ([`TopicService::spawn_refresher`]) meanwhile.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        // Keeps cached topics fresh off the request path while serving; stopped on return.
        let _refresher = self.topics.spawn_refresher();
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        let (stop_tx, stop_rx) = watch::channel(false);
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
        info!("kafka listener stopped");
        result
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
