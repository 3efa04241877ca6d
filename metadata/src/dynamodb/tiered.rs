//! Manifest commits, object reference counts and producer snapshots.
//!
//! A commit is one transaction of, normally, two writes whatever the number of partitions in
//! it: the committing node's fence item (conditional on its generation and version, which
//! fences every partition of the node at once, and appending the object key to its tail) and
//! one object item per object (its ranges per partition, producer snapshots, and the count of
//! live ranges that reference it). The older layout wrote two items per partition per commit
//! (the owner's fence and a manifest entry), ~1,000 items per GB at eight partitions; see
//! `metadata/README.md` for the arithmetic.
//!
//! Which partitions a node may commit is checked against owner items once and then cached with
//! the node's fence: anything that takes a partition from a node raises the node's fence
//! generation (claims and topic deletes do), so a cached check is only trusted while the
//! transaction's condition on the fence holds; if it fails, the commit re-reads everything and
//! plans again.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use uuid::Uuid;

use super::exec::{get_n, n, record, s, to_record, Item, TxOutcome, MAX_TRANSACTION_ITEMS};
use super::keys::{self, FENCE_SK, REFS_SK};
use super::layout::{ObjectPart, Range, SnapSet};
use super::tail::{Fence, FOLD_AT};
use super::DynamoStore;
use crate::error::{MetadataError, Result};
use crate::store::PartitionCommit;
use crate::types::*;
use crate::validate;

/// Re-plans of a commit whose transaction lost a condition (a concurrent commit, claim or
/// fold); the re-plan reads afresh and turns the winner's write into a skip (our own retry) or
/// a `Conflict`.
const COMMIT_PLANS: usize = 4;

/// What this process knows about a node's commits, valid while the node's fence is unchanged.
#[derive(Clone, Debug, Default)]
pub(super) struct NodeView {
    fence: Fence,
    /// Partitions checked to be the node's, at the epoch checked.
    epochs: HashMap<(Uuid, i32), i32>,
    /// End offset of each partition's last stored range (0 if none), for the overlap check.
    ends: HashMap<(Uuid, i32), i64>,
}

/// One object's item as a commit writes it.
struct ObjectWrite {
    parts: Vec<ObjectPart>,
    ranges: i64,
}

impl DynamoStore {
    pub(super) async fn d_commit_manifest(
        &self,
        node_id: &str,
        commits: &[PartitionCommit],
    ) -> Result<()> {
        let mut careful = false;
        for _ in 0..COMMIT_PLANS {
            let cached = self.view(node_id).filter(|_| !careful);
            let mut view = match cached {
                Some(v) => v,
                None => NodeView {
                    fence: self.read_fence("commit_manifest", node_id).await?,
                    ..NodeView::default()
                },
            };
            match self
                .try_commit(node_id, commits, &mut view, careful)
                .await?
            {
                true => {
                    if view.fence.tail.len() >= FOLD_AT {
                        // The commit has landed; a failed fold is retried by the next commit.
                        match self.fold(node_id, &view.fence).await {
                            Ok(Some(f)) => view.fence = f,
                            Ok(None) => {
                                self.forget_view(node_id);
                                return Ok(());
                            }
                            Err(e) => tracing::warn!(node_id, "manifest fold failed: {e}"),
                        }
                    }
                    self.keep_view(node_id, view);
                    return Ok(());
                }
                false => {
                    tracing::debug!(node_id, "manifest commit raced; re-planning");
                    self.forget_view(node_id);
                    careful = true;
                }
            }
        }
        Err(MetadataError::Conflict(format!(
            "manifest commit of node {node_id} kept losing races"
        )))
    }

    fn view(&self, node_id: &str) -> Option<NodeView> {
        self.views.lock().ok()?.get(node_id).cloned()
    }

    fn keep_view(&self, node_id: &str, view: NodeView) {
        if let Ok(mut views) = self.views.lock() {
            views.insert(node_id.to_string(), view);
        }
    }

    pub(super) fn forget_view(&self, node_id: &str) {
        if let Ok(mut views) = self.views.lock() {
            views.remove(node_id);
        }
    }

