//! The gateway side of node RPC.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use fjord_metadata::MetadataStore;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tracing::debug;

use super::codec::{decode_response, encode_request, Request};
use super::{tls, MAX_MESSAGE_BYTES, SERVER_NAME};
use crate::api::*;

/// A storage node reached over QUIC. Connects lazily, and reconnects (re-reading the node's
/// address and certificate from metadata, since a restarted node may have new ones) when the
/// connection breaks.
pub struct RemoteNode {
    node_id: String,
    store: Arc<dyn MetadataStore>,
    endpoint: quinn::Endpoint,
    conn: Mutex<Option<quinn::Connection>>,
}

impl RemoteNode {
    /// A handle on node `node_id`; no I/O until the first call.
    pub fn new(node_id: String, store: Arc<dyn MetadataStore>, endpoint: quinn::Endpoint) -> Self {
        Self {
            node_id,
            store,
            endpoint,
            conn: Mutex::new(None),
        }
    }

    async fn connection(&self) -> Result<quinn::Connection, NodeError> {
        if let Some(conn) = self.conn.lock().as_ref() {
            if conn.close_reason().is_none() {
                return Ok(conn.clone());
            }
        }
        let info = self
            .store
            .get_node(&self.node_id)
            .await
            .map_err(|e| NodeError::Unreachable(format!("looking up node {}: {e}", self.node_id)))?
            .ok_or_else(|| {
                NodeError::Unreachable(format!("node {} is not registered", self.node_id))
            })?;
        let addr: SocketAddr = tokio::net::lookup_host(&info.rpc_addr)
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                NodeError::Unreachable(format!(
                    "node {} has a bad address {:?}",
                    info.id, info.rpc_addr
                ))
            })?;
        let config = tls::client_config(&info.cert_der).map_err(NodeError::Internal)?;
        let unreachable =
            |e: String| NodeError::Unreachable(format!("node {} at {addr}: {e}", info.id));
        let conn = self
            .endpoint
            .connect_with(config, addr, SERVER_NAME)
            .map_err(|e| unreachable(e.to_string()))?
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        debug!(node = %info.id, %addr, "connected to storage node");
        *self.conn.lock() = Some(conn.clone());
        Ok(conn)
    }

    async fn call<T: DeserializeOwned>(&self, req: Request) -> Result<T, NodeError> {
        let request = encode_request(&req)?;
        let mut streams = None;
        // A stream that cannot even be opened never reached the node, so one reconnect is safe
        // for every request kind, produce included.
        for _ in 0..2 {
            let conn = self.connection().await?;
            match conn.open_bi().await {
                Ok(s) => {
                    streams = Some(s);
                    break;
                }
                Err(e) => {
                    debug!(node = %self.node_id, "stream open failed, reconnecting: {e}");
                    *self.conn.lock() = None;
                }
            }
        }
        let (mut send, mut recv) = streams.ok_or_else(|| {
            NodeError::Unreachable(format!("node {}: connection lost", self.node_id))
        })?;
        let lost = |e: String| NodeError::Unreachable(format!("node {}: {e}", self.node_id));
        send.write_all(&request)
            .await
            .map_err(|e| lost(e.to_string()))?;
        send.finish().map_err(|e| lost(e.to_string()))?;
        let response = recv
            .read_to_end(MAX_MESSAGE_BYTES)
            .await
            .map_err(|e| lost(e.to_string()))?;
        decode_response(&response)
    }
}

#[async_trait]
impl NodeApi for RemoteNode {
    async fn produce(&self, req: ProduceRequest) -> Result<ProduceResponse, NodeError> {
        self.call(Request::Produce(req)).await
    }
    async fn fetch(&self, req: FetchRequest) -> Result<FetchResponse, NodeError> {
        self.call(Request::Fetch(req)).await
    }
    async fn list_offsets(
        &self,
        req: ListOffsetsRequest,
    ) -> Result<ListOffsetsResponse, NodeError> {
        self.call(Request::ListOffsets(req)).await
    }
    async fn delete_records(
        &self,
        req: DeleteRecordsRequest,
    ) -> Result<DeleteRecordsResponse, NodeError> {
        self.call(Request::DeleteRecords(req)).await
    }
    async fn group(&self, req: GroupRequest) -> Result<GroupResponse, NodeError> {
        self.call(Request::Group(req)).await
    }
}

/// Finds storage nodes through metadata and keeps one QUIC connection per node.
pub struct QuicNodeDirectory {
    store: Arc<dyn MetadataStore>,
    endpoint: quinn::Endpoint,
    nodes: Mutex<HashMap<String, Arc<RemoteNode>>>,
}

impl QuicNodeDirectory {
    /// Binds a client endpoint on an ephemeral local port.
    pub fn new(store: Arc<dyn MetadataStore>) -> Result<Self, NodeError> {
        let bind: SocketAddr = ([0, 0, 0, 0], 0).into();
        let endpoint = quinn::Endpoint::client(bind)
            .map_err(|e| NodeError::Internal(format!("binding QUIC client endpoint: {e}")))?;
        Ok(Self {
            store,
            endpoint,
            nodes: Mutex::new(HashMap::new()),
        })
    }
}

#[async_trait]
impl NodeDirectory for QuicNodeDirectory {
    async fn node(&self, node_id: &str) -> Result<Arc<dyn NodeApi>, NodeError> {
        let mut nodes = self.nodes.lock();
        let node = nodes.entry(node_id.to_string()).or_insert_with(|| {
            Arc::new(RemoteNode::new(
                node_id.to_string(),
                self.store.clone(),
                self.endpoint.clone(),
            ))
        });
        Ok(node.clone())
    }
}
