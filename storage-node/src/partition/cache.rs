//! The tail cache: recent batches of all partitions, bounded in bytes, evicting the oldest first.
//!
//! A batch may be evicted only once it is in object storage (its publish sequence is at or below
//! the tiered mark): until then the cache is the only place fetches can read it from, and the
//! upload backpressure bounds how far over budget that can take the cache.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;

use crate::partition::PartitionKey;

/// One cached batch.
#[derive(Debug, Clone)]
pub struct CachedBatch {
    /// Offset of the batch's last record.
    pub last_offset: i64,
    /// Max timestamp of the batch.
    pub max_timestamp: i64,
    /// The batch bytes (header rewritten).
    pub bytes: Bytes,
}

/// Recent batches of all partitions of the node.
#[derive(Debug)]
pub struct TailCache {
    max_bytes: u64,
    bytes: u64,
    tiered_seq: u64,
    partitions: HashMap<PartitionKey, BTreeMap<i64, CachedBatch>>,
    /// Insertion order: (publish seq, partition, base offset).
    order: VecDeque<(u64, PartitionKey, i64)>,
}

impl TailCache {
    /// An empty cache of at most `max_bytes` (of tiered data).
    pub fn new(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            bytes: 0,
            tiered_seq: 0,
            partitions: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Adds a published batch; `seq` is its global publish sequence (increasing).
    pub fn insert(&mut self, seq: u64, key: PartitionKey, base_offset: i64, batch: CachedBatch) {
        self.bytes += batch.bytes.len() as u64;
        if let Some(old) = self
            .partitions
            .entry(key)
            .or_default()
            .insert(base_offset, batch)
        {
            self.bytes -= old.bytes.len() as u64;
        }
        self.order.push_back((seq, key, base_offset));
        self.evict();
    }

    /// Everything published up to `seq` is in object storage (or discarded) and may go.
    pub fn mark_tiered(&mut self, seq: u64) {
        self.tiered_seq = self.tiered_seq.max(seq);
        self.evict();
    }

    /// Drops a partition's batches (ownership lost).
    pub fn remove_partition(&mut self, key: &PartitionKey) {
        if let Some(m) = self.partitions.remove(key) {
            self.bytes -= m.values().map(|b| b.bytes.len() as u64).sum::<u64>();
        }
    }

    fn evict(&mut self) {
        while self.bytes > self.max_bytes {
            let Some(&(seq, key, base)) = self.order.front() else {
                break;
            };
            if seq > self.tiered_seq {
                break;
            }
            self.order.pop_front();
            if let Some(m) = self.partitions.get_mut(&key) {
                if let Some(b) = m.remove(&base) {
                    self.bytes -= b.bytes.len() as u64;
                }
                if m.is_empty() {
                    self.partitions.remove(&key);
                }
            }
        }
    }

    /// Whole batches of a partition starting with the one containing `offset`, contiguous, up to
    /// `max_bytes` (at least one), none starting at or after `below` (the high watermark the
    /// caller answers with). `None` if the cache does not hold the batch with `offset`.
    ///
    /// Batches enter the cache just before the high watermark moves past them, so without the
    /// bound a reader could get records beyond the watermark it reports, and its next fetch
    /// would be out of range until the watermark caught up.
    pub fn read(
        &self,
        key: &PartitionKey,
        offset: i64,
        below: i64,
        max_bytes: usize,
    ) -> Option<Vec<Bytes>> {
        let m = self.partitions.get(key)?;
        let (&start, first) = m.range(..=offset).next_back()?;
        if first.last_offset < offset || start >= below {
            return None;
        }
        let mut out = Vec::new();
        let mut size = 0usize;
        let mut expect = None;
        for (base, b) in m.range(start..below) {
            if expect.is_some_and(|e| e != *base) {
                break;
            }
            if !out.is_empty() && size + b.bytes.len() > max_bytes {
                break;
            }
            size += b.bytes.len();
            out.push(b.bytes.clone());
            expect = Some(b.last_offset + 1);
        }
        Some(out)
    }

    /// Cached batches of a partition with base offset in `[from, to)`, in order, as
    /// (base offset, batch).
    pub fn batches(&self, key: &PartitionKey, from: i64, to: i64) -> Vec<(i64, CachedBatch)> {
        self.partitions
            .get(key)
            .map(|m| m.range(from..to).map(|(b, c)| (*b, c.clone())).collect())
            .unwrap_or_default()
    }

    /// Smallest cached base offset of a partition.
    pub fn first_offset(&self, key: &PartitionKey) -> Option<i64> {
        self.partitions.get(key)?.keys().next().copied()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn batch(last: i64, n: usize) -> CachedBatch {
        CachedBatch {
            last_offset: last,
            max_timestamp: 0,
            bytes: Bytes::from(vec![0u8; n]),
        }
    }

    #[test]
    fn evicts_oldest_tiered_only() {
        let k = (Uuid::nil(), 0);
        let mut c = TailCache::new(250);
        c.insert(1, k, 0, batch(9, 100));
        c.insert(2, k, 10, batch(19, 100));
        c.insert(3, k, 20, batch(29, 100));
        // Nothing tiered yet: over budget but kept.
        assert_eq!(c.bytes(), 300);
        assert!(c.read(&k, 5, 30, 1000).is_some());
        c.mark_tiered(2);
        assert_eq!(c.bytes(), 200);
        assert!(c.read(&k, 5, 30, 1000).is_none());
        let got = c.read(&k, 15, 30, 1000).unwrap();
        assert_eq!(got.len(), 2);
        // The budget still returns one whole batch.
        assert_eq!(c.read(&k, 15, 30, 1).unwrap().len(), 1);
    }

    #[test]
    fn reads_stop_at_the_high_watermark() {
        let k = (Uuid::nil(), 0);
        let mut c = TailCache::new(1 << 20);
        c.insert(1, k, 0, batch(9, 100));
        c.insert(2, k, 10, batch(19, 100));
        // The second batch is cached but the watermark has not passed it yet.
        assert_eq!(c.read(&k, 0, 10, 1000).unwrap().len(), 1);
        assert!(c.read(&k, 10, 10, 1000).is_none());
        assert_eq!(c.read(&k, 0, 20, 1000).unwrap().len(), 2);
    }
}