    /// Plans and runs one attempt; `false` if a condition failed. `careful` reads the object
    /// items a commit touches first (after a lost race an object may exist already).
    async fn try_commit(
        &self,
        node_id: &str,
        commits: &[PartitionCommit],
        view: &mut NodeView,
        careful: bool,
    ) -> Result<bool> {
        const OP: &str = "commit_manifest";
        // Every fence is checked before any entry, as the SQLite backend does, so a stale
        // writer hears `Conflict` whatever else is wrong with its call.
        for c in commits {
            let key = (c.topic_id, c.partition);
            if view.epochs.get(&key) != Some(&c.epoch) {
                let (owner, _) = self.fenced_owner(c.topic_id, c.partition).await?;
                validate::commit_fence(c, node_id, &owner)?;
                view.epochs.insert(key, c.epoch);
            }
        }
        let next_v = view.fence.v + 1;
        let mut objects: BTreeMap<String, ObjectWrite> = BTreeMap::new();
        let mut snapshot_updates = Vec::new();
        let mut new_ends: HashMap<(Uuid, i32), i64> = HashMap::new();
        for c in commits {
            let key = (c.topic_id, c.partition);
            let mut stored: Option<Vec<ManifestEntry>> = None;
            let mut planned: Vec<&ManifestEntry> = Vec::new();
            for e in &c.entries {
                validate::manifest_entry(c, e)?;
            }
            for e in &c.entries {
                let end = match view.ends.get(&key) {
                    Some(end) => *end,
                    None => {
                        let entries = self.stored_entries(c.topic_id, c.partition).await?;
                        let end = entries.iter().map(|e| e.end_offset).max().unwrap_or(0);
                        stored = Some(entries);
                        view.ends.insert(key, end);
                        end
                    }
                };
                let overlaps = |p: &ManifestEntry| {
                    p.base_offset < e.end_offset && p.end_offset > e.base_offset
                };
                let mut skip = false;
                if e.base_offset < end {
                    // Below the stored end: a retry of a landed commit, a range filling a gap,
                    // or an overlap. Only the stored list can tell.
                    if stored.is_none() {
                        stored = Some(self.stored_entries(c.topic_id, c.partition).await?);
                    }
                    for prev in stored.iter().flatten().filter(|p| overlaps(p)) {
                        if prev == e {
                            skip = true;
                        } else {
                            return Err(validate::manifest_overlap(e, prev));
                        }
                    }
                }
                if let Some(prev) = planned.iter().find(|p| overlaps(p)) {
                    if *prev == e {
                        skip = true;
                    } else {
                        return Err(validate::manifest_overlap(e, prev));
                    }
                }
                if skip {
                    continue;
                }
                planned.push(e);
                let slot = new_ends.entry(key).or_insert(end);
                *slot = (*slot).max(e.end_offset);
            }
            let snaps = SnapSet::new(c.epoch, next_v, &c.producers);
            if planned.is_empty() {
                if c.entries.is_empty() {
                    // Only snapshots: they go on the owner item, fenced like the rest.
                    snapshot_updates.push(keys::update(
                        &self.table,
                        &keys::topic(c.topic_id),
                        &keys::owner(c.partition),
                        "SET snaps = :snaps",
                        Some("node = :n AND ep = :e"),
                        &[
                            (":snaps", to_record(&snaps)?),
                            (":n", s(node_id)),
                            (":e", n(i64::from(c.epoch))),
                        ],
                    )?);
                }
                // A retry whose ranges all landed already carried its snapshots then.
                continue;
            }
            let mut by_object: BTreeMap<&str, Vec<Range>> = BTreeMap::new();
            for e in &planned {
                by_object
                    .entry(e.object_key.as_str())
                    .or_default()
                    .push(Range::of(e));
            }
            let last_object = planned.last().map(|e| e.object_key.as_str());
            for (object, ranges) in by_object {
                let w = objects.entry(object.to_string()).or_insert(ObjectWrite {
                    parts: Vec::new(),
                    ranges: 0,
                });
                w.ranges += ranges.len() as i64;
                w.parts.push(ObjectPart {
                    t: c.topic_id,
                    p: c.partition,
                    r: ranges,
                    s: (Some(object) == last_object).then(|| snaps.clone()),
                });
            }
        }

        let mut actions = snapshot_updates;
        let mut appended = Vec::new();
        for (key, w) in objects {
            let existing = if careful {
                self.get_item(OP, &keys::object_refs(&key), REFS_SK).await?
            } else {
                None
            };
            actions.push(self.object_write(&key, w, existing.as_ref())?);
            if !view.fence.tail.contains(&key) {
                appended.push(key);
            }
        }
        if actions.len() + 1 > MAX_TRANSACTION_ITEMS {
            return Err(MetadataError::InvalidArgument(format!(
                "{OP}: a commit of {} objects and snapshot updates exceeds one DynamoDB \
                 transaction ({MAX_TRANSACTION_ITEMS} writes); commit fewer objects per call",
                actions.len()
            )));
        }
        let (cond, mut values) = view.fence.unchanged();
        values.push((":v", n(next_v)));
        values.push((
            ":keys",
            AttributeValue::L(appended.iter().cloned().map(AttributeValue::S).collect()),
        ));
        values.push((":empty", AttributeValue::L(Vec::new())));
        values.push((":zero", n(0)));
        actions.push(keys::update(
            &self.table,
            &keys::fence(node_id),
            FENCE_SK,
            "SET v = :v, g = if_not_exists(g, :zero), \
             tail = list_append(if_not_exists(tail, :empty), :keys)",
            Some(cond),
            &values,
        )?);
        match self.transact(OP, actions).await? {
            TxOutcome::ConditionFailed(_) => Ok(false),
            TxOutcome::Applied => {
                view.fence.exists = true;
                view.fence.v = next_v;
                view.fence.tail.extend(appended);
                view.ends.extend(new_ends);
                Ok(true)
            }
        }
    }

