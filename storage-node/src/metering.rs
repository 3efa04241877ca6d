//! Storage metering: storage byte-hours per cluster, measured by the nodes that own the data.
//!
//! **Source of truth.** A partition's stored bytes are the lengths of its manifest entries
//! (what object storage holds for it, after retention and DeleteRecords trimmed the manifest)
//! plus the bytes of its batches that are durable in the WAL but not yet taken for upload.
//! Each partition is counted by the node that owns it according to the metadata owner table
//! ([`fjord_metadata::MetadataStore::list_partitions_of_node`]), so the records of all nodes add
//! up to each partition counted once. A loaded partition is measured from memory (the node is
//! its only writer); an owned partition that no client has touched since this node took it over
//! is measured from the stored manifest, read once per (partition, epoch, log start): its
//! manifest only changes once it is loaded here.
//!
//! **Approximations** (all in the tenant's favour or within one sample):
//! - the stored bytes are sampled every [`MAX_TICK`] at most and held until the next sample (a
//!   step function), as the gateway samples partition counts;
//! - batches in an upload in flight (seconds) are in neither the pending list nor the manifest
//!   and are not counted; a partition between owners (a failed node's, until reassigned) or
//!   moved between two samples is counted by neither or, for one sample, both;
//! - bytes are the record-batch bytes Kafka clients sent, not object-storage overhead (object
//!   indexes, ranges awaiting garbage collection, multipart padding), which is not billed.
//!
//! Each node writes one [`UsageRecord`] per cluster and period with source
//! `storage-node/<node id>`, holding only `storage_byte_hours` (the gateways record the other
//! dimensions). The record of the open period is rewritten at every tick (the store keys records
//! by cluster, source and period start, so a rewrite replaces it), so a crash loses at most one
//! tick of metering rather than a period.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Weak;
use std::time::Duration;

use fjord_metadata::{MetadataError, UsageRecord};
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::node::StorageNode;
use crate::partition::PartitionKey;

const MS_PER_HOUR: f64 = 3_600_000.0;
/// Longest time between two samples of the stored bytes.
pub const MAX_TICK: Duration = Duration::from_secs(60);
/// Closed-period records kept for retry at most; older ones are dropped with an error log.
pub const MAX_PENDING: usize = 10_000;

/// The integral of stored bytes over time, per cluster, for the open period.
#[derive(Debug)]
pub struct StorageMeter {
    period_start_ms: i64,
    last_ms: i64,
    observed: BTreeMap<Uuid, u64>,
    byte_hours: BTreeMap<Uuid, f64>,
}

impl StorageMeter {
    /// A meter whose first period starts at `now_ms` with nothing stored.
    pub fn new(now_ms: i64) -> Self {
        Self {
            period_start_ms: now_ms,
            last_ms: now_ms,
            observed: BTreeMap::new(),
            byte_hours: BTreeMap::new(),
        }
    }

    /// Start of the open period.
    pub fn period_start_ms(&self) -> i64 {
        self.period_start_ms
    }

    /// Accounts the time since the last observation with it, then records that from `now_ms`
    /// on each cluster stores `stored` bytes (absent clusters store none).
    pub fn observe(&mut self, now_ms: i64, stored: BTreeMap<Uuid, u64>) {
        self.advance(now_ms);
        self.observed = stored;
    }

    /// Accounts `[last_ms, now_ms)`; an earlier `now_ms` accounts nothing (time never runs
    /// backwards here).
    fn advance(&mut self, now_ms: i64) {
        if now_ms <= self.last_ms {
            return;
        }
        let hours = (now_ms - self.last_ms) as f64 / MS_PER_HOUR;
        for (cluster, bytes) in &self.observed {
            *self.byte_hours.entry(*cluster).or_default() += hours * *bytes as f64;
        }
        self.last_ms = now_ms;
    }

    /// The records of the open period up to `now_ms`, without closing it (for checkpoints).
    pub fn snapshot(&mut self, now_ms: i64, source: &str) -> Vec<UsageRecord> {
        self.advance(now_ms);
        self.byte_hours
            .iter()
            .filter(|(_, h)| **h > 0.0)
            .map(|(cluster, h)| UsageRecord {
                cluster_id: *cluster,
                source: source.to_owned(),
                period_start_ms: self.period_start_ms,
                period_end_ms: self.last_ms,
                cluster_hours: 0.0,
                partition_hours: 0.0,
                bytes_in: 0,
                bytes_out: 0,
                storage_byte_hours: *h,
            })
            .collect()
    }

