//! The writes that take partitions from a node or shrink them: claims, topic deletes and log
//! start advances. Each keeps the invariants the commit path relies on (`tail.rs`): taking a
//! partition raises the old owner's fence generation, and a claim first folds the partition's
//! ranges out of the old owner's tail.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_dynamodb::types::TransactWriteItem;
use uuid::Uuid;

use super::exec::{get_s, n, s, Item, TxOutcome, MAX_TRANSACTION_ITEMS};
use super::keys::{self, FENCE_SK, TOPIC_SK};
use super::layout::merge;
use super::DynamoStore;
use crate::error::{MetadataError, Result};
use crate::types::*;
use crate::validate;

/// Attempts of a claim or log-start advance that lost a race it can simply retry (the old
/// owner committed meanwhile; another advance of the same owner).
const RETRIES: usize = 8;

/// Distinct objects released by one log-start advance, so that the owner update, the
/// reference counts and a few chunk deletes fit one transaction.
const RELEASES_PER_STEP: usize = 80;

impl DynamoStore {
    /// Raises a node's fence generation: its cached commit checks are void.
    fn fence_bump(
        &self,
        node_id: &str,
        condition: Option<(&str, Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>)>,
    ) -> Result<TransactWriteItem> {
        let (cond, mut values) = match condition {
            Some((c, v)) => (Some(c), v),
            None => (None, Vec::new()),
        };
        values.push((":zero", n(0)));
        values.push((":one", n(1)));
        keys::update(
            &self.table,
            &keys::fence(node_id),
            FENCE_SK,
            "SET g = if_not_exists(g, :zero) + :one, v = if_not_exists(v, :zero)",
            cond,
            &values,
        )
    }

    pub(super) async fn d_claim_partition(
        &self,
        topic_id: Uuid,
        partition: i32,
        node_id: &str,
        expected_epoch: i32,
    ) -> Result<PartitionOwner> {
        const OP: &str = "claim_partition";
        let require = |o: Option<PartitionOwner>| {
            o.ok_or_else(|| validate::partition_not_found(topic_id, partition))
        };
        for _ in 0..RETRIES {
            let mut owner = require(self.d_get_partition_owner(topic_id, partition).await?)?;
            let new_epoch = validate::claim(&owner, expected_epoch)?;
            let old_node = std::mem::replace(&mut owner.node_id, node_id.to_string());
            owner.epoch = new_epoch;
            // The partition's ranges still in the old owner's tail move into its chunks, so
            // that they stay findable once the partition is someone else's.
            let fence = self.read_fence(OP, &old_node).await?;
            let fold = match self
                .tail_ranges(OP, &fence.tail, |t, p| (t, p) == (topic_id, partition))
                .await?
                .remove(&(topic_id, partition))
            {
                Some((entries, snaps)) => {
                    self.fold_partition(OP, topic_id, partition, entries, snaps)
                        .await?
                }
                None => None,
            };
            let mut actions = vec![
                keys::update(
                    &self.table,
                    &keys::topic(topic_id),
                    &keys::owner(partition),
                    "SET node = :n, ep = :new, gpk = :g",
                    Some("ep = :old"),
                    &[
                        (":n", s(node_id)),
                        (":new", n(i64::from(new_epoch))),
                        (":g", s(keys::node_index(node_id))),
                        (":old", n(i64::from(expected_epoch))),
                    ],
                )?,
                self.fence_bump(&old_node, Some(fence.unchanged()))?,
            ];
            actions.extend(fold);
            self.forget_view(&old_node);
            match self.transact(OP, actions).await? {
                TxOutcome::Applied => {
                    tracing::info!(%topic_id, partition, node_id, epoch = new_epoch, "partition claimed");
                    return Ok(owner);
                }
                TxOutcome::ConditionFailed(failed) if failed.contains(&0) => {
                    let now = require(self.d_get_partition_owner(topic_id, partition).await?)?;
                    return Err(validate::claim_conflict(&now, expected_epoch));
                }
                // The old owner committed or folded meanwhile: fold again.
                TxOutcome::ConditionFailed(_) => {}
            }
        }
        Err(MetadataError::Conflict(format!(
            "claim of {topic_id}/{partition} kept racing the old owner's commits"
        )))
    }

