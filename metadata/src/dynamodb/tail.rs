//! Reading the manifest back, and folding a node's tail into per-partition chunks.
//!
//! A commit writes one object item per object (its ranges for every partition) and appends the
//! object's key to the committing node's fence item (`tail`). A partition's manifest is
//! therefore its chunk items plus the parts of the objects in its owner's tail. Every
//! [`FOLD_AT`] commits the node folds its tail: one chunk item per partition with new ranges,
//! and the tail emptied, in one transaction. A claim folds the claimed partition's ranges out
//! of the old owner's tail (see `topics.rs`), so a partition's unfolded ranges are only ever in
//! its current owner's tail.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use uuid::Uuid;

use super::exec::{get_n, get_s, n, record, s, to_record, Item, TxOutcome, MAX_TRANSACTION_ITEMS};
use super::keys::{self, FENCE_SK, REFS_SK};
use super::layout::{latest, merge, Chunk, ChunkRange, ObjectPart, Range, SnapSet};
use super::DynamoStore;
use crate::error::{MetadataError, Result};
use crate::types::ManifestEntry;

/// Commits between folds. Bounds the fence item (one object key per commit) and the reads of
/// a partition load; each fold costs one chunk write per partition with new ranges, so a
/// larger value means fewer writes per gigabyte.
pub(super) const FOLD_AT: usize = 32;

/// A node's fence item: `g` is raised whenever a partition is taken from the node (claim,
/// topic delete), `v` on every commit and fold; `tail` lists the objects committed since the
/// last fold. A commit is conditional on both numbers, which fences it for every partition at
/// once.
#[derive(Clone, Debug, Default)]
pub(super) struct Fence {
    pub exists: bool,
    pub g: i64,
    pub v: i64,
    pub tail: Vec<String>,
}

impl Fence {
    /// The condition (and its values) that the fence is still as read.
    pub fn unchanged(&self) -> (&'static str, Vec<(&'static str, AttributeValue)>) {
        if self.exists {
            (
                "g = :fg AND v = :fv",
                vec![(":fg", n(self.g)), (":fv", n(self.v))],
            )
        } else {
            ("attribute_not_exists(pk)", vec![])
        }
    }
}

/// One partition's manifest as stored: live ranges, latest producer snapshots.
pub(super) struct PartitionState {
    pub entries: Vec<ManifestEntry>,
    pub snaps: Option<SnapSet>,
}

fn tail_of(item: &Item) -> Result<Vec<String>> {
    match item.get("tail") {
        None => Ok(Vec::new()),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::S(k) => Ok(k.clone()),
                other => Err(MetadataError::Corrupt(format!("tail entry {other:?}"))),
            })
            .collect(),
        Some(other) => Err(MetadataError::Corrupt(format!("tail {other:?}"))),
    }
}

/// The snapshot set kept on an owner item (commits that carried no ranges).
pub(super) fn owner_snaps(item: &Item) -> Result<Option<SnapSet>> {
    match item.get("snaps") {
        Some(AttributeValue::S(json)) => Ok(Some(serde_json::from_str(json)?)),
        _ => Ok(None),
    }
}

impl DynamoStore {
    /// Reads a node's fence (strongly consistent).
    pub(super) async fn read_fence(&self, op: &str, node_id: &str) -> Result<Fence> {
        match self.get_item(op, &keys::fence(node_id), FENCE_SK).await? {
            None => Ok(Fence::default()),
            Some(item) => Ok(Fence {
                exists: true,
                g: get_n(&item, "g")?,
                v: get_n(&item, "v")?,
                tail: tail_of(&item)?,
            }),
        }
    }

    /// The parts of the objects in a tail, with their keys, in commit order.
    pub(super) async fn tail_parts(
        &self,
        op: &str,
        tail: &[String],
    ) -> Result<Vec<(String, Vec<ObjectPart>)>> {
        let mut out = Vec::with_capacity(tail.len());
        let mut seen = HashSet::new();
        for key in tail {
            if !seen.insert(key) {
                continue;
            }
            if let Some(item) = self.get_item(op, &keys::object_refs(key), REFS_SK).await? {
                if item.contains_key("d") {
                    out.push((key.clone(), record(&item)?));
                }
            }
        }
        Ok(out)
    }

    /// The ranges in `tail` (a node's unfolded objects) of the partitions `wanted` picks, per
    /// partition, with the latest snapshot set among them.
    pub(super) async fn tail_ranges(
        &self,
        op: &str,
        tail: &[String],
        wanted: impl Fn(Uuid, i32) -> bool,
    ) -> Result<BTreeMap<(Uuid, i32), (Vec<ManifestEntry>, Option<SnapSet>)>> {
        let mut out: BTreeMap<(Uuid, i32), (Vec<ManifestEntry>, Option<SnapSet>)> = BTreeMap::new();
        for (key, parts) in self.tail_parts(op, tail).await? {
            for part in parts.into_iter().filter(|p| wanted(p.t, p.p)) {
                let slot = out.entry((part.t, part.p)).or_default();
                slot.0.extend(part.entries(&key));
                slot.1 = latest(slot.1.take(), part.s);
            }
        }
        Ok(out)
    }

    /// Chunk items of a partition with sort keys in `[lo, hi]`.
    async fn chunks_between(
        &self,
        op: &str,
        topic_id: Uuid,
        lo: &str,
        hi: &str,
        forward: bool,
        limit: Option<usize>,
    ) -> Result<Vec<(String, Chunk)>> {
        self.query_range(op, &keys::topic(topic_id), lo, hi, forward, limit)
            .await?
            .iter()
            .map(|item| Ok((get_s(item, "sk")?.to_string(), record(item)?)))
            .collect()
    }