    /// Closes the open period at `now_ms` and returns its records (one per cluster that stored
    /// anything); the next period starts at `now_ms` with the current observation.
    pub fn drain(&mut self, now_ms: i64, source: &str) -> Vec<UsageRecord> {
        let records = self.snapshot(now_ms, source);
        self.period_start_ms = self.last_ms;
        self.byte_hours.clear();
        records
    }
}

/// What the metering task remembers between samples.
#[derive(Debug, Default)]
pub(crate) struct StorageSampler {
    /// Topic → cluster (a topic never changes cluster).
    clusters: HashMap<Uuid, Uuid>,
    /// Manifest bytes of owned, unloaded partitions, by (epoch, log start) when read.
    unloaded: HashMap<PartitionKey, (i32, i64, u64)>,
}

impl StorageNode {
    /// The bytes stored per cluster in the partitions this node owns now (see the module docs).
    pub(crate) async fn stored_bytes_by_cluster(
        &self,
        sampler: &mut StorageSampler,
    ) -> Result<BTreeMap<Uuid, u64>, MetadataError> {
        let owned = self.store.list_partitions_of_node(&self.node_id).await?;
        let loaded: HashMap<PartitionKey, _> = self
            .loaded_partitions()
            .into_iter()
            .map(|p| (p.key, p))
            .collect();
        let mut pending: HashMap<PartitionKey, u64> = HashMap::new();
        for r in &self.pending.lock().records {
            *pending.entry(r.key()).or_default() += r.bytes.len() as u64;
        }
        let mut out = BTreeMap::new();
        let mut seen = Vec::with_capacity(owned.len());
        for o in owned {
            let key = (o.topic_id, o.partition);
            seen.push(key);
            let in_memory = loaded.get(&key).and_then(|p| {
                let st = p.state.lock();
                (!st.fenced && st.epoch == o.epoch)
                    .then(|| st.manifest.iter().map(|e| e.length).sum::<u64>())
            });
            let bytes = match in_memory {
                Some(tiered) => {
                    sampler.unloaded.remove(&key);
                    tiered + pending.get(&key).copied().unwrap_or(0)
                }
                None => match sampler.unloaded.get(&key) {
                    Some(&(epoch, start, bytes))
                        if (epoch, start) == (o.epoch, o.log_start_offset) =>
                    {
                        bytes
                    }
                    _ => {
                        let bytes = self
                            .store
                            .list_manifest(o.topic_id, o.partition)
                            .await?
                            .iter()
                            .filter(|e| e.end_offset > o.log_start_offset)
                            .map(|e| e.length)
                            .sum();
                        sampler
                            .unloaded
                            .insert(key, (o.epoch, o.log_start_offset, bytes));
                        bytes
                    }
                },
            };
            let cluster = match sampler.clusters.get(&o.topic_id) {
                Some(c) => *c,
                None => match self.store.get_topic_by_id(o.topic_id).await? {
                    Some(t) => {
                        sampler.clusters.insert(o.topic_id, t.cluster_id);
                        t.cluster_id
                    }
                    // Deleted since the owners were listed: nothing is stored any more.
                    None => continue,
                },
            };
            *out.entry(cluster).or_default() += bytes;
        }
        // Forget partitions no longer owned, so the cache is bounded by what the node owns.
        let topics: HashSet<Uuid> = seen.iter().map(|(t, _)| *t).collect();
        let seen: HashSet<PartitionKey> = seen.into_iter().collect();
        sampler.unloaded.retain(|k, _| seen.contains(k));
        sampler.clusters.retain(|t, _| topics.contains(t));
        Ok(out)
    }
}

/// The metering task's state between ticks.
#[derive(Debug)]
pub(crate) struct Metering {
    meter: StorageMeter,
    sampler: StorageSampler,
    /// Closed-period records not yet written.
    pending: Vec<UsageRecord>,
}

