//! The storage node's configuration and its clock.

use std::path::PathBuf;
use std::time::Duration;

use crate::wal::WalConfig;

/// Settings of a [`crate::StorageNode`].
pub struct NodeConfig {
    /// Node id, stable across restarts (owner records in metadata name it).
    pub node_id: String,
    /// Directory of the write-ahead log.
    pub wal_dir: PathBuf,
    /// WAL tuning.
    pub wal: WalConfig,
    /// Upload to object storage once this many bytes wait (default 8 MiB). Larger objects mean
    /// fewer PUTs and manifest commits, but more WAL and memory held.
    pub upload_bytes: u64,
    /// Upload at least this often when anything waits (default 2 s): bounds how long data lives
    /// only in the WAL.
    pub upload_interval: Duration,
    /// Memory for recent batches served to tail readers (default 256 MiB).
    pub tail_cache_bytes: u64,
    /// How often retention runs (default 5 min).
    pub retention_interval: Duration,
    /// Memory for ranges read back from object storage, so consumers catching up on the same
    /// data share one GET (default 64 MiB).
    pub read_cache_bytes: u64,
}

impl NodeConfig {
    /// Defaults for node `node_id` with its WAL in `wal_dir`.
    pub fn new(node_id: impl Into<String>, wal_dir: impl Into<PathBuf>) -> Self {
        Self {
            node_id: node_id.into(),
            wal_dir: wal_dir.into(),
            wal: WalConfig::default(),
            upload_bytes: 8 << 20,
            upload_interval: Duration::from_secs(2),
            tail_cache_bytes: 256 << 20,
            retention_interval: Duration::from_secs(300),
            read_cache_bytes: 64 << 20,
        }
    }

    /// Pending bytes above which produces wait for uploads (backpressure).
    pub fn max_pending_bytes(&self) -> u64 {
        self.upload_bytes.saturating_mul(4).max(1)
    }
}

/// Wall-clock time, injectable so tests control it.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}
