//! The storage node's configuration and its clock.
//!
//! Upload sizing, in short: the WAL is fsynced before a produce is acknowledged, so nothing forces
//! frequent uploads; each upload is one PUT-class request (plus one manifest commit), so larger,
//! rarer objects cost less per gigabyte. What they cost instead is WAL disk and memory on the node,
//! and a longer window in which acknowledged data exists only on this node's disk (a lost disk
//! before the upload loses it; a crash only delays it). Readers are unaffected either way:
//! tailing consumers read the tail cache, and consumers catching up read byte ranges of each
//! partition out of objects, whatever the object size.

use std::path::PathBuf;
use std::time::Duration;

use crate::wal::WalConfig;

/// S3's smallest allowed size of a multipart part other than the last.
pub const MIN_PART_BYTES: u64 = 5 << 20;
/// S3's largest allowed part size.
pub const MAX_PART_BYTES: u64 = 5 << 30;

/// Settings of a [`crate::StorageNode`]. Checked by [`NodeConfig::validate`] when the node opens.
pub struct NodeConfig {
    /// Node id, stable across restarts (owner records in metadata name it; object keys start
    /// with `nodes/<node_id>/`).
    pub node_id: String,
    /// Directory of the write-ahead log.
    pub wal_dir: PathBuf,
    /// WAL tuning.
    pub wal: WalConfig,
    /// Upload to object storage once this many bytes wait (default 16 MiB). Objects are cut at
    /// about this size under steady load, so it sets the request cost: 16 MiB objects are about
    /// 64 PUTs (and 64 manifest commits) per GiB ingested, against 128 at 8 MiB. Larger values
    /// hold more WAL disk and memory ([`NodeConfig::max_pending_bytes`] is 4× this) and widen
    /// the window in which data lives only on this node's disk.
    pub upload_bytes: u64,
    /// Upload at least this often when anything waits (default 10 s): bounds how long data lives
    /// only in the WAL when traffic is light. Below `upload_bytes / upload_interval` (1.6 MiB/s
    /// at the defaults) objects are cut by time and come out smaller, so PUTs per GiB grow as
    /// the rate falls, while PUTs per second stay at most one per interval. At 2 s, 5 MB/s made
    /// ~6 MB objects (159 PUTs/GB); at 10 s the size limit cuts first.
    pub upload_interval: Duration,
    /// Objects at least this large are uploaded as S3 multipart uploads (default 32 MiB);
    /// smaller ones with one conditional PUT. A multipart upload costs two requests more than
    /// its parts (create and complete), so the threshold sits above the usual object size
    /// (`upload_bytes` plus what arrives during one upload): multipart is used when uploads fell
    /// behind and objects grew, which is when parallel parts pay off.
    pub multipart_threshold_bytes: u64,
    /// Size of each multipart part but the last (default 8 MiB; S3 requires 5 MiB to 5 GiB).
    pub multipart_part_bytes: u64,
    /// Parts of one multipart upload in flight at once (default 4): bounds memory held by the
    /// HTTP client and the share of bandwidth one upload takes.
    pub multipart_concurrency: usize,
    /// Memory for recent batches served to tail readers (default 256 MiB). Keep it well above
    /// `max_pending_bytes` so data that waits for upload is served from memory.
    pub tail_cache_bytes: u64,
    /// How often retention runs (default 5 min).
    pub retention_interval: Duration,
    /// Length of a storage-metering period: one usage record per cluster and period holds the
    /// storage byte-hours of the partitions this node owns (default 1 h; see
    /// [`crate::metering`]).
    pub metering_period: Duration,
    /// Memory for ranges read back from object storage, so consumers catching up on the same
    /// data share one GET (default 64 MiB).
    pub read_cache_bytes: u64,
    /// How often garbage collection looks for orphaned objects under `nodes/<node_id>/`
    /// (default 10 min). Each run lists the prefix (one LIST request per 1,000 objects) and
    /// asks metadata about objects no loaded partition references.
    pub gc_interval: Duration,
    /// An unreferenced object is deleted only once it is this old (default 1 h), unless its key
    /// sorts before the node's last settled upload (then no commit can still come for it). The
    /// margin covers an upload whose commit is slow or retried, and a second process that
    /// wrongly runs with the same node id.
    pub gc_grace: Duration,
    /// At most this many objects are checked against metadata (and so deleted) per run
    /// (default 1,000); later runs continue where a run stopped.
    pub gc_max_objects_per_run: usize,
}