    /// The put of a new object item, or the update of one an earlier commit wrote.
    fn object_write(
        &self,
        key: &str,
        w: ObjectWrite,
        existing: Option<&Item>,
    ) -> Result<TransactWriteItem> {
        match existing.filter(|i| i.contains_key("d")) {
            None => {
                let mut item = Item::from([
                    ("pk".to_string(), s(keys::object_refs(key))),
                    ("sk".to_string(), s(REFS_SK)),
                    ("d".to_string(), to_record(&w.parts)?),
                    ("n".to_string(), n(w.ranges)),
                ]);
                // A count left by an older layout (no `d`) carries over.
                if let Some(old) = existing.and_then(|i| get_n(i, "n").ok()) {
                    item.insert("n".to_string(), n(old + w.ranges));
                    return keys::put(&self.table, item, Some("n = :old"), &[(":old", n(old))]);
                }
                keys::put(&self.table, item, Some("attribute_not_exists(pk)"), &[])
            }
            Some(item) => {
                let mut parts: Vec<ObjectPart> = record(item)?;
                parts.extend(w.parts);
                let old = get_n(item, "n")?;
                keys::update(
                    &self.table,
                    &keys::object_refs(key),
                    REFS_SK,
                    "SET d = :d, n = :new",
                    Some("n = :old AND size(d) = :len"),
                    &[
                        (":d", to_record(&parts)?),
                        (":new", n(old + w.ranges)),
                        (":old", n(old)),
                        (
                            ":len",
                            n(i64::try_from(
                                item.get("d")
                                    .and_then(|d| d.as_s().ok())
                                    .map_or(0, |d| d.len()),
                            )
                            .unwrap_or(i64::MAX)),
                        ),
                    ],
                )
            }
        }
    }

    /// The live ranges of a partition (for overlap checks).
    async fn stored_entries(&self, topic_id: Uuid, partition: i32) -> Result<Vec<ManifestEntry>> {
        Ok(self
            .partition_state("commit_manifest", topic_id, partition)
            .await?
            .map(|p| p.entries)
            .unwrap_or_default())
    }

    /// Adds `delta` to the reference count of an object.
    pub(super) fn refs_update(&self, object_key: &str, delta: i64) -> Result<TransactWriteItem> {
        keys::update(
            &self.table,
            &keys::object_refs(object_key),
            REFS_SK,
            "ADD n :d",
            None,
            &[(":d", n(delta))],
        )
    }

    /// Reference-count updates that release `entries`, one per object.
    pub(super) fn releases(&self, entries: &[ManifestEntry]) -> Result<Vec<TransactWriteItem>> {
        let mut refs: BTreeMap<&str, i64> = BTreeMap::new();
        for e in entries {
            *refs.entry(e.object_key.as_str()).or_default() += 1;
        }
        refs.into_iter()
            .map(|(key, count)| self.refs_update(key, -count))
            .collect()
    }

    pub(super) async fn d_list_manifest(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Vec<ManifestEntry>> {
        Ok(self
            .partition_state("list_manifest", topic_id, partition)
            .await?
            .map(|p| p.entries)
            .unwrap_or_default())
    }

    pub(super) async fn d_manifest_references(&self, object_key: &str) -> Result<usize> {
        let Some(item) = self
            .get_item(
                "manifest_references",
                &keys::object_refs(object_key),
                REFS_SK,
            )
            .await?
        else {
            return Ok(0);
        };
        let count = get_n(&item, "n")?;
        usize::try_from(count)
            .map_err(|e| MetadataError::Corrupt(format!("reference count {count}: {e}")))
    }

    pub(super) async fn d_producer_snapshots(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Vec<ProducerSnapshot>> {
        Ok(self
            .partition_state("producer_snapshots", topic_id, partition)
            .await?
            .and_then(|p| p.snaps)
            .map(|s| s.s)
            .unwrap_or_default())
    }
}
