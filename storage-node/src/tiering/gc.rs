//! Garbage collection of orphaned objects: objects under this node's prefix
//! (`nodes/<node_id>/`) that no manifest entry references. They come from a crash between
//! upload and manifest commit, from a commit that lost to a fence, or from a deleted topic whose
//! objects were not deleted at the time.
//!
//! Safety: an object is deleted only if metadata counts no reference to it, it is not the
//! upload in flight, and no commit can still come for it: its key sorts before the last upload
//! this node settled (uploads run one at a time in key order), or it is older than the grace
//! period (which covers uploads that outlived this process, and a second process wrongly using
//! this node id). The uploader and the collector coordinate through [`KeyState`]: the uploader
//! never claims a key being deleted, the collector never deletes the key in flight.
//!
//! Work per run is bounded: the listing (paged by the store, 1,000 keys per S3 request) keeps
//! only the next `gc_max_objects_per_run` candidates in key order after where the previous run
//! stopped (wrapping around), so memory stays bounded however many objects there are; those
//! are checked against metadata and deleted if unreferenced.

use std::collections::{BinaryHeap, HashSet};
use std::sync::Weak;
use std::time::Duration;

use fjord_metadata::MetadataError;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use tracing::{info, warn};

use super::TieringError;
use crate::config::NodeConfig;
use crate::node::StorageNode;

/// Garbage-collection settings taken from [`NodeConfig`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct GcSettings {
    pub interval: Duration,
    pub grace_ms: i64,
    pub max_per_run: usize,
}

impl GcSettings {
    pub fn from_config(c: &NodeConfig) -> Self {
        Self {
            interval: c.gc_interval,
            grace_ms: i64::try_from(c.gc_grace.as_millis()).unwrap_or(i64::MAX),
            max_per_run: c.gc_max_objects_per_run,
        }
    }
}

/// Object keys the uploader and the collector are working on (behind the node's
/// `object_keys` lock, never held across an await).
#[derive(Debug, Default)]
pub(crate) struct KeyState {
    /// The key of the upload in flight (set until it is committed or given up).
    pub in_flight: Option<String>,
    /// The key the collector is checking and deleting.
    pub deleting: Option<String>,
    /// Key of the last upload settled (committed, or given up after its partitions moved):
    /// every own key before it is either committed or never will be.
    pub settled: Option<String>,
    /// Where the next collection run continues (the last key it checked).
    pub cursor: Option<String>,
}

/// Why a collection run stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GcError {
    /// Listing the node's prefix failed.
    #[error("listing objects: {0}")]
    List(#[from] object_store::Error),
    /// Counting an object's references failed.
    #[error("counting object references: {0}")]
    Metadata(#[from] MetadataError),
}

/// What one collection run found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Objects listed under the node's prefix.
    pub listed: u64,
    /// Unreferenced-looking objects left alone because a commit could still come for them
    /// (younger than the grace period, after the last settled upload, or in flight).
    pub recent: u64,
    /// Objects checked against metadata.
    pub checked: u64,
    /// Checked objects no manifest entry references.
    pub orphans: u64,
    /// Their total size in bytes.
    pub orphan_bytes: u64,
    /// Orphans deleted.
    pub deleted: u64,
    /// Bytes deleted.
    pub deleted_bytes: u64,
    /// Orphans whose delete failed (retried next run).
    pub failed: u64,
    /// Whether candidates were left for the next run (the per-run bound was reached).
    pub more: bool,
}

/// The first `limit` keys offered in the order "after `cursor`, then from the start", kept in
/// two bounded max-heaps so memory stays `O(limit)` whatever the listing's size or order.
struct NextKeys {
    cursor: Option<String>,
    limit: usize,
    after: BinaryHeap<(String, u64)>,
    wrapped: BinaryHeap<(String, u64)>,
    offered: usize,
}

impl NextKeys {
    fn new(cursor: Option<String>, limit: usize) -> Self {
        Self {
            cursor,
            limit,
            after: BinaryHeap::new(),
            wrapped: BinaryHeap::new(),
            offered: 0,
        }
    }

    fn offer(&mut self, key: String, size: u64) {
        self.offered += 1;
        let heap = match &self.cursor {
            Some(c) if key <= *c => &mut self.wrapped,
            _ => &mut self.after,
        };
        heap.push((key, size));
        if heap.len() > self.limit {
            heap.pop();
        }
    }

    /// Whether more keys were offered than fit in one run.
    fn more(&self) -> bool {
        self.offered > self.limit
    }

    fn into_sorted(self) -> impl Iterator<Item = (String, u64)> {
        let limit = self.limit;
        self.after
            .into_sorted_vec()
            .into_iter()
            .chain(self.wrapped.into_sorted_vec())
            .take(limit)
    }
}

/// The collection task.
pub(crate) async fn run(node: Weak<StorageNode>) {
    let (interval, mut stopped) = match node.upgrade() {
        Some(n) => (n.gc.interval, n.stopped.subscribe()),
        None => return,
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        let Some(n) = node.upgrade() else { return };
        if let Err(e) = n.collect_garbage().await {
            warn!("garbage collection stopped early: {e}");
        }
    }
}

