//! Calls from a gateway to a storage node in the same process (`fjord dev`), without QUIC.
//!
//! A single-process Fjord would otherwise encrypt, packetize and copy every batch twice over
//! loopback to talk to itself: at full speed that hop was a third of the process's CPU (AES-GCM
//! of QUIC's TLS, UDP copies, stream reassembly). [`WithLocalNode`] hands the co-located node
//! out directly and every other node through the usual directory.
//!
//! Each call runs as its own task, as it would in the node's RPC server: a gateway that drops
//! a request (its client went away) must not cancel the node half-way through an append.

use std::sync::Arc;

use async_trait::async_trait;

use crate::api::*;

/// A [`NodeApi`] in this process, each call spawned so that the caller's cancellation stops
/// only its wait for the answer.
pub struct LocalNode {
    node: Arc<dyn NodeApi>,
}

impl LocalNode {
    /// Wraps the node.
    pub fn new(node: Arc<dyn NodeApi>) -> Self {
        Self { node }
    }
}

/// Runs `call` on its own task and waits for it; a panicking call becomes `Internal`.
async fn detached<T, F>(call: F) -> Result<T, NodeError>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, NodeError>> + Send + 'static,
{
    match tokio::spawn(call).await {
        Ok(r) => r,
        Err(e) => Err(NodeError::Internal(format!("node call failed: {e}"))),
    }
}

#[async_trait]
impl NodeApi for LocalNode {
    async fn produce(&self, req: ProduceRequest) -> Result<ProduceResponse, NodeError> {
        let node = self.node.clone();
        detached(async move { node.produce(req).await }).await
    }

    async fn produce_ordered(
        &self,
        req: ProduceRequest,
        sequenced: tokio::sync::oneshot::Sender<()>,
    ) -> Result<ProduceResponse, NodeError> {
        let node = self.node.clone();
        detached(async move { node.produce_ordered(req, sequenced).await }).await
    }

    async fn fetch(&self, req: FetchRequest) -> Result<FetchResponse, NodeError> {
        let node = self.node.clone();
        detached(async move { node.fetch(req).await }).await
    }

    async fn list_offsets(
        &self,
        req: ListOffsetsRequest,
    ) -> Result<ListOffsetsResponse, NodeError> {
        let node = self.node.clone();
        detached(async move { node.list_offsets(req).await }).await
    }

    async fn delete_records(
        &self,
        req: DeleteRecordsRequest,
    ) -> Result<DeleteRecordsResponse, NodeError> {
        let node = self.node.clone();
        detached(async move { node.delete_records(req).await }).await
    }

    async fn group(&self, req: GroupRequest) -> Result<GroupResponse, NodeError> {
        let node = self.node.clone();
        detached(async move { node.group(req).await }).await
    }
}

/// A [`NodeDirectory`] that answers one node id with a node in this process and every other
/// id from `others`.
pub struct WithLocalNode<D> {
    local_id: String,
    local: Arc<LocalNode>,
    others: D,
}

impl<D: NodeDirectory> WithLocalNode<D> {
    /// Routes `local_id` to `node`, everything else to `others`.
    pub fn new(local_id: impl Into<String>, node: Arc<dyn NodeApi>, others: D) -> Self {
        Self {
            local_id: local_id.into(),
            local: Arc::new(LocalNode::new(node)),
            others,
        }
    }
}

#[async_trait]
impl<D: NodeDirectory> NodeDirectory for WithLocalNode<D> {
    async fn node(&self, node_id: &str) -> Result<Arc<dyn NodeApi>, NodeError> {
        if node_id == self.local_id {
            Ok(self.local.clone())
        } else {
            self.others.node(node_id).await
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::{Notify, Semaphore};

    use super::*;

    /// Counts produces; each waits for a permit of `gate` after saying it started.
    struct Gated {
        started: Notify,
        gate: Semaphore,
        done: AtomicUsize,
    }

    impl Default for Gated {
        fn default() -> Self {
            Self {
                started: Notify::new(),
                gate: Semaphore::new(0),
                done: AtomicUsize::new(0),
            }
        }
    }

    fn empty<T>() -> Result<T, NodeError> {
        Err(NodeError::InvalidRequest("not used".into()))
    }

    #[async_trait]
    impl NodeApi for Gated {
        async fn produce(&self, _: ProduceRequest) -> Result<ProduceResponse, NodeError> {
            self.started.notify_one();
            self.gate.acquire().await.unwrap().forget();
            self.done.fetch_add(1, Ordering::SeqCst);
            Ok(ProduceResponse { partitions: vec![] })
        }
        async fn fetch(&self, _: FetchRequest) -> Result<FetchResponse, NodeError> {
            empty()
        }
        async fn list_offsets(
            &self,
            _: ListOffsetsRequest,
        ) -> Result<ListOffsetsResponse, NodeError> {
            empty()
        }
        async fn delete_records(
            &self,
            _: DeleteRecordsRequest,
        ) -> Result<DeleteRecordsResponse, NodeError> {
            empty()
        }
        async fn group(&self, _: GroupRequest) -> Result<GroupResponse, NodeError> {
            empty()
        }
    }

    /// Knows no node.
    struct Nowhere;

    #[async_trait]
    impl NodeDirectory for Nowhere {
        async fn node(&self, node_id: &str) -> Result<Arc<dyn NodeApi>, NodeError> {
            Err(NodeError::Unreachable(format!("no node {node_id}")))
        }
    }

    fn produce_req() -> ProduceRequest {
        ProduceRequest {
            cluster_id: uuid::Uuid::nil(),
            partitions: vec![],
        }
    }

    #[tokio::test]
    async fn a_dropped_call_still_finishes_on_the_node() {
        let node = Arc::new(Gated::default());
        let local = LocalNode::new(node.clone());
        {
            let call = local.produce(produce_req());
            tokio::pin!(call);
            tokio::select! {
                _ = &mut call => panic!("answered before the gate opened"),
                () = node.started.notified() => {}
            }
            // The caller gives up here.
        }
        node.gate.add_permits(1);
        // The detached append completes; a second call proves the node is not stuck.
        node.gate.add_permits(1);
        local.produce(produce_req()).await.unwrap();
        let finished = async {
            while node.done.load(Ordering::SeqCst) < 2 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), finished)
            .await
            .expect("the dropped append finished");
    }

    #[tokio::test]
    async fn the_local_id_is_served_in_process_and_others_by_the_directory() {
        let node = Arc::new(Gated::default());
        node.gate.add_permits(1);
        let dir = WithLocalNode::new("node-1", node.clone(), Nowhere);
        dir.node("node-1")
            .await
            .unwrap()
            .produce(produce_req())
            .await
            .unwrap();
        assert_eq!(node.done.load(Ordering::SeqCst), 1);
        assert!(matches!(
            dir.node("node-2").await,
            Err(NodeError::Unreachable(_))
        ));
    }
}
