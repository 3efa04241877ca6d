//! Tests of the WAL against real files in temporary directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod recovery;
mod reuse;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{IoHook, IoOp, Wal, WalConfig, WalPosition, WalRecord};

/// A record whose contents are derived from `i`, with `len` batch bytes.
fn rec(i: u64, len: usize) -> WalRecord {
    let batches: Vec<u8> = (0..len).map(|j| (i as usize * 31 + j) as u8).collect();
    WalRecord {
        topic_id: uuid::Uuid::from_u128(0xf00d_0000 + u128::from(i % 5)),
        partition: (i % 8) as i32,
        epoch: 1 + (i % 3) as i32,
        base_offset: i as i64 * 10,
        last_offset: i as i64 * 10 + 9,
        batches: Bytes::from(batches),
    }
}

/// Appends `records` as one ticket and waits until durable.
async fn append(wal: &Wal, records: Vec<WalRecord>) -> WalPosition {
    wal.reserve()
        .await
        .unwrap()
        .append(records)
        .durable()
        .await
        .unwrap()
}

fn small_segments(segment_bytes: u64) -> WalConfig {
    WalConfig {
        segment_bytes,
        ..WalConfig::default()
    }
}

fn seg(dir: &Path, seq: u64) -> PathBuf {
    super::segment::segment_path(dir, seq)
}

/// Flips one bit of the file at `at`.
fn flip(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

/// Failure injection: once armed, fails every `fdatasync` of a segment.
#[derive(Default)]
struct FailSync {
    armed: AtomicBool,
    failures: AtomicU64,
}

impl IoHook for FailSync {
    fn before(&self, op: IoOp, _path: &Path) -> std::io::Result<()> {
        if op == IoOp::SyncData && self.armed.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(std::io::Error::other("injected fdatasync failure"));
        }
        Ok(())
    }
}

/// Holds the writer inside its first group write until released, so tests can pile up
/// appends behind it deterministically.
struct Gate {
    entered: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    release: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl Gate {
    fn new() -> (
        Arc<Gate>,
        tokio::sync::oneshot::Receiver<()>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (entered_tx, entered_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel();
        let gate = Gate {
            entered: Mutex::new(Some(entered_tx)),
            release: Mutex::new(Some(release_rx)),
        };
        (Arc::new(gate), entered_rx, release_tx)
    }
}

impl IoHook for Gate {
    fn before(&self, op: IoOp, _path: &Path) -> std::io::Result<()> {
        if op != IoOp::Write {
            return Ok(());
        }
        if let Some(entered) = self.entered.lock().take() {
            let _ = entered.send(());
            // Only the writer thread gets here, and only once; blocking it is the point.
            if let Some(release) = self.release.lock().take() {
                let _ = release.recv();
            }
        }
        Ok(())
    }
}
