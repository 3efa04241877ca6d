//! The tiered-data manifest, producer snapshots and object reference counts.
//!
//! A commit is one transaction: per partition, an update of the owner item that is conditional
//! on the committing node and epoch (the fence) and also replaces the producer snapshots kept on
//! that item, plus a conditional put per new manifest entry; per object key, an increment of its
//! reference count. Fence, entries and counts therefore change together or not at all.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::TransactWriteItem;
use uuid::Uuid;

use super::exec::{get_n, get_s, n, record, s, to_record, Item, TxOutcome, MAX_TRANSACTION_ITEMS};
use super::keys::{self, REFS_SK};
use super::DynamoStore;
use crate::error::{MetadataError, Result};
use crate::store::PartitionCommit;
use crate::types::*;
use crate::validate;

/// Re-plans of a commit whose transaction lost a condition (a concurrent commit or claim); the
/// re-plan sees the winner's write and turns it into a skip (our own retry) or a `Conflict`.
const COMMIT_PLANS: usize = 4;

/// The writes of one partition commit (fence + entries); kept together in one transaction.
struct PartitionPlan {
    actions: Vec<TransactWriteItem>,
    refs: Vec<String>,
}

/// The snapshot set as stored: one per producer (the last given wins), by producer id.
fn snapshots_json(
    producers: &[ProducerSnapshot],
) -> Result<aws_sdk_dynamodb::types::AttributeValue> {
    let by_id: BTreeMap<i64, &ProducerSnapshot> =
        producers.iter().map(|p| (p.producer_id, p)).collect();
    to_record(&by_id.into_values().collect::<Vec<_>>())
}

impl DynamoStore {
    pub(super) async fn d_commit_manifest(
        &self,
        node_id: &str,
        commits: &[PartitionCommit],
    ) -> Result<()> {
        for _ in 0..COMMIT_PLANS {
            let plans = self.plan_commit(node_id, commits).await?;
            match self.run_plans(plans).await? {
                TxOutcome::Applied => return Ok(()),
                TxOutcome::ConditionFailed(_) => {
                    tracing::debug!(node_id, "manifest commit raced; re-planning");
                }
            }
        }
        Err(MetadataError::Conflict(format!(
            "manifest commit of node {node_id} kept losing races"
        )))
    }

    /// Checks fences and overlaps with strongly consistent reads and builds the writes. The
    /// writes repeat every check as a condition, so a change after the reads fails them.
    async fn plan_commit(
        &self,
        node_id: &str,
        commits: &[PartitionCommit],
    ) -> Result<Vec<PartitionPlan>> {
        // Every fence is checked before any entry, as the SQLite backend does, so a stale
        // writer hears `Conflict` whatever else is wrong with its call.
        for c in commits {
            let (owner, _) = self.fenced_owner(c.topic_id, c.partition).await?;
            validate::commit_fence(c, node_id, &owner)?;
        }
        let mut plans = Vec::with_capacity(commits.len());
        for c in commits {
            let pk = keys::topic(c.topic_id);
            let mut actions = vec![keys::update(
                &self.table,
                &pk,
                &keys::owner(c.partition),
                "SET snaps = :snaps",
                Some("node = :n AND ep = :e"),
                &[
                    (":snaps", snapshots_json(&c.producers)?),
                    (":n", s(node_id)),
                    (":e", n(i64::from(c.epoch))),
                ],
            )?];
            let mut refs = Vec::new();
            // Entries of this call already planned, so entries of one call are checked against
            // each other as well as against the table.
            let mut planned: Vec<&ManifestEntry> = Vec::new();
            for e in &c.entries {
                validate::manifest_entry(c, e)?;
                let stored = self
                    .entry_before(c.topic_id, c.partition, e.end_offset)
                    .await?;
                let before = planned
                    .iter()
                    .copied()
                    .filter(|p| p.base_offset < e.end_offset && p.end_offset > e.base_offset)
                    .chain(stored.as_ref().filter(|p| p.end_offset > e.base_offset));
                let mut skip = false;
                for prev in before {
                    if prev == e {
                        // A retried commit whose first attempt landed: already done.
                        skip = true;
                    } else {
                        return Err(validate::manifest_overlap(e, prev));
                    }
                }
                if skip {
                    continue;
                }
                let item = Item::from([
                    ("pk".to_string(), s(pk.clone())),
                    (
                        "sk".to_string(),
                        s(keys::manifest(c.partition, e.base_offset)),
                    ),
                    ("d".to_string(), to_record(e)?),
                ]);
                actions.push(keys::put(
                    &self.table,
                    item,
                    Some("attribute_not_exists(pk)"),
                    &[],
                )?);
                refs.push(e.object_key.clone());
                planned.push(e);
            }
            plans.push(PartitionPlan { actions, refs });
        }
        Ok(plans)
    }