impl Metering {
    pub(crate) fn new(now_ms: i64) -> Self {
        Self {
            meter: StorageMeter::new(now_ms),
            sampler: StorageSampler::default(),
            pending: Vec::new(),
        }
    }

    /// Samples the stored bytes at `now_ms`; closes the period once `period` has passed since
    /// it started; writes the closed records and a checkpoint of the open period. Returns the
    /// number of records written.
    pub(crate) async fn tick(
        &mut self,
        node: &StorageNode,
        now_ms: i64,
        period: Duration,
    ) -> usize {
        match node.stored_bytes_by_cluster(&mut self.sampler).await {
            Ok(stored) => self.meter.observe(now_ms, stored),
            // The last observation holds until a sample succeeds.
            Err(e) => debug!(error = %e, "stored bytes unavailable; keeping the last sample"),
        }
        let source = format!("storage-node/{}", node.node_id);
        let period_ms = i64::try_from(period.as_millis()).unwrap_or(i64::MAX);
        if now_ms.saturating_sub(self.meter.period_start_ms()) >= period_ms {
            self.pending.extend(self.meter.drain(now_ms, &source));
        }
        let mut written = 0;
        let mut failed = Vec::new();
        let checkpoint = self.meter.snapshot(now_ms, &source);
        for (closed, r) in std::mem::take(&mut self.pending)
            .into_iter()
            .map(|r| (true, r))
            .chain(checkpoint.into_iter().map(|r| (false, r)))
        {
            match node.store.record_usage(&r).await {
                Ok(()) => written += 1,
                Err(e) => {
                    warn!(cluster = %r.cluster_id, error = %e, "writing a storage usage record failed; will retry");
                    // A failed checkpoint is simply rewritten at the next tick.
                    if closed {
                        failed.push(r);
                    }
                }
            }
        }
        if failed.len() > MAX_PENDING {
            let excess = failed.len() - MAX_PENDING;
            tracing::error!(
                excess,
                "storage usage records could not be written for too long; dropping the oldest"
            );
            failed.drain(..excess);
        }
        self.pending = failed;
        written
    }
}

/// The metering task: ticks every `min(metering period, MAX_TICK)` until the node stops.
pub(crate) async fn run(node: Weak<StorageNode>) {
    let (period, now, mut stopped) = match node.upgrade() {
        Some(n) => (n.metering_period, n.clock.now_ms(), n.stopped.subscribe()),
        None => return,
    };
    let mut metering = Metering::new(now);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period.min(MAX_TICK)) => {}
            _ = stopped.wait_for(|s| *s) => break,
        }
        let Some(n) = node.upgrade() else { return };
        let now = n.clock.now_ms();
        metering.tick(&n, now, period).await;
    }
    info!("storage metering stopped");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing unwrap is a failing test
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn byte_hours_integrate_each_sample_until_the_next() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut m = StorageMeter::new(0);
        m.observe(0, BTreeMap::from([(a, 1000), (b, 0)]));
        m.observe(HOUR / 2, BTreeMap::from([(a, 3000)]));
        let closed = m.drain(HOUR, "n1");
        // a: 1000 B for half an hour, then 3000 B for half an hour; b stored nothing.
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].cluster_id, a);
        assert_eq!(
            (closed[0].period_start_ms, closed[0].period_end_ms),
            (0, HOUR)
        );
        assert!((closed[0].storage_byte_hours - 2000.0).abs() < 1e-9);
        assert_eq!(closed[0].source, "n1");
        assert_eq!((closed[0].bytes_in, closed[0].cluster_hours), (0, 0.0));

        // The observation carries into the next period, which starts where the last ended.
        let snap = m.snapshot(HOUR + HOUR / 4, "n1");
        assert_eq!(snap[0].period_start_ms, HOUR);
        assert!((snap[0].storage_byte_hours - 750.0).abs() < 1e-9);
        // A snapshot does not close the period; time running backwards accounts nothing.
        m.observe(HOUR, BTreeMap::new());
        let next = m.drain(2 * HOUR, "n1");
        assert_eq!(next.len(), 1);
        assert!((next[0].storage_byte_hours - 750.0).abs() < 1e-9);
        assert_eq!(next[0].period_end_ms, 2 * HOUR);
        assert!(m.drain(3 * HOUR, "n1").is_empty(), "nothing stored");
    }
}
