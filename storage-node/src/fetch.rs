//! Reads: Fetch (tail cache, else object storage through the cached manifest, with event-driven
//! long-poll) and ListOffsets.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fjord_metadata::ManifestEntry;
use object_store::path::Path as ObjectPath;
use tokio::time::Instant;
use tracing::warn;

use crate::api::*;
use crate::node::StorageNode;
use crate::partition::batch;
use crate::partition::codes::{KAFKA_STORAGE_ERROR, NOT_LEADER_OR_FOLLOWER, OFFSET_OUT_OF_RANGE};
use crate::partition::Partition;

/// Concatenates batches; a single batch travels without a copy.
fn join(parts: Vec<Bytes>) -> Bytes {
    match parts.len() {
        0 => Bytes::new(),
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => {
            let mut b = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
            for p in parts {
                b.extend_from_slice(&p);
            }
            b.freeze()
        }
    }
}

fn failed(code: i16) -> FetchPartitionResult {
    FetchPartitionResult {
        error_code: code,
        high_watermark: -1,
        log_start_offset: -1,
        records: Bytes::new(),
    }
}

impl StorageNode {
    #[tracing::instrument(skip_all, fields(partitions = req.partitions.len(), max_wait_ms = req.max_wait_ms))]
    pub(crate) async fn handle_fetch(&self, req: FetchRequest) -> Result<FetchResponse, NodeError> {
        let deadline = Instant::now() + Duration::from_millis(u64::from(req.max_wait_ms));
        let mut stopped = self.stopped.subscribe();
        loop {
            // Subscribe before reading so data published in between still wakes us.
            let mut watchers = Vec::new();
            for fp in &req.partitions {
                if let Ok(p) = self.partition((fp.topic_id, fp.partition)).await {
                    let mut rx = p.hw.subscribe();
                    rx.mark_unchanged();
                    watchers.push(rx);
                }
            }
            let resp = self.fetch_once(&req).await;
            let bytes: usize = resp.partitions.iter().map(|p| p.records.len()).sum();
            let any_error = resp.partitions.iter().any(|p| p.error_code != NO_ERROR);
            if bytes >= req.min_bytes as usize
                || any_error
                || watchers.is_empty()
                || Instant::now() >= deadline
            {
                return Ok(resp);
            }
            let changed =
                futures::future::select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = stopped.wait_for(|s| *s) => return Ok(resp),
            }
        }
    }

    async fn fetch_once(&self, req: &FetchRequest) -> FetchResponse {
        let mut budget = req.max_bytes as usize;
        let mut out = Vec::with_capacity(req.partitions.len());
        let mut any_data = false;
        for fp in &req.partitions {
            let r = match self.partition((fp.topic_id, fp.partition)).await {
                Ok(p) => {
                    // The response budget still lets the first data through whole.
                    let limit = if any_data {
                        budget.min(fp.max_bytes as usize)
                    } else {
                        fp.max_bytes as usize
                    };
                    self.fetch_partition(&p, fp.fetch_offset, limit, !any_data || budget > 0)
                        .await
                }
                Err((code, _)) => failed(code),
            };
            budget = budget.saturating_sub(r.records.len());
            any_data |= !r.records.is_empty();
            out.push(r);
        }
        FetchResponse { partitions: out }
    }

    #[tracing::instrument(skip(self, p), fields(topic_id = %p.key.0, partition = p.key.1))]
    async fn fetch_partition(
        &self,
        p: &Partition,
        offset: i64,
        max_bytes: usize,
        want_data: bool,
    ) -> FetchPartitionResult {
        let (log_start, hw, fenced) = {
            let st = p.state.lock();
            (st.log_start, st.high_watermark, st.fenced)
        };
        if fenced {
            return failed(NOT_LEADER_OR_FOLLOWER);
        }
        let mut res = FetchPartitionResult {
            error_code: NO_ERROR,
            high_watermark: hw,
            log_start_offset: log_start,
            records: Bytes::new(),
        };
        if offset < log_start || offset > hw {
            res.error_code = OFFSET_OUT_OF_RANGE;
            return res;
        }
        if offset == hw || !want_data {
            return res;
        }
        if let Some(parts) = self.cache.lock().read(&p.key, offset, max_bytes) {
            res.records = join(parts);
            return res;
        }
        // The manifest is read after the cache: batches leave the cache only once their range
        // is in the manifest, so a cache miss means the manifest has them.
        let entries = {
            let st = p.state.lock();
            let i = st.manifest.partition_point(|e| e.end_offset <= offset);
            // Only the entries a read of max_bytes can reach are copied out of the lock.
            let mut take = Vec::new();
            let mut size = 0u64;
            for e in &st.manifest[i..] {
                if size >= max_bytes as u64 && !take.is_empty() {
                    break;
                }
                size += e.length;
                take.push(e.clone());
            }
            take
        };
        match self.read_tiered(&entries, offset, max_bytes).await {
            Ok(parts) => res.records = join(parts),
            Err(e) => {
                warn!("tiered read failed: {e}");
                res.error_code = KAFKA_STORAGE_ERROR;
            }
        }
        res
    }

    /// Reads the ranges of `entries` (contiguous, starting with the one holding `offset`) and
    /// returns whole batches from the one containing `offset`, within `max_bytes` (at least one).
    async fn read_tiered(
        &self,
        entries: &[ManifestEntry],
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, String> {
        let mut out = Vec::new();
        let mut size = 0usize;
        for e in entries {
            if e.base_offset > offset && out.is_empty() {
                return Err(format!("offset {offset} is in no tiered range"));
            }
            let data = self.read_range(e).await?;
            let scanned =
                batch::scan(&data).map_err(|err| format!("object {}: {err}", e.object_key))?;
            for (h, range) in scanned {
                if h.last_offset() < offset {
                    continue;
                }
                if !out.is_empty() && size + range.len() > max_bytes {
                    return Ok(out);
                }
                size += range.len();
                out.push(data.slice(range));
            }
            if size >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// One manifest entry's bytes from object storage, through the read cache (concurrent
    /// readers of the same range share one GET).
    pub(crate) async fn read_range(&self, e: &ManifestEntry) -> Result<Bytes, String> {
        let path = ObjectPath::from(e.object_key.as_str());
        let range = e.position..e.position + e.length;
        self.read_cache
            .try_get_with(
                (e.object_key.clone(), e.position),
                self.objects.get_range(&path, range),
            )
            .await
            .map_err(|err| format!("reading {}: {err}", e.object_key))
    }

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
        match ts {
            -2 => r.offset = log_start,
            -1 => r.offset = hw,
            -3 => {
                // Batch granularity: the last offset of the batch with the largest max timestamp
                // (the record holding it, when timestamps grow within the batch).
                let mut best: Option<(i64, i64)> = None;
                for e in manifest.iter().filter(|e| e.end_offset > log_start) {
                    if best.is_none_or(|(t, _)| e.max_timestamp_ms >= t) {
                        best = Some((e.max_timestamp_ms, e.end_offset - 1));
                    }
                }
                for (_, b) in self
                    .cache
                    .lock()
                    .batches(&p.key, tiered_end.max(log_start), i64::MAX)
                {
                    if best.is_none_or(|(t, _)| b.max_timestamp >= t) {
                        best = Some((b.max_timestamp, b.last_offset));
                    }
                }
                if let Some((t, o)) = best {
                    r.timestamp = t;
                    r.offset = o;
                }
            }
            ts => match self
                .offset_for_time(p, ts, log_start, tiered_end, &manifest)
                .await
            {
                Ok(Some((o, t))) => {
                    r.offset = o.max(log_start);
                    r.timestamp = t;
                }
                Ok(None) => {}
                Err(e) => {
                    warn!("ListOffsets by time failed: {e}");
                    r.error_code = KAFKA_STORAGE_ERROR;
                }
            },
        }
        r
    }

    /// The first batch whose max timestamp is at or after `ts`: (its base offset, its max
    /// timestamp). Batch granularity, as records inside a batch are not parsed.
    async fn offset_for_time(
        &self,
        p: &Partition,
        ts: i64,
        log_start: i64,
        tiered_end: i64,
        manifest: &[ManifestEntry],
    ) -> Result<Option<(i64, i64)>, String> {
        if let Some(e) = manifest
            .iter()
            .find(|e| e.end_offset > log_start && e.max_timestamp_ms >= ts)
        {
            let cached = self
                .cache
                .lock()
                .batches(&p.key, e.base_offset, e.end_offset);
            if cached.first().is_some_and(|(b, _)| *b == e.base_offset) {
                if let Some((b, c)) = cached.iter().find(|(_, c)| c.max_timestamp >= ts) {
                    return Ok(Some((*b, c.max_timestamp)));
                }
            }
            let data = self.read_range(e).await?;
            let scanned = batch::scan(&data).map_err(|err| err.to_string())?;
            for (h, _) in scanned {
                if h.max_timestamp >= ts && h.last_offset() >= log_start {
                    return Ok(Some((h.base_offset, h.max_timestamp)));
                }
            }
            return Ok(Some((e.base_offset, e.max_timestamp_ms)));
        }
        let cached = self
            .cache
            .lock()
            .batches(&p.key, tiered_end.max(log_start), i64::MAX);
        Ok(cached
            .into_iter()
            .find(|(_, c)| c.max_timestamp >= ts)
            .map(|(b, c)| (b, c.max_timestamp)))
    }
}
