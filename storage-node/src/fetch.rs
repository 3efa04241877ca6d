//! Reads: Fetch (tail cache, else object storage through the cached manifest, with event-driven
//! long-poll). ListOffsets is in `list_offsets`.

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
        if let Some(parts) = self.cache.lock().read(&p.key, offset, hw, max_bytes) {
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
        match self.read_tiered(&entries, offset, hw, max_bytes).await {
            Ok(parts) => res.records = join(parts),
            Err(e) => {
                warn!("tiered read failed: {e}");
                res.error_code = KAFKA_STORAGE_ERROR;
            }
        }
        res
    }

    /// Reads the ranges of `entries` (contiguous, starting with the one holding `offset`) and
    /// returns whole batches from the one containing `offset`, within `max_bytes` (at least one),
    /// none starting at or after `below` (the high watermark answered).
    async fn read_tiered(
        &self,
        entries: &[ManifestEntry],
        offset: i64,
        below: i64,
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
                if h.base_offset >= below {
                    return Ok(out);
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
}