    /// All chunk items of a partition, by first base offset.
    pub(super) async fn chunks(
        &self,
        op: &str,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Vec<(String, Chunk)>> {
        let prefix = keys::manifest_prefix(partition);
        let hi = format!("{prefix}\u{ffff}");
        self.chunks_between(op, topic_id, &prefix, &hi, true, None)
            .await
    }

    /// The partition's manifest and snapshots as stored; `None` if it has no owner row.
    pub(super) async fn partition_state(
        &self,
        op: &str,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Option<PartitionState>> {
        let Some(item) = self
            .get_item(op, &keys::topic(topic_id), &keys::owner(partition))
            .await?
        else {
            return Ok(None);
        };
        let owner = keys::owner_from(&item)?;
        let mut snaps = owner_snaps(&item)?;
        let mut entries = Vec::new();
        for (_, chunk) in self.chunks(op, topic_id, partition).await? {
            entries.extend(chunk.entries(topic_id, partition));
            snaps = latest(snaps, chunk.s);
        }
        let fence = self.read_fence(op, &owner.node_id).await?;
        let wanted = |t, p| (t, p) == (topic_id, partition);
        if let Some((tail, tail_snaps)) = self
            .tail_ranges(op, &fence.tail, wanted)
            .await?
            .remove(&(topic_id, partition))
        {
            entries.extend(tail);
            snaps = latest(snaps, tail_snaps);
        }
        let entries = merge(entries, owner.log_start_offset);
        Ok(Some(PartitionState { entries, snaps }))
    }

    /// The chunk writes that fold `entries` (ranges of one partition found in a tail) into the
    /// partition's chunks: ranges already folded are left out; nothing if none is new.
    pub(super) async fn fold_partition(
        &self,
        op: &str,
        topic_id: Uuid,
        partition: i32,
        mut entries: Vec<ManifestEntry>,
        snaps: Option<SnapSet>,
    ) -> Result<Option<TransactWriteItem>> {
        entries.sort_by_key(|e| e.base_offset);
        let Some(first) = entries.first().map(|e| e.base_offset) else {
            return Ok(None);
        };
        // Folded ranges at or above `first` sit in the chunk that starts before it (normally the
        // last chunk) or in chunks that start at or after it (a fold that raced a claim).
        let prefix = keys::manifest_prefix(partition);
        let from = keys::manifest(partition, first);
        let mut known: HashSet<i64> = HashSet::new();
        let before = if first > 0 {
            self.chunks_between(
                op,
                topic_id,
                &prefix,
                &keys::manifest(partition, first - 1),
                false,
                Some(1),
            )
            .await?
        } else {
            Vec::new()
        };
        let after = self
            .chunks_between(
                op,
                topic_id,
                &from,
                &format!("{prefix}\u{ffff}"),
                true,
                None,
            )
            .await?;
        for (_, chunk) in before.iter().chain(&after) {
            known.extend(chunk.r.iter().map(|ChunkRange(r, _)| r.0));
        }
        entries.retain(|e| !known.contains(&e.base_offset));
        let Some(base) = entries.first().map(|e| e.base_offset) else {
            return Ok(None);
        };
        let chunk = Chunk {
            r: entries
                .iter()
                .map(|e| ChunkRange(Range::of(e), e.object_key.clone()))
                .collect(),
            s: snaps,
        };
        let item = Item::from([
            ("pk".to_string(), s(keys::topic(topic_id))),
            ("sk".to_string(), s(keys::manifest(partition, base))),
            ("d".to_string(), to_record(&chunk)?),
        ]);
        Ok(Some(keys::put(
            &self.table,
            item,
            Some("attribute_not_exists(pk)"),
            &[],
        )?))
    }

    /// Folds a node's whole tail into chunks and empties it. Returns the fence after the fold,
    /// or `None` if the fence changed meanwhile (the caller re-reads it).
    pub(super) async fn fold(&self, node_id: &str, fence: &Fence) -> Result<Option<Fence>> {
        const OP: &str = "fold_manifest";
        let by_partition = self.tail_ranges(OP, &fence.tail, |_, _| true).await?;
        let mut writes = Vec::new();
        for ((topic_id, partition), (entries, snaps)) in by_partition {
            // A deleted topic's ranges are not folded: its objects' references are gone.
            if self
                .get_item(OP, &keys::topic(topic_id), &keys::owner(partition))
                .await?
                .is_none()
            {
                continue;
            }
            if let Some(w) = self
                .fold_partition(OP, topic_id, partition, entries, snaps)
                .await?
            {
                writes.push(w);
            }
        }
        // Chunk puts are idempotent (a second fold of the same ranges skips them), so a fold
        // too big for one transaction lands its chunks first and empties the tail last.
        while writes.len() >= MAX_TRANSACTION_ITEMS {
            let rest = writes.split_off(MAX_TRANSACTION_ITEMS - 1);
            if let TxOutcome::ConditionFailed(_) = self.transact(OP, writes).await? {
                return Ok(None);
            }
            writes = rest;
        }
        let (cond, values) = fence.unchanged();
        let mut values = values;
        values.push((":empty", AttributeValue::L(Vec::new())));
        values.push((":one", n(1)));
        writes.push(keys::update(
            &self.table,
            &keys::fence(node_id),
            FENCE_SK,
            "SET tail = :empty, v = v + :one",
            Some(cond),
            &values,
        )?);
        match self.transact(OP, writes).await? {
            TxOutcome::Applied => {
                tracing::debug!(node_id, objects = fence.tail.len(), "manifest tail folded");
                Ok(Some(Fence {
                    exists: true,
                    g: fence.g,
                    v: fence.v + 1,
                    tail: Vec::new(),
                }))
            }
            TxOutcome::ConditionFailed(_) => Ok(None),
        }
    }
}
