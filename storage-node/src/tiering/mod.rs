//! Tiering: uploads the WAL's durable data to object storage in multi-partition objects
//! ([`object`]), commits the per-partition ranges to the metadata manifest (fenced by each
//! partition's epoch) together with producer snapshots, then trims the WAL. Retention lives in
//! [`retention`].
//!
//! Objects are written create-only, as one PUT or, above a size, a multipart upload
//! ([`put`]); objects that never got committed are found and deleted later ([`gc`]).
//!
//! Failure handling: a failed upload or commit never trims; the same object (same key and
//! content: an object's bytes depend only on the records it holds) is retried with backoff while
//! new data keeps accumulating, and produces wait once
//! [`crate::config::NodeConfig::max_pending_bytes`] is reached. Once the object landed, retries
//! only repeat the commit. A `Conflict` on commit means a partition moved to another node or its
//! topic was deleted: it is fenced and its data left out of the retried commit (its bytes stay in
//! the object, unused). Only the first is worth a warning; deleting a topic is routine.

pub mod gc;
pub mod object;
pub(crate) mod put;
pub mod retention;

#[cfg(test)]
mod fence_tests;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use fjord_metadata::store::PartitionCommit;
use fjord_metadata::{ManifestEntry, MetadataError, PartitionOwner};
use tracing::{debug, info, warn};

use crate::node::StorageNode;
use crate::partition::batch;
use crate::partition::producer::ProducerTable;
use crate::partition::Partition;
use crate::produce::PendingRecord;
use crate::wal::WalPosition;