impl StorageNode {
    /// Marks `key` as the upload in flight; refused while the collector is deleting it (the
    /// round is retried, and then writes a fresh object).
    pub(crate) fn claim_key(&self, key: &str) -> Result<(), TieringError> {
        let mut k = self.object_keys.lock();
        if k.deleting.as_deref() == Some(key) {
            return Err(TieringError::KeyBusy(key.to_string()));
        }
        k.in_flight = Some(key.to_string());
        Ok(())
    }

    /// The upload at `key` is settled: committed, or given up.
    pub(crate) fn settle_key(&self, key: &str) {
        let mut k = self.object_keys.lock();
        if k.in_flight.as_deref() == Some(key) {
            k.in_flight = None;
        }
        if k.settled.as_deref().is_none_or(|s| s < key) {
            k.settled = Some(key.to_string());
        }
    }

    /// One garbage-collection run over `nodes/<node_id>/` (see the module docs).
    #[tracing::instrument(skip_all, fields(node_id = %self.node_id))]
    pub async fn collect_garbage(&self) -> Result<GcReport, GcError> {
        let now = self.clock.now_ms();
        let mut report = GcReport::default();
        let referenced = self.referenced_keys();
        let (settled, cursor) = {
            let k = self.object_keys.lock();
            (k.settled.clone(), k.cursor.clone())
        };
        let prefix = ObjectPath::from(format!("nodes/{}", self.node_id));
        let mut picked = NextKeys::new(cursor, self.gc.max_per_run);
        let mut listing = self.objects.list(Some(&prefix));
        while let Some(meta) = listing.try_next().await? {
            report.listed += 1;
            let key = meta.location.to_string();
            if !key.ends_with(".obj") || referenced.contains(&key) {
                continue;
            }
            let age_ms = now.saturating_sub(meta.last_modified.timestamp_millis());
            let before_settled = settled.as_deref().is_some_and(|s| key.as_str() < s);
            if !before_settled && age_ms < self.gc.grace_ms {
                report.recent += 1;
                continue;
            }
            picked.offer(key, meta.size);
        }
        drop(listing);
        report.more = picked.more();
        let mut last = None;
        for (key, size) in picked.into_sorted() {
            let outcome = self.delete_if_orphan(&key, size, &mut report).await;
            last = Some(key);
            outcome?;
        }
        self.object_keys.lock().cursor = if report.more { last } else { None };
        info!(
            listed = report.listed,
            checked = report.checked,
            orphans = report.orphans,
            orphan_bytes = report.orphan_bytes,
            deleted = report.deleted,
            deleted_bytes = report.deleted_bytes,
            failed = report.failed,
            recent = report.recent,
            "garbage collection run"
        );
        Ok(report)
    }

    /// Checks one candidate against metadata and deletes it if nothing references it.
    async fn delete_if_orphan(
        &self,
        key: &str,
        size: u64,
        report: &mut GcReport,
    ) -> Result<(), GcError> {
        {
            let mut k = self.object_keys.lock();
            if k.in_flight.as_deref() == Some(key) {
                report.recent += 1;
                return Ok(());
            }
            k.deleting = Some(key.to_string());
        }
        let result = self.delete_unreferenced(key, size, report).await;
        self.object_keys.lock().deleting = None;
        result
    }

    async fn delete_unreferenced(
        &self,
        key: &str,
        size: u64,
        report: &mut GcReport,
    ) -> Result<(), GcError> {
        report.checked += 1;
        if self.store.manifest_references(key).await? > 0 {
            return Ok(());
        }
        report.orphans += 1;
        report.orphan_bytes += size;
        match self.objects.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                info!(%key, size, "orphaned object deleted");
                report.deleted += 1;
                report.deleted_bytes += size;
            }
            Err(e) => {
                warn!(%key, "deleting orphaned object: {e}");
                report.failed += 1;
            }
        }
        Ok(())
    }

    /// Object keys the manifests of loaded partitions reference (known referenced without
    /// asking metadata).
    fn referenced_keys(&self) -> HashSet<String> {
        let mut keys = HashSet::new();
        for p in self.loaded_partitions() {
            let st = p.state.lock();
            for e in &st.manifest {
                if !keys.contains(&e.object_key) {
                    keys.insert(e.object_key.clone());
                }
            }
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(cursor: Option<&str>, limit: usize, keys: &[&str]) -> (Vec<String>, bool) {
        let mut n = NextKeys::new(cursor.map(str::to_string), limit);
        for k in keys {
            n.offer(k.to_string(), 1);
        }
        let more = n.more();
        (n.into_sorted().map(|(k, _)| k).collect(), more)
    }

    #[test]
    fn picks_the_next_keys_after_the_cursor_then_wraps() {
        let keys = ["d", "a", "e", "c", "b"];
        assert_eq!(pick(None, 2, &keys), (vec!["a".into(), "b".into()], true));
        assert_eq!(
            pick(Some("b"), 2, &keys),
            (vec!["c".into(), "d".into()], true)
        );
        assert_eq!(
            pick(Some("d"), 3, &keys),
            (vec!["e".into(), "a".into(), "b".into()], true)
        );
        assert_eq!(pick(Some("z"), 9, &keys).0, vec!["a", "b", "c", "d", "e"]);
        assert!(!pick(None, 5, &keys).1);
    }
}
