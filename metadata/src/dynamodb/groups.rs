//! Storage nodes, committed group offsets and the producer-id counter.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValue;
use uuid::Uuid;

use super::exec::{backend, get_n, n, record, s, Item, MAX_TRANSACTION_ITEMS};
use super::keys::{self, COUNTER_SK, NODES_PK, PRODUCER_IDS_PK};
use super::tenants::record_item;
use super::DynamoStore;
use crate::error::{MetadataError, Result};
use crate::types::*;

/// A node as stored: the record, with the heartbeat in its own attribute so a heartbeat is a
/// small update rather than a rewrite of the certificate.
fn node_from(item: &Item) -> Result<NodeInfo> {
    let mut node: NodeInfo = record(item)?;
    node.heartbeat_ms = get_n(item, "hb")?;
    Ok(node)
}

impl DynamoStore {
    pub(super) async fn d_register_node(&self, node: &NodeInfo) -> Result<()> {
        let mut item = record_item(NODES_PK.to_string(), keys::node(&node.id), node)?;
        item.insert("hb".to_string(), n(node.heartbeat_ms));
        self.counters.write(1);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| backend("register_node", e))?;
        tracing::info!(node_id = %node.id, rpc_addr = %node.rpc_addr, "node registered");
        Ok(())
    }

    pub(super) async fn d_heartbeat_node(&self, node_id: &str, now_ms: Millis) -> Result<()> {
        self.counters.write(1);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(NODES_PK))
            .key("sk", s(keys::node(node_id)))
            .update_expression("SET hb = :hb")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":hb", n(now_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(MetadataError::NotFound {
                    kind: "node",
                    name: node_id.to_string(),
                })
            }
            Err(e) => Err(backend("heartbeat_node", e)),
        }
    }

    pub(super) async fn d_get_node(&self, node_id: &str) -> Result<Option<NodeInfo>> {
        self.get_item("get_node", NODES_PK, &keys::node(node_id))
            .await?
            .map(|i| node_from(&i))
            .transpose()
    }

    pub(super) async fn d_list_nodes(&self) -> Result<Vec<NodeInfo>> {
        let mut out: Vec<NodeInfo> = self
            .query_prefix("list_nodes", NODES_PK, "N#")
            .await?
            .iter()
            .map(node_from)
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub(super) async fn d_commit_offsets(
        &self,
        cluster_id: Uuid,
        group: &str,
        offsets: &[CommittedOffset],
    ) -> Result<()> {
        let pk = keys::group(cluster_id, group);
        // The last of several offsets for one partition wins, as an upsert sequence would.
        let mut latest = std::collections::BTreeMap::new();
        for o in offsets {
            latest.insert((o.topic.as_str(), o.partition), o);
        }
        let marker = record_item(keys::cluster(cluster_id), keys::group_marker(group), &group)?;
        let mut puts = vec![keys::put(&self.table, marker, None, &[])?];
        for o in latest.values() {
            let item = record_item(pk.clone(), keys::offset(&o.topic, o.partition), o)?;
            puts.push(keys::put(&self.table, item, None, &[])?);
        }
        // Unconditional upserts: a commit larger than one transaction is applied in parts, and
        // a retry re-applies the same values.
        for chunk in puts.chunks(MAX_TRANSACTION_ITEMS) {
            self.transact("commit_offsets", chunk.to_vec()).await?;
        }
        Ok(())
    }

    pub(super) async fn d_fetch_offsets(
        &self,
        cluster_id: Uuid,
        group: &str,
    ) -> Result<Vec<CommittedOffset>> {
        let mut out: Vec<CommittedOffset> = self
            .query_prefix("fetch_offsets", &keys::group(cluster_id, group), "O#")
            .await?
            .iter()
            .map(record)
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(out)
    }

    pub(super) async fn d_delete_group_offsets(&self, cluster_id: Uuid, group: &str) -> Result<()> {
        let pk = keys::group(cluster_id, group);
        let items = self.query_prefix("delete_group_offsets", &pk, "O#").await?;
        let mut deletes = Vec::with_capacity(items.len() + 1);
        for item in &items {
            deletes.push(keys::delete(
                &self.table,
                &pk,
                super::exec::get_s(item, "sk")?,
                None,
                &[],
            )?);
        }
        // The marker goes last, so a group is listed as long as any of its offsets exists.
        deletes.push(keys::delete(
            &self.table,
            &keys::cluster(cluster_id),
            &keys::group_marker(group),
            None,
            &[],
        )?);
        for chunk in deletes.chunks(MAX_TRANSACTION_ITEMS) {
            self.transact("delete_group_offsets", chunk.to_vec())
                .await?;
        }
        Ok(())
    }

    pub(super) async fn d_list_offset_groups(&self, cluster_id: Uuid) -> Result<Vec<String>> {
        let groups: BTreeSet<String> = self
            .query_prefix("list_offset_groups", &keys::cluster(cluster_id), "G#")
            .await?
            .iter()
            .map(record)
            .collect::<Result<_>>()?;
        Ok(groups.into_iter().collect())
    }

    pub(super) async fn d_allocate_producer_ids(&self, count: i64) -> Result<i64> {
        if count < 1 {
            return Err(MetadataError::InvalidArgument(format!(
                "producer id block of {count} ids"
            )));
        }
        // An atomic counter: concurrent callers get disjoint blocks. A request retried after
        // its first attempt landed skips a block, which only wastes ids.
        self.counters.write(1);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(PRODUCER_IDS_PK))
            .key("sk", s(COUNTER_SK))
            .update_expression("ADD n :c")
            .expression_attribute_values(":c", n(count))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| backend("allocate_producer_ids", e))?;
        let next = out
            .attributes
            .as_ref()
            .map(|a| get_n(a, "n"))
            .transpose()?
            .ok_or_else(|| MetadataError::Backend("counter update returned nothing".into()))?;
        Ok(next - count)
    }
}