/// A setting out of range.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `field` has a value the node cannot work with.
    #[error("invalid storage node setting {field}: {reason}")]
    Invalid {
        /// The setting's field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl NodeConfig {
    /// Defaults for node `node_id` with its WAL in `wal_dir`.
    pub fn new(node_id: impl Into<String>, wal_dir: impl Into<PathBuf>) -> Self {
        Self {
            node_id: node_id.into(),
            wal_dir: wal_dir.into(),
            wal: WalConfig::default(),
            upload_bytes: 16 << 20,
            upload_interval: Duration::from_secs(10),
            multipart_threshold_bytes: 32 << 20,
            multipart_part_bytes: 8 << 20,
            multipart_concurrency: 4,
            tail_cache_bytes: 256 << 20,
            retention_interval: Duration::from_secs(300),
            metering_period: Duration::from_secs(3600),
            read_cache_bytes: 64 << 20,
            gc_interval: Duration::from_secs(600),
            gc_grace: Duration::from_secs(3600),
            gc_max_objects_per_run: 1000,
        }
    }

    /// Pending bytes above which produces wait for uploads (backpressure): 4× `upload_bytes`,
    /// room for one upload in flight and several more accumulating while it retries.
    pub fn max_pending_bytes(&self) -> u64 {
        self.upload_bytes.saturating_mul(4)
    }

    /// Checks every setting; nothing is clamped silently.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: String| Err(ConfigError::Invalid { field, reason });
        if self.node_id.is_empty() || self.node_id.contains('/') {
            return invalid(
                "node_id",
                format!("{:?} must be non-empty and contain no '/'", self.node_id),
            );
        }
        if self.upload_bytes == 0 {
            return invalid("upload_bytes", "must be at least 1".into());
        }
        if !(MIN_PART_BYTES..=MAX_PART_BYTES).contains(&self.multipart_part_bytes) {
            return invalid(
                "multipart_part_bytes",
                format!(
                    "{} is outside S3's part sizes {MIN_PART_BYTES}..={MAX_PART_BYTES}",
                    self.multipart_part_bytes
                ),
            );
        }
        if self.multipart_threshold_bytes < self.multipart_part_bytes {
            return invalid(
                "multipart_threshold_bytes",
                format!(
                    "{} is below multipart_part_bytes ({})",
                    self.multipart_threshold_bytes, self.multipart_part_bytes
                ),
            );
        }
        if self.multipart_concurrency == 0 {
            return invalid("multipart_concurrency", "must be at least 1".into());
        }
        if self.gc_max_objects_per_run == 0 {
            return invalid("gc_max_objects_per_run", "must be at least 1".into());
        }
        if self.metering_period.is_zero() {
            return invalid("metering_period", "must be positive".into());
        }
        if self.gc_interval.is_zero() {
            return invalid("gc_interval", "must be positive".into());
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_refused() {
        let ok = NodeConfig::new("n1", "/tmp/wal");
        assert!(ok.validate().is_ok());
        assert_eq!(ok.max_pending_bytes(), 64 << 20);
        assert!(ok.tail_cache_bytes >= 2 * ok.max_pending_bytes());
        let bad: [fn(&mut NodeConfig); 6] = [
            |c| c.multipart_part_bytes = MIN_PART_BYTES - 1,
            |c| c.multipart_threshold_bytes = c.multipart_part_bytes - 1,
            |c| c.multipart_concurrency = 0,
            |c| c.upload_bytes = 0,
            |c| c.node_id = "a/b".into(),
            |c| c.gc_max_objects_per_run = 0,
        ];
        for f in bad {
            let mut c = NodeConfig::new("n1", "/tmp/wal");
            f(&mut c);
            assert!(c.validate().is_err());
        }
    }
}
