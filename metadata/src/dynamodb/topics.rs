//! Topics, partition owners and epoch-fenced claims.
//!
//! A topic has an item by id (`T#<id>`/`TOPIC`) and one by name under its cluster
//! (`C#<cluster>`/`T#<name>`), both carrying the version that conditions every update. Owner
//! items live in the topic's partition (`T#<id>`/`P#<partition>`), next to its manifest entries,
//! so one query finds everything a delete must remove.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::TransactWriteItem;
use uuid::Uuid;

use super::exec::{n, record, s, to_record, Item, TxOutcome, MAX_TRANSACTION_ITEMS};
use super::keys::{self, TOPIC_SK};
use super::DynamoStore;
use crate::error::{MetadataError, Result};
use crate::types::*;
use crate::validate::{self, partition_exists};

/// Checks every owner (see [`validate::owner`]) and that each partition is named once.
fn validate_owners(topic: &Topic, owners: &[PartitionOwner]) -> Result<()> {
    let mut seen = HashSet::new();
    for o in owners {
        validate::owner(topic, o)?;
        if !seen.insert(o.partition) {
            return Err(partition_exists(o.topic_id, o.partition));
        }
    }
    Ok(())
}

fn topic_item(pk: String, sk: String, t: &Topic) -> Result<Item> {
    Ok(Item::from([
        ("pk".to_string(), s(pk)),
        ("sk".to_string(), s(sk)),
        ("d".to_string(), to_record(t)?),
        ("v".to_string(), n(t.version)),
    ]))
}

impl DynamoStore {
    /// Puts of new owner items, conditional on their absence.
    fn owner_puts(&self, owners: &[PartitionOwner]) -> Result<Vec<TransactWriteItem>> {
        owners
            .iter()
            .map(|o| {
                keys::put(
                    &self.table,
                    keys::owner_item(o),
                    Some("attribute_not_exists(pk)"),
                    &[],
                )
            })
            .collect()
    }

    /// Runs `head` together with as many of `owners` as fit in one transaction, then the rest
    /// of the owners in further transactions. `head_len` actions come first, so a failed
    /// condition at an index `>= head_len` is an existing partition.
    async fn transact_with_owners(
        &self,
        op: &str,
        mut head: Vec<TransactWriteItem>,
        owners: &[PartitionOwner],
    ) -> Result<std::result::Result<(), usize>> {
        let head_len = head.len();
        let fit = MAX_TRANSACTION_ITEMS
            .saturating_sub(head_len)
            .min(owners.len());
        head.extend(self.owner_puts(&owners[..fit])?);
        if let TxOutcome::ConditionFailed(f) = self.transact(op, head).await? {
            return Ok(Err(f.first().copied().unwrap_or(0)));
        }
        // A topic with more partitions than one transaction holds: its remaining owners follow.
        // Readers may briefly see the topic before all of them, as if a node had not yet
        // claimed those partitions.
        for chunk in owners[fit..].chunks(MAX_TRANSACTION_ITEMS) {
            if let TxOutcome::ConditionFailed(f) =
                self.transact(op, self.owner_puts(chunk)?).await?
            {
                let i = f.first().copied().unwrap_or(0);
                let o = &chunk[i.min(chunk.len() - 1)];
                return Err(partition_exists(o.topic_id, o.partition));
            }
        }
        Ok(Ok(()))
    }

    pub(super) async fn d_create_topic(&self, t: &Topic, owners: &[PartitionOwner]) -> Result<()> {
        validate::new_topic(t)?;
        validate_owners(t, owners)?;
        let absent = Some("attribute_not_exists(pk)");
        let head = vec![
            keys::put(
                &self.table,
                topic_item(keys::cluster(t.cluster_id), keys::topic_name(&t.name), t)?,
                absent,
                &[],
            )?,
            keys::put(
                &self.table,
                topic_item(keys::topic(t.id), TOPIC_SK.to_string(), t)?,
                absent,
                &[],
            )?,
        ];
        match self
            .transact_with_owners("create_topic", head, owners)
            .await?
        {
            Ok(()) => Ok(()),
            Err(0) => Err(MetadataError::AlreadyExists {
                kind: "topic",
                name: t.name.clone(),
            }),
            Err(1) => Err(MetadataError::AlreadyExists {
                kind: "topic id",
                name: t.id.to_string(),
            }),
            Err(i) => {
                let o = &owners[(i - 2).min(owners.len().saturating_sub(1))];
                Err(partition_exists(o.topic_id, o.partition))
            }
        }
    }

