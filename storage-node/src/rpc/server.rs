//! Serves a [`NodeApi`] over QUIC: one task per connection, one per request stream.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{debug, info, warn, Instrument};

use super::codec::{decode_request, encode_response, Request};
use super::{tls, NodeIdentity, MAX_MESSAGE_BYTES};
use crate::api::{NodeApi, NodeError};

/// How long shutdown waits for in-flight requests before closing connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A bound QUIC endpoint serving one node's API.
pub struct RpcServer {
    endpoint: quinn::Endpoint,
    api: Arc<dyn NodeApi>,
    in_flight: Arc<InFlight>,
}

#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl RpcServer {
    /// Binds the UDP socket and prepares TLS with the node's identity.
    pub fn bind(
        addr: SocketAddr,
        identity: &NodeIdentity,
        api: Arc<dyn NodeApi>,
    ) -> Result<Self, NodeError> {
        let config = tls::server_config(identity).map_err(NodeError::Internal)?;
        let endpoint = quinn::Endpoint::server(config, addr)
            .map_err(|e| NodeError::Internal(format!("binding node RPC on {addr}: {e}")))?;
        Ok(Self {
            endpoint,
            api,
            in_flight: Arc::default(),
        })
    }

    /// The address the endpoint is bound to (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
    /// (up to a timeout) and closes.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                incoming = self.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let api = self.api.clone();
                    let in_flight = self.in_flight.clone();
                    tokio::spawn(async move {
                        match incoming.await {
                            Ok(conn) => serve_connection(conn, api, in_flight).await,
                            Err(e) => debug!("node RPC handshake failed: {e}"),
                        }
                    });
                }
            }
        }
        self.endpoint.set_server_config(None);
        let drained = async {
            loop {
                let idle = self.in_flight.idle.notified();
                if self.in_flight.count.load(Ordering::Acquire) == 0 {
                    break;
                }
                idle.await;
            }
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
            warn!("node RPC shutdown: in-flight requests did not finish in {DRAIN_TIMEOUT:?}");
        }
        self.endpoint.close(0u32.into(), b"shutdown");
        self.endpoint.wait_idle().await;
        info!("node RPC stopped");
    }
}

async fn serve_connection(
    conn: quinn::Connection,
    api: Arc<dyn NodeApi>,
    in_flight: Arc<InFlight>,
) {
    let span = tracing::info_span!("node_rpc_conn", peer = %conn.remote_address());
    async move {
        debug!("gateway connected");
        loop {
            let (send, recv) = match conn.accept_bi().await {
                Ok(streams) => streams,
                Err(e) => {
                    debug!("connection ended: {e}");
                    return;
                }
            };
            in_flight.count.fetch_add(1, Ordering::AcqRel);
            let guard = InFlightGuard(in_flight.clone());
            let api = api.clone();
            tokio::spawn(
                async move {
                    let _guard = guard;
                    if let Err(e) = serve_stream(send, recv, api.as_ref()).await {
                        debug!("request stream failed: {e}");
                    }
                }
                .in_current_span(),
            );
        }
    }
    .instrument(span)
    .await
}

async fn serve_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    api: &dyn NodeApi,
) -> Result<(), String> {
    let bytes = recv
        .read_to_end(MAX_MESSAGE_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    let response = match decode_request(&bytes) {
        Err(e) => encode_response::<()>(&Err(e)),
        Ok(Request::Produce(r)) => encode_response(&api.produce(r).await),
        Ok(Request::Fetch(r)) => encode_response(&api.fetch(r).await),
        Ok(Request::ListOffsets(r)) => encode_response(&api.list_offsets(r).await),
        Ok(Request::DeleteRecords(r)) => encode_response(&api.delete_records(r).await),
        Ok(Request::Group(r)) => encode_response(&api.group(r).await),
    };
    send.write_all(&response).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    // Wait until the peer has the whole response before dropping the stream.
    let _ = send.stopped().await;
    Ok(())
}
