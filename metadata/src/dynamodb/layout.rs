//! The records of the tiered manifest as stored in DynamoDB (see `metadata/README.md`,
//! "Manifest"): object items that hold the ranges a commit added, chunk items that hold a
//! partition's folded ranges, and producer snapshot sets ordered by when they were written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::types::{ManifestEntry, ProducerSnapshot};

/// When a snapshot set was written: the partition epoch, then the committing node's fence
/// version. Within one epoch a single node commits, with ever larger versions; a claim raises
/// the epoch. So the larger stamp is always the later snapshot, whichever item holds it.
pub(super) type Stamp = (i32, i64);

/// A partition's idempotent-producer snapshot set and when it was written.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct SnapSet {
    /// Partition epoch of the commit.
    pub ep: i32,
    /// Fence version of the commit.
    pub v: i64,
    /// The snapshots, one per producer.
    pub s: Vec<ProducerSnapshot>,
}

impl SnapSet {
    pub fn new(ep: i32, v: i64, producers: &[ProducerSnapshot]) -> Self {
        // One per producer (the last given wins), ordered by producer id.
        let by_id: BTreeMap<i64, &ProducerSnapshot> =
            producers.iter().map(|p| (p.producer_id, p)).collect();
        SnapSet {
            ep,
            v,
            s: by_id.into_values().cloned().collect(),
        }
    }

    pub fn stamp(&self) -> Stamp {
        (self.ep, self.v)
    }
}

/// Keeps the latest of several snapshot sets.
pub(super) fn latest(a: Option<SnapSet>, b: Option<SnapSet>) -> Option<SnapSet> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.stamp() > a.stamp() { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// A manifest range without its partition and object, which the enclosing record names:
/// `[base, end, max timestamp, position, length]`. Compact, because chunk and object items are
/// billed by size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Range(pub i64, pub i64, pub i64, pub u64, pub u64);

impl Range {
    pub fn of(e: &ManifestEntry) -> Self {
        Range(
            e.base_offset,
            e.end_offset,
            e.max_timestamp_ms,
            e.position,
            e.length,
        )
    }

    pub fn entry(&self, topic_id: Uuid, partition: i32, object_key: &str) -> ManifestEntry {
        ManifestEntry {
            topic_id,
            partition,
            base_offset: self.0,
            end_offset: self.1,
            max_timestamp_ms: self.2,
            object_key: object_key.to_string(),
            position: self.3,
            length: self.4,
        }
    }
}

/// One partition's ranges inside one object, as a commit added them (attribute `d` of an
/// object item is a list of these).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct ObjectPart {
    /// Topic id.
    pub t: Uuid,
    /// Partition.
    pub p: i32,
    /// The ranges.
    pub r: Vec<Range>,
    /// The partition's producer snapshots after this commit, if the commit carried them here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<SnapSet>,
}

impl ObjectPart {
    pub fn entries<'a>(&'a self, object_key: &'a str) -> impl Iterator<Item = ManifestEntry> + 'a {
        self.r.iter().map(|r| r.entry(self.t, self.p, object_key))
    }
}

/// One range of a chunk: the range and its object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ChunkRange(pub Range, pub String);

/// A chunk item's body: folded ranges of one partition (sorted by base offset) and the latest
/// snapshot set among the parts folded into it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct Chunk {
    /// The ranges.
    pub r: Vec<ChunkRange>,
    /// Latest snapshot set folded here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<SnapSet>,
}

impl Chunk {
    pub fn entries(&self, topic_id: Uuid, partition: i32) -> Vec<ManifestEntry> {
        self.r
            .iter()
            .map(|ChunkRange(r, key)| r.entry(topic_id, partition, key))
            .collect()
    }
}

/// Merges ranges of one partition from several places (chunks, object items of a tail) into
/// one list by base offset: a range seen twice (folded and still in a tail) is kept once; ranges
/// that end at or below `log_start` are gone.
pub(super) fn merge(
    sources: impl IntoIterator<Item = ManifestEntry>,
    log_start: i64,
) -> Vec<ManifestEntry> {
    let mut by_base: BTreeMap<i64, ManifestEntry> = BTreeMap::new();
    for e in sources {
        if e.end_offset > log_start {
            by_base.entry(e.base_offset).or_insert(e);
        }
    }
    by_base.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(base: i64, end: i64, key: &str) -> ManifestEntry {
        Range(base, end, 7, 0, 1).entry(Uuid::nil(), 0, key)
    }

    #[test]
    fn merge_orders_dedups_and_drops_below_log_start() {
        let merged = merge(
            vec![
                e(20, 30, "b"),
                e(0, 10, "a"),
                e(10, 20, "a"),
                e(20, 30, "b"),
            ],
            10,
        );
        assert_eq!(merged, vec![e(10, 20, "a"), e(20, 30, "b")]);
    }

    #[test]
    fn later_stamp_wins() {
        let a = SnapSet::new(1, 9, &[]);
        let b = SnapSet::new(2, 1, &[]);
        assert_eq!(
            latest(Some(a.clone()), Some(b)).map(|s| s.stamp()),
            Some((2, 1))
        );
        assert_eq!(latest(Some(a), None).map(|s| s.stamp()), Some((1, 9)));
    }
}
