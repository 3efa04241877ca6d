//! Per-partition state of the partitions this node owns: offsets, ownership epoch, producer
//! state, the cached manifest; plus batch parsing ([`batch`]), record-level lookups inside a stored
//! batch ([`records`]), idempotent producers ([`producer`]) and the tail cache ([`cache`]).

pub mod batch;
pub mod cache;
pub mod producer;
pub mod records;

use std::collections::HashMap;

use fjord_metadata::{ManifestEntry, ProducerSnapshot};
use parking_lot::Mutex;
use tokio::sync::watch;
use uuid::Uuid;

use producer::ProducerTable;

/// A partition's identity on this node: (topic id, partition index).
pub type PartitionKey = (Uuid, i32);

/// The Kafka error codes the data path answers with.
pub mod codes {
    /// OFFSET_OUT_OF_RANGE.
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    /// CORRUPT_MESSAGE.
    pub const CORRUPT_MESSAGE: i16 = 2;
    /// UNKNOWN_TOPIC_OR_PARTITION.
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// NOT_LEADER_OR_FOLLOWER.
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    /// MESSAGE_TOO_LARGE.
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    /// UNSUPPORTED_FOR_MESSAGE_FORMAT.
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    /// OUT_OF_ORDER_SEQUENCE_NUMBER.
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    /// INVALID_PRODUCER_EPOCH.
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    /// KAFKA_STORAGE_ERROR.
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    /// UNKNOWN_SERVER_ERROR.
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
}

/// Mutable state of one partition, behind a short synchronous lock.
#[derive(Debug)]
pub struct PartitionState {
    /// Ownership epoch (Kafka leader epoch).
    pub epoch: i32,
    /// Set when another node took the partition over: serve nothing more.
    pub fenced: bool,
    /// First readable offset.
    pub log_start: i64,
    /// Next offset to assign (appended, maybe not yet durable).
    pub next_offset: i64,
    /// One past the last durable, published offset.
    pub high_watermark: i64,
    /// Producer state including appended-but-not-yet-durable batches (for sequence checks).
    pub producers: ProducerTable,
    /// Producer state as of the end of the tiered data (committed with the manifest).
    pub tiered_producers: ProducerTable,
    /// Manifest entries, ordered by base offset (cached; this node is the only writer).
    pub manifest: Vec<ManifestEntry>,
    /// One past the last tiered offset.
    pub tiered_end: i64,
}

/// One owned partition.
#[derive(Debug)]
pub struct Partition {
    /// Identity.
    pub key: PartitionKey,
    /// State.
    pub state: Mutex<PartitionState>,
    /// High watermark, watched by long-polling fetches.
    pub hw: watch::Sender<i64>,
}

impl Partition {
    /// A partition loaded from metadata: owner epoch and log start, manifest and producer
    /// snapshots.
    pub fn new(
        key: PartitionKey,
        epoch: i32,
        log_start: i64,
        manifest: Vec<ManifestEntry>,
        snapshots: &[ProducerSnapshot],
    ) -> Self {
        let end = manifest
            .last()
            .map_or(log_start, |e| e.end_offset.max(log_start));
        let producers = ProducerTable::from_snapshots(snapshots);
        let (hw, _) = watch::channel(end);
        Self {
            key,
            state: Mutex::new(PartitionState {
                epoch,
                fenced: false,
                log_start,
                next_offset: end,
                high_watermark: end,
                tiered_producers: producers.clone(),
                producers,
                manifest,
                tiered_end: end,
            }),
            hw,
        }
    }

    /// Raises the high watermark and wakes fetches waiting on it.
    pub fn publish_hw(&self, hw: i64) {
        self.hw.send_if_modified(|cur| {
            if hw > *cur {
                *cur = hw;
                true
            } else {
                false
            }
        });
    }
}

/// Partitions loaded on this node.
pub type PartitionMap = HashMap<PartitionKey, std::sync::Arc<Partition>>;
