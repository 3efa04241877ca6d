//! `produce_ordered`: the node signals that a produce's order is fixed (offsets assigned, the
//! WAL append queued) before the append is durable, so a gateway may start the next produce to
//! the same partition while this one's `fdatasync` runs, and the two share the log's order.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::*;
use crate::wal::{IoHook, IoOp};

/// Once armed, holds the next `fdatasync` of a WAL segment until released.
#[derive(Default)]
struct HeldSync {
    armed: AtomicBool,
    entered: Mutex<Option<oneshot::Sender<()>>>,
    release: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl IoHook for HeldSync {
    fn before(&self, op: IoOp, path: &Path) -> std::io::Result<()> {
        let segment = path.extension().is_some_and(|x| x == "wal");
        if op == IoOp::SyncData && segment && self.armed.swap(false, Ordering::SeqCst) {
            if let Some(entered) = self.entered.lock().take() {
                let _ = entered.send(());
            }
            // Only the WAL writer thread gets here; holding it is the point.
            if let Some(release) = self.release.lock().take() {
                let _ = release.recv();
            }
        }
        Ok(())
    }
}

fn request(h: &Harness, records: Bytes) -> ProduceRequest {
    ProduceRequest {
        cluster_id: Uuid::nil(),
        partitions: vec![ProducePartition {
            topic_id: h.topic,
            partition: 0,
            limits: LIMITS,
            records,
        }],
    }
}

/// Fails the test instead of hanging if a signal never comes.
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen"))
}

#[tokio::test]
async fn order_is_signalled_before_the_append_is_durable() {
    let h = Harness::new(1, &[]).await;
    let hook = Arc::new(HeldSync::default());
    let (entered_tx, entered) = oneshot::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    *hook.entered.lock() = Some(entered_tx);
    *hook.release.lock() = Some(release_rx);
    let node = StorageNode::open_with_wal_hook(
        h.config(),
        h.store.clone(),
        h.objects.clone(),
        h.clock.clone(),
        Some(hook.clone()),
    )
    .await
    .unwrap();
    hook.armed.store(true, Ordering::SeqCst);

    let (first_ordered, first_signal) = oneshot::channel();
    let first = tokio::spawn({
        let (node, req) = (node.clone(), request(&h, batch(&["a", "b", "c"], 10, None)));
        async move { node.produce_ordered(req, first_ordered).await }
    });
    within("the first append's fdatasync", entered)
        .await
        .expect("the hook reports the held fdatasync");
    // The fdatasync is held: nothing is durable, yet the order is fixed. (The node signals by
    // dropping the sender, so the receiver's error is the signal.)
    let _ = within("the first order signal", first_signal).await;
    assert!(
        !first.is_finished(),
        "answered before its append was durable"
    );

    // The next produce to the partition starts now and is ordered after the first.
    let (second_ordered, second_signal) = oneshot::channel();
    let second = tokio::spawn({
        let (node, req) = (node.clone(), request(&h, batch(&["d", "e"], 20, None)));
        async move { node.produce_ordered(req, second_ordered).await }
    });
    let _ = within("the second order signal", second_signal).await;
    assert!(!first.is_finished() && !second.is_finished());

    release.send(()).unwrap();
    let first = within("the first answer", first).await.unwrap().unwrap();
    let second = within("the second answer", second).await.unwrap().unwrap();
    assert_eq!(
        (
            first.partitions[0].error_code,
            first.partitions[0].base_offset
        ),
        (0, 0)
    );
    assert_eq!(
        (
            second.partitions[0].error_code,
            second.partitions[0].base_offset
        ),
        (0, 3)
    );
    let f = h.fetch(&node, 0, 0, 0, 0).await;
    assert_eq!(f.high_watermark, 5);
    node.shutdown().await;
}