    /// Reads the owner a node's fenced write is conditioned on; a missing row (topic deleted)
    /// is a `Conflict` like any other lost ownership.
    pub(super) async fn fenced_owner(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<(PartitionOwner, Item)> {
        let item = self
            .get_item(
                "fenced_owner",
                &keys::topic(topic_id),
                &keys::owner(partition),
            )
            .await?
            .ok_or_else(|| validate::partition_gone(topic_id, partition))?;
        Ok((keys::owner_from(&item)?, item))
    }

    pub(super) async fn d_delete_topic(&self, topic_id: Uuid) -> Result<Vec<ManifestEntry>> {
        const OP: &str = "delete_topic";
        let not_found = || validate::topic_not_found(topic_id);
        let t = self
            .d_get_topic_by_id(topic_id)
            .await?
            .ok_or_else(not_found)?;
        let pk = keys::topic(topic_id);
        let items = vec![
            keys::delete(
                &self.table,
                &pk,
                TOPIC_SK,
                Some("attribute_exists(pk)"),
                &[],
            )?,
            keys::delete(
                &self.table,
                &keys::cluster(t.cluster_id),
                &keys::topic_name(&t.name),
                None,
                &[],
            )?,
        ];
        if let TxOutcome::ConditionFailed(_) = self.transact(OP, items).await? {
            return Err(not_found());
        }
        let owners: Vec<PartitionOwner> = self
            .query_prefix(OP, &pk, "P#")
            .await?
            .iter()
            .map(keys::owner_from)
            .collect::<Result<_>>()?;
        let nodes: HashSet<&str> = owners.iter().map(|o| o.node_id.as_str()).collect();
        // Owners go before the manifest is read, together with a bump of each owner's fence:
        // from then on every commit to the topic fails, and a fold skips its ranges, so what is
        // read afterwards is all there will ever be.
        let mut actions = Vec::new();
        for node in &nodes {
            self.forget_view(node);
            actions.push(self.fence_bump(node, None)?);
        }
        for o in &owners {
            actions.push(keys::delete(
                &self.table,
                &pk,
                &keys::owner(o.partition),
                None,
                &[],
            )?);
        }
        self.transact_all(OP, actions).await?;

        let mut found: BTreeMap<i32, Vec<ManifestEntry>> = BTreeMap::new();
        for node in &nodes {
            let fence = self.read_fence(OP, node).await?;
            let ours = |t, _| t == topic_id;
            for ((_, p), (entries, _)) in self.tail_ranges(OP, &fence.tail, ours).await? {
                found.entry(p).or_default().extend(entries);
            }
        }
        let chunk_items = self.query_prefix(OP, &pk, "M#").await?;
        let mut chunk_deletes = Vec::with_capacity(chunk_items.len());
        for item in &chunk_items {
            let chunk: super::layout::Chunk = super::exec::record(item)?;
            let sk = get_s(item, "sk")?;
            let partition = chunk_partition(sk)?;
            found
                .entry(partition)
                .or_default()
                .extend(chunk.entries(topic_id, partition));
            chunk_deletes.push(keys::delete(&self.table, &pk, sk, None, &[])?);
        }
        let mut entries = Vec::new();
        for o in &owners {
            entries.extend(merge(
                found.remove(&o.partition).unwrap_or_default(),
                o.log_start_offset,
            ));
        }
        self.transact_all(OP, self.releases(&entries)?).await?;
        self.transact_all(OP, chunk_deletes).await?;
        tracing::info!(%topic_id, name = %t.name, entries = entries.len(), "topic deleted");
        Ok(entries)
    }

    /// Runs unconditional writes in as many transactions as DynamoDB's limit needs.
    async fn transact_all(&self, op: &str, actions: Vec<TransactWriteItem>) -> Result<()> {
        let mut actions = actions;
        while !actions.is_empty() {
            let rest = actions.split_off(actions.len().min(MAX_TRANSACTION_ITEMS));
            if let TxOutcome::ConditionFailed(_) = self.transact(op, actions).await? {
                return Err(MetadataError::Backend(format!(
                    "{op}: an unconditional write reported a failed condition"
                )));
            }
            actions = rest;
        }
        Ok(())
    }

    pub(super) async fn d_advance_log_start(
        &self,
        topic_id: Uuid,
        partition: i32,
        epoch: i32,
        log_start_offset: i64,
    ) -> Result<Vec<ManifestEntry>> {
        const OP: &str = "advance_log_start";
        validate::log_start_offset(topic_id, partition, log_start_offset)?;
        let mut removed_all = Vec::new();
        let mut races = 0;
        loop {
            let (owner, _) = self.fenced_owner(topic_id, partition).await?;
            validate::epoch_fence(&owner, epoch)?;
            let old = owner.log_start_offset;
            // Never lowered: a late retention pass must not resurrect deleted data.
            if log_start_offset <= old {
                return Ok(removed_all);
            }
            let Some(state) = self.partition_state(OP, topic_id, partition).await? else {
                return Err(validate::partition_gone(topic_id, partition));
            };
            // The ranges that end by the new start are released; a step releases at most
            // RELEASES_PER_STEP objects, and the start of that step stops where they end.
            let mut target = log_start_offset;
            let mut removed = Vec::new();
            let mut objects: HashSet<&str> = HashSet::new();
            for e in state
                .entries
                .iter()
                .filter(|e| e.end_offset <= log_start_offset)
            {
                if !objects.contains(e.object_key.as_str()) && objects.len() == RELEASES_PER_STEP {
                    target = removed.last().map_or(old, |r: &ManifestEntry| r.end_offset);
                    break;
                }
                objects.insert(e.object_key.as_str());
                removed.push(e.clone());
            }
            let mut actions = vec![keys::update(
                &self.table,
                &keys::topic(topic_id),
                &keys::owner(partition),
                "SET lso = :s",
                Some("ep = :e AND lso = :old"),
                &[
                    (":s", n(target)),
                    (":e", n(i64::from(epoch))),
                    (":old", n(old)),
                ],
            )?];
            actions.extend(self.releases(&removed)?);
            actions.extend(
                self.expired_chunks(topic_id, partition, target)
                    .await?
                    .into_iter()
                    .take(MAX_TRANSACTION_ITEMS.saturating_sub(actions.len())),
            );
            match self.transact(OP, actions).await? {
                TxOutcome::Applied => {
                    removed_all.extend(removed);
                    if target >= log_start_offset {
                        return Ok(removed_all);
                    }
                }
                TxOutcome::ConditionFailed(_) if races < RETRIES => races += 1,
                TxOutcome::ConditionFailed(_) => {
                    return Err(MetadataError::Conflict(format!(
                        "log start of {topic_id}/{partition} keeps moving concurrently"
                    )))
                }
            }
        }
    }

    /// Deletes of chunks whose every range ends at or below `start`, except the one holding the
    /// latest snapshot set (producer state outlives the data it was learned from).
    async fn expired_chunks(
        &self,
        topic_id: Uuid,
        partition: i32,
        start: i64,
    ) -> Result<Vec<TransactWriteItem>> {
        let chunks = self
            .chunks("advance_log_start", topic_id, partition)
            .await?;
        let keep = chunks
            .iter()
            .filter_map(|(sk, c)| c.s.as_ref().map(|s| (s.stamp(), sk)))
            .max()
            .map(|(_, sk)| sk.clone());
        chunks
            .iter()
            .filter(|(sk, c)| {
                Some(sk) != keep.as_ref()
                    && c.r
                        .iter()
                        .all(|super::layout::ChunkRange(r, _)| r.1 <= start)
            })
            .map(|(sk, _)| keys::delete(&self.table, &keys::topic(topic_id), sk, None, &[]))
            .collect()
    }
}

/// The partition named in a chunk's sort key (`M#<partition>#<base>`).
fn chunk_partition(sk: &str) -> Result<i32> {
    sk.split('#')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| MetadataError::Corrupt(format!("chunk key {sk}")))
}