/// Why an upload round failed (it is retried).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TieringError {
    /// The object store refused the upload.
    #[error("object upload failed: {0}")]
    Upload(#[from] object_store::Error),
    /// The manifest commit failed.
    #[error("manifest commit failed: {0}")]
    Commit(#[from] MetadataError),
    /// Garbage collection is deleting the object at this key right now; the round is retried.
    #[error("object key {0} is being garbage-collected")]
    KeyBusy(String),
    /// Other writers' objects sit at this key and at every alternative tried.
    #[error("object key {0} and its alternatives are all taken by other writers")]
    KeyCollisions(String),
}

/// A set of pending records being uploaded as one object.
pub(crate) struct Upload {
    records: Vec<PendingRecord>,
    /// Trim point: everything before it is in `records` or tiered already.
    trim_to: WalPosition,
    bytes: u64,
    /// Tail-cache publish sequence of the last batch included.
    last_seq: u64,
    /// The key holding this upload's object once it landed (retries then only commit).
    landed: Option<String>,
}

/// The uploader task: runs a round when enough data waits or the interval passes.
pub(crate) async fn run_uploader(node: Weak<StorageNode>) {
    let (interval, mut stopped) = match node.upgrade() {
        Some(n) => (n.upload_interval, n.stopped.subscribe()),
        None => return,
    };
    let mut carry: Option<Upload> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(n) = node.upgrade() else { return };
        let wait = if carry.is_some() { backoff } else { interval };
        tokio::select! {
            _ = n.tier_wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        match n.tier_round(&mut carry).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                warn!(
                    retry_in_ms = backoff.as_millis() as u64,
                    "tiering round failed: {e}"
                );
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

impl StorageNode {
    /// Uploads what is pending (or retries `carry`), commits and trims.
    #[tracing::instrument(skip_all, fields(node_id = %self.node_id))]
    pub(crate) async fn tier_round(&self, carry: &mut Option<Upload>) -> Result<(), TieringError> {
        let mut up = match carry.take() {
            Some(u) => u,
            None => {
                let drained = {
                    let mut p = self.pending.lock();
                    match p.published_pos {
                        None => return Ok(()),
                        Some(trim_to) if p.records.is_empty() => {
                            // Recovered records tiered before a restart still sit in the WAL.
                            let stale = p.trimmed_to < Some(trim_to);
                            p.trimmed_to = Some(trim_to);
                            Err(stale.then_some(trim_to))
                        }
                        Some(trim_to) => {
                            let records = std::mem::take(&mut p.records);
                            let bytes = records.iter().map(|r| r.bytes.len() as u64).sum();
                            Ok(Upload {
                                records,
                                trim_to,
                                bytes,
                                last_seq: p.publish_seq,
                                landed: None,
                            })
                        }
                    }
                };
                match drained {
                    Ok(up) => up,
                    Err(Some(pos)) => {
                        if let Err(e) = self.wal.trim(pos).await {
                            warn!("WAL trim failed: {e}");
                        }
                        return Ok(());
                    }
                    Err(None) => return Ok(()),
                }
            }
        };
        match self.upload(&mut up).await {
            Ok(()) => {
                self.finish_upload(&up).await;
                Ok(())
            }
            Err(e) => {
                *carry = Some(up);
                Err(e)
            }
        }
    }

    async fn upload(&self, up: &mut Upload) -> Result<(), TieringError> {
        let base_key = format!(
            "nodes/{}/{:020}-{:020}.obj",
            self.node_id, up.trim_to.segment, up.trim_to.offset
        );
        // Group by partition, keeping WAL (= offset) order inside each.
        let mut order: Vec<Arc<Partition>> = Vec::new();
        let mut groups: HashMap<_, Vec<&PendingRecord>> = HashMap::new();
        for r in &up.records {
            let g = groups.entry(r.key()).or_default();
            if g.is_empty() {
                order.push(r.partition.clone());
            }
            g.push(r);
        }
        let mut builder = object::ObjectBuilder::new();
        let mut commits = Vec::new();
        let mut touched = Vec::new();
        for p in &order {
            let recs = &groups[&p.key];
            let (Some(first), Some(last)) = (recs.first(), recs.last()) else {
                continue;
            };
            // Fenced partitions' data stays in the object (unused), so the object's bytes are
            // a function of the records alone and a retry writes the identical object.
            let max_ts = recs.iter().map(|r| r.max_timestamp).max().unwrap_or(-1);
            let e = builder.add(
                p.key.0,
                p.key.1,
                first.base_offset,
                last.last_offset + 1,
                max_ts,
                recs.iter().map(|r| r.bytes.clone()),
            );
            let (epoch, fenced, mut producers) = {
                let st = p.state.lock();
                (st.epoch, st.fenced, st.tiered_producers.clone())
            };
            if fenced {
                continue;
            }
            for r in recs {
                apply_producers(&mut producers, &r.bytes);
            }
            commits.push(PartitionCommit {
                topic_id: p.key.0,
                partition: p.key.1,
                epoch,
                entries: vec![ManifestEntry {
                    topic_id: p.key.0,
                    partition: p.key.1,
                    base_offset: e.base_offset,
                    end_offset: e.end_offset,
                    max_timestamp_ms: e.max_timestamp_ms,
                    // Set once the object's key is known.
                    object_key: String::new(),
                    position: e.position,
                    length: e.length,
                }],
                producers: producers.snapshots(),
            });
            touched.push((p.clone(), producers));
        }
        if !commits.is_empty() {
            let key = match &up.landed {
                Some(k) => k.clone(),
                None => {
                    let (parts, _) = builder.finish();
                    let size: usize = parts.iter().map(Bytes::len).sum();
                    let key = self.put_object(&base_key, &parts).await?;
                    debug!(%key, size, partitions = commits.len(), "object stored");
                    up.landed = Some(key.clone());
                    key
                }
            };
            for e in commits.iter_mut().flat_map(|c| c.entries.iter_mut()) {
                e.object_key = key.clone();
            }
            loop {
                match self.store.commit_manifest(&self.node_id, &commits).await {
                    Ok(()) => break,
                    Err(MetadataError::Conflict(msg)) => {
                        let lost = self.find_lost(&touched).await?;
                        // No owner row left means the topic was deleted: expected, not a
                        // warning. An owner that is not us (node or epoch) is a real loss.
                        if !lost.is_empty() && lost.iter().all(|(_, owner)| owner.is_none()) {
                            info!(%key, "manifest commit conflict: {msg}");
                        } else {
                            warn!(%key, "manifest commit conflict: {msg}");
                        }
                        if lost.is_empty() {
                            return Err(MetadataError::Conflict(msg).into());
                        }
                        for (p, _) in &lost {
                            self.fence(p);
                        }
                        commits.retain(|c| {
                            !lost.iter().any(|(p, _)| p.key == (c.topic_id, c.partition))
                        });
                        touched.retain(|(p, _)| !lost.iter().any(|(l, _)| l.key == p.key));
                        if commits.is_empty() {
                            // Nothing will reference the object: an orphan for `gc`.
                            break;
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            for ((p, producers), c) in touched.into_iter().zip(&commits) {
                let mut st = p.state.lock();
                if let Some(e) = c.entries.last() {
                    st.tiered_end = e.end_offset;
                }
                st.manifest.extend(c.entries.iter().cloned());
                st.tiered_producers = producers;
            }
            self.settle_key(&key);
        }
        Ok(())
    }

    /// Partitions among `touched` whose owner or epoch in metadata is no longer ours, each with
    /// its current owner (`None`: the partition no longer exists, its topic was deleted).
    async fn find_lost(
        &self,
        touched: &[(Arc<Partition>, ProducerTable)],
    ) -> Result<Vec<(Arc<Partition>, Option<PartitionOwner>)>, MetadataError> {
        let mut lost = Vec::new();
        for (p, _) in touched {
            let epoch = p.state.lock().epoch;
            let owner = self.store.get_partition_owner(p.key.0, p.key.1).await?;
            if !owner
                .as_ref()
                .is_some_and(|o| o.node_id == self.node_id && o.epoch == epoch)
            {
                lost.push((p.clone(), owner));
            }
        }
        Ok(lost)
    }

    /// After a commit: let the cache evict the data, release backpressure, trim the WAL.
    async fn finish_upload(&self, up: &Upload) {
        self.cache.lock().mark_tiered(up.last_seq);
        {
            let mut p = self.pending.lock();
            p.bytes = p.bytes.saturating_sub(up.bytes);
        }
        self.pending_drained.notify_waiters();
        {
            let mut p = self.pending.lock();
            p.trimmed_to = p.trimmed_to.max(Some(up.trim_to));
        }
        match self.wal.trim(up.trim_to).await {
            Ok(()) => info!(
                records = up.records.len(),
                bytes = up.bytes,
                "tiered; WAL trimmed"
            ),
            // Untrimmed segments only cost disk; recovery skips what the manifest holds.
            Err(e) => warn!("WAL trim failed: {e}"),
        }
    }
}

/// Applies the idempotent batches of a WAL record's bytes to a producer table.
fn apply_producers(t: &mut ProducerTable, bytes: &[u8]) {
    match batch::scan(bytes) {
        Ok(s) => {
            for (h, _) in s {
                t.record(&h, h.base_offset);
            }
        }
        Err(e) => warn!("unparseable pending batch while snapshotting producers: {e}"),
    }
}