    /// Runs the plans in as few transactions as DynamoDB's action limit allows: one for any
    /// ordinary commit. A call too big for one transaction is split between partitions (never
    /// inside one); each part is fenced, and a retry of the whole call skips what landed.
    async fn run_plans(&self, plans: Vec<PartitionPlan>) -> Result<TxOutcome> {
        let mut batch: Vec<TransactWriteItem> = Vec::new();
        let mut refs: BTreeMap<String, i64> = BTreeMap::new();
        for plan in plans {
            let extra_refs = plan.refs.iter().filter(|r| !refs.contains_key(*r)).count();
            if !batch.is_empty()
                && batch.len() + refs.len() + plan.actions.len() + extra_refs
                    > MAX_TRANSACTION_ITEMS
            {
                if let f @ TxOutcome::ConditionFailed(_) = self
                    .commit_batch(std::mem::take(&mut batch), std::mem::take(&mut refs))
                    .await?
                {
                    return Ok(f);
                }
            }
            batch.extend(plan.actions);
            for r in plan.refs {
                *refs.entry(r).or_default() += 1;
            }
        }
        self.commit_batch(batch, refs).await
    }

    async fn commit_batch(
        &self,
        mut batch: Vec<TransactWriteItem>,
        refs: BTreeMap<String, i64>,
    ) -> Result<TxOutcome> {
        for (key, count) in refs {
            batch.push(self.refs_update(&key, count)?);
        }
        self.transact("commit_manifest", batch).await
    }

    /// Adds `delta` to the reference count of an object.
    fn refs_update(&self, object_key: &str, delta: i64) -> Result<TransactWriteItem> {
        keys::update(
            &self.table,
            &keys::object_refs(object_key),
            REFS_SK,
            "ADD n :d",
            None,
            &[(":d", n(delta))],
        )
    }

    /// The stored entry with the highest base offset below `end` (strongly consistent).
    async fn entry_before(
        &self,
        topic_id: Uuid,
        partition: i32,
        end: i64,
    ) -> Result<Option<ManifestEntry>> {
        if end <= 0 {
            return Ok(None);
        }
        let items = self
            .query_range(
                "commit_manifest",
                &keys::topic(topic_id),
                &keys::manifest(partition, 0),
                &keys::manifest(partition, end - 1),
                false,
                Some(1),
            )
            .await?;
        items.first().map(record).transpose()
    }

    /// Entries of a partition that end at or below `start`, by base offset.
    pub(super) async fn entries_ending_by(
        &self,
        topic_id: Uuid,
        partition: i32,
        start: i64,
    ) -> Result<Vec<ManifestEntry>> {
        if start <= 0 {
            return Ok(Vec::new());
        }
        let items = self
            .query_range(
                "advance_log_start",
                &keys::topic(topic_id),
                &keys::manifest(partition, 0),
                &keys::manifest(partition, start - 1),
                true,
                None,
            )
            .await?;
        let mut out = Vec::new();
        for item in &items {
            let e: ManifestEntry = record(item)?;
            if e.end_offset <= start {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Deletes manifest entries together with their reference counts. Each delete is
    /// conditional on the entry existing, so two removers racing (retention and a topic delete)
    /// never decrement a count twice.
    pub(super) async fn remove_entries(&self, op: &str, entries: &[ManifestEntry]) -> Result<()> {
        // Half a transaction of deletes leaves room for one count update per entry.
        for chunk in entries.chunks(MAX_TRANSACTION_ITEMS / 2) {
            let (actions, refs) = self.removal(chunk)?;
            let mut all = actions;
            for (key, count) in &refs {
                all.push(self.refs_update(key, -count)?);
            }
            if let TxOutcome::ConditionFailed(_) = self.transact(op, all).await? {
                // Someone removed part of the chunk first: remove the rest one by one.
                for e in chunk {
                    let (mut one, _) = self.removal(std::slice::from_ref(e))?;
                    one.push(self.refs_update(&e.object_key, -1)?);
                    self.transact(op, one).await?;
                }
            }
        }
        Ok(())
    }

    fn removal(
        &self,
        entries: &[ManifestEntry],
    ) -> Result<(Vec<TransactWriteItem>, BTreeMap<String, i64>)> {
        let mut refs: BTreeMap<String, i64> = BTreeMap::new();
        let mut actions = Vec::with_capacity(entries.len());
        for e in entries {
            actions.push(keys::delete(
                &self.table,
                &keys::topic(e.topic_id),
                &keys::manifest(e.partition, e.base_offset),
                Some("attribute_exists(pk)"),
                &[],
            )?);
            *refs.entry(e.object_key.clone()).or_default() += 1;
        }
        Ok((actions, refs))
    }

    pub(super) async fn d_list_manifest(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Vec<ManifestEntry>> {
        self.query_prefix(
            "list_manifest",
            &keys::topic(topic_id),
            &keys::manifest_prefix(partition),
        )
        .await?
        .iter()
        .map(record)
        .collect()
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
        let item = self
            .get_item(
                "producer_snapshots",
                &keys::topic(topic_id),
                &keys::owner(partition),
            )
            .await?;
        match item {
            Some(item) if item.contains_key("snaps") => {
                Ok(serde_json::from_str(get_s(&item, "snaps")?)?)
            }
            _ => Ok(Vec::new()),
        }
    }
}
