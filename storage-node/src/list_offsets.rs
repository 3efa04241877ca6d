//! ListOffsets: log start, high watermark, and by timestamp at record granularity.
//!
//! A time lookup narrows to candidate batches by their max timestamps (manifest entries, then
//! batch headers, both cheap), then reads the one candidate batch's records to answer with the
//! exact record, as Kafka does: the earliest offset whose record timestamp is at or after the
//! target, or for MAX_TIMESTAMP (-3) the earliest record holding the largest timestamp.

use std::sync::Arc;

use bytes::Bytes;
use fjord_metadata::ManifestEntry;
use tracing::warn;

use crate::api::*;
use crate::node::StorageNode;
use crate::partition::batch::{self, BatchError};
use crate::partition::codes::{KAFKA_STORAGE_ERROR, NOT_LEADER_OR_FOLLOWER};
use crate::partition::records::{self, RecordError, Seek};
use crate::partition::Partition;

/// ListOffsets timestamp asking for the log start offset.
const EARLIEST: i64 = -2;
/// ListOffsets timestamp asking for the high watermark.
const LATEST: i64 = -1;
/// ListOffsets timestamp asking for the record with the largest timestamp (KIP-734).
const MAX_TIMESTAMP: i64 = -3;

/// Why a time lookup could not read the partition's data.
#[derive(Debug, thiserror::Error)]
enum LookupError {
    /// Object storage could not be read.
    #[error("{0}")]
    Read(String),
    /// A tiered range does not split into batches.
    #[error("tiered range starting at offset {base_offset}: {source}")]
    Range {
        /// The manifest entry's base offset.
        base_offset: i64,
        /// The parse failure.
        source: BatchError,
    },
    /// A batch's records could not be read.
    #[error(transparent)]
    Records(#[from] RecordError),
    /// The blocking record walk did not complete.
    #[error("record walk task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The batch a MAX_TIMESTAMP lookup narrows to first.
enum Candidate<'a> {
    Tiered(&'a ManifestEntry),
    Cached(Bytes),
}

impl StorageNode {
    #[tracing::instrument(skip_all, fields(partitions = req.partitions.len()))]
    pub(crate) async fn handle_list_offsets(
        &self,
        req: ListOffsetsRequest,
    ) -> Result<ListOffsetsResponse, NodeError> {
        let mut out = Vec::with_capacity(req.partitions.len());
        for lp in &req.partitions {
            let r = match self.partition((lp.topic_id, lp.partition)).await {
                Ok(p) => self.list_offset(&p, lp.timestamp).await,
                Err((code, _)) => ListOffsetsPartitionResult {
                    error_code: code,
                    offset: -1,
                    timestamp: -1,
                    leader_epoch: -1,
                },
            };
            out.push(r);
        }
        Ok(ListOffsetsResponse { partitions: out })
    }

    #[tracing::instrument(skip(self, p), fields(topic_id = %p.key.0, partition = p.key.1))]
    async fn list_offset(&self, p: &Arc<Partition>, ts: i64) -> ListOffsetsPartitionResult {
        let (epoch, log_start, hw, fenced, tiered_end, manifest) = {
            let st = p.state.lock();
            (
                st.epoch,
                st.log_start,
                st.high_watermark,
                st.fenced,
                st.tiered_end,
                st.manifest.clone(),
            )
        };
        let mut r = ListOffsetsPartitionResult {
            error_code: NO_ERROR,
            offset: -1,
            timestamp: -1,
            leader_epoch: epoch,
        };
        if fenced {
            r.error_code = NOT_LEADER_OR_FOLLOWER;
            return r;
        }
        let found = match ts {
            EARLIEST => {
                r.offset = log_start;
                return r;
            }
            LATEST => {
                r.offset = hw;
                return r;
            }
            MAX_TIMESTAMP => {
                self.max_timestamp_record(p, log_start, tiered_end, &manifest)
                    .await
            }
            ts => {
                self.offset_for_time(p, ts, log_start, tiered_end, &manifest)
                    .await
            }
        };
        match found {
            Ok(Some((o, t))) => {
                r.offset = o;
                r.timestamp = t;
            }
            Ok(None) => {}
            Err(e) => {
                warn!(timestamp = ts, "ListOffsets by time failed: {e}");
                r.error_code = KAFKA_STORAGE_ERROR;
            }
        }
        r
    }

    /// The earliest record at or after `log_start` whose timestamp is at or after `ts`:
    /// (offset, timestamp). Batches are visited in offset order; a batch whose max timestamp is
    /// below `ts` is passed over on its header alone.
    async fn offset_for_time(
        &self,
        p: &Partition,
        ts: i64,
        log_start: i64,
        tiered_end: i64,
        manifest: &[ManifestEntry],
    ) -> Result<Option<(i64, i64)>, LookupError> {
        let seek = Seek::AtOrAfter(ts);
        for e in manifest
            .iter()
            .filter(|e| e.end_offset > log_start && e.max_timestamp_ms >= ts)
        {
            for b in self.entry_batches(p, e).await? {
                if let Some(hit) = find(b, log_start, seek).await? {
                    return Ok(Some(hit));
                }
            }
        }
        let cached = self.cache.lock().batches(&p.key, tiered_end, i64::MAX);
        for (_, c) in cached {
            if c.last_offset >= log_start && c.max_timestamp >= ts {
                if let Some(hit) = find(c.bytes, log_start, seek).await? {
                    return Ok(Some(hit));
                }
            }
        }
        Ok(None)
    }

    /// The earliest record holding the largest timestamp: (offset, timestamp). Narrows by max
    /// timestamps to one manifest entry or cached batch, then to one batch, the earliest on ties
    /// as in Kafka; only that batch's records are read. A batch straddling `log_start` is judged
    /// by its header, so if its largest timestamp sits below `log_start` the answer is the
    /// largest among its remaining records.
    async fn max_timestamp_record(
        &self,
        p: &Partition,
        log_start: i64,
        tiered_end: i64,
        manifest: &[ManifestEntry],
    ) -> Result<Option<(i64, i64)>, LookupError> {
        let mut best: Option<(i64, Candidate<'_>)> = None;
        for e in manifest.iter().filter(|e| e.end_offset > log_start) {
            if best.as_ref().is_none_or(|(t, _)| e.max_timestamp_ms > *t) {
                best = Some((e.max_timestamp_ms, Candidate::Tiered(e)));
            }
        }
        let cached = self.cache.lock().batches(&p.key, tiered_end, i64::MAX);
        for (_, c) in cached {
            if c.last_offset >= log_start && best.as_ref().is_none_or(|(t, _)| c.max_timestamp > *t)
            {
                best = Some((c.max_timestamp, Candidate::Cached(c.bytes)));
            }
        }
        let batches = match best {
            None => return Ok(None),
            Some((_, Candidate::Tiered(e))) => self.entry_batches(p, e).await?,
            Some((_, Candidate::Cached(b))) => vec![b],
        };
        let mut top: Option<(i64, Bytes)> = None;
        for b in batches {
            let h = batch::parse_header(&b).map_err(|e| RecordError::Corrupt {
                base_offset: -1,
                reason: e.to_string(),
            })?;
            if h.last_offset() >= log_start
                && top.as_ref().is_none_or(|(t, _)| h.max_timestamp > *t)
            {
                top = Some((h.max_timestamp, b));
            }
        }
        match top {
            Some((_, b)) => find(b, log_start, Seek::Max).await,
            None => Ok(None),
        }
    }

    /// The batches of one manifest entry, in offset order: from the tail cache when it still
    /// holds the whole range, else from object storage.
    async fn entry_batches(
        &self,
        p: &Partition,
        e: &ManifestEntry,
    ) -> Result<Vec<Bytes>, LookupError> {
        let cached = self
            .cache
            .lock()
            .batches(&p.key, e.base_offset, e.end_offset);
        let whole = cached.first().is_some_and(|(b, _)| *b == e.base_offset)
            && cached
                .last()
                .is_some_and(|(_, c)| c.last_offset + 1 == e.end_offset);
        if whole {
            return Ok(cached.into_iter().map(|(_, c)| c.bytes).collect());
        }
        let data = self.read_range(e).await.map_err(LookupError::Read)?;
        let scanned = batch::scan(&data).map_err(|source| LookupError::Range {
            base_offset: e.base_offset,
            source,
        })?;
        Ok(scanned.into_iter().map(|(_, r)| data.slice(r)).collect())
    }
}

/// [`records::find`] on one batch; a batch that needs decompressing is walked on the blocking
/// pool, as that is CPU work that must not stall the runtime.
async fn find(b: Bytes, from_offset: i64, seek: Seek) -> Result<Option<(i64, i64)>, LookupError> {
    let costly =
        batch::parse_header(&b).is_ok_and(|h| records::needs_decompression(&h, from_offset, seek));
    if !costly {
        return Ok(records::find(&b, from_offset, seek)?);
    }
    Ok(tokio::task::spawn_blocking(move || records::find(&b, from_offset, seek)).await??)
}