    pub(super) async fn d_get_topic(&self, cluster_id: Uuid, name: &str) -> Result<Option<Topic>> {
        self.get_item(
            "get_topic",
            &keys::cluster(cluster_id),
            &keys::topic_name(name),
        )
        .await?
        .map(|i| record(&i))
        .transpose()
    }

    pub(super) async fn d_get_topic_by_id(&self, topic_id: Uuid) -> Result<Option<Topic>> {
        self.get_item("get_topic_by_id", &keys::topic(topic_id), TOPIC_SK)
            .await?
            .map(|i| record(&i))
            .transpose()
    }

    pub(super) async fn d_list_topics(&self, cluster_id: Uuid) -> Result<Vec<Topic>> {
        let items = self
            .query_prefix("list_topics", &keys::cluster(cluster_id), "T#")
            .await?;
        let mut out: Vec<Topic> = items.iter().map(record).collect::<Result<_>>()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub(super) async fn d_update_topic(
        &self,
        t: &Topic,
        new_owners: &[PartitionOwner],
    ) -> Result<Topic> {
        let not_found = || validate::topic_not_found(t.id);
        let stored = self.d_get_topic_by_id(t.id).await?.ok_or_else(not_found)?;
        validate::topic_update(&stored, t)?;
        validate_owners(t, new_owners)?;
        let updated = validate::updated_topic(&stored, t)?;
        let values = [
            (":d", to_record(&updated)?),
            (":nv", n(updated.version)),
            (":v", n(t.version)),
        ];
        let set = "SET d = :d, v = :nv";
        let cond = Some("v = :v");
        let head = vec![
            keys::update(
                &self.table,
                &keys::topic(t.id),
                TOPIC_SK,
                set,
                cond,
                &values,
            )?,
            keys::update(
                &self.table,
                &keys::cluster(t.cluster_id),
                &keys::topic_name(&t.name),
                set,
                cond,
                &values,
            )?,
        ];
        match self
            .transact_with_owners("update_topic", head, new_owners)
            .await?
        {
            Ok(()) => Ok(updated),
            Err(i) if i < 2 => match self.d_get_topic_by_id(t.id).await? {
                None => Err(not_found()),
                Some(now) => Err(validate::topic_version_conflict(&now, t.version)),
            },
            Err(i) => {
                let o = &new_owners[(i - 2).min(new_owners.len().saturating_sub(1))];
                Err(partition_exists(o.topic_id, o.partition))
            }
        }
    }

    pub(super) async fn d_list_partition_owners(
        &self,
        topic_id: Uuid,
    ) -> Result<Vec<PartitionOwner>> {
        self.query_prefix("list_partition_owners", &keys::topic(topic_id), "P#")
            .await?
            .iter()
            .map(keys::owner_from)
            .collect()
    }

    pub(super) async fn d_get_partition_owner(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Option<PartitionOwner>> {
        self.get_item(
            "get_partition_owner",
            &keys::topic(topic_id),
            &keys::owner(partition),
        )
        .await?
        .map(|i| keys::owner_from(&i))
        .transpose()
    }

    pub(super) async fn d_list_partitions_of_node(
        &self,
        node_id: &str,
    ) -> Result<Vec<PartitionOwner>> {
        let items = self
            .query_node_index("list_partitions_of_node", &keys::node_index(node_id))
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let o = keys::owner_from(item)?;
            if o.node_id == node_id {
                out.push(o);
            }
        }
        Ok(out)
    }
}
