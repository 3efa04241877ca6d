//! Item keys of the single-table design (see `metadata/README.md`) and builders of the
//! transaction actions that write them.
//!
//! Numbers inside sort keys are zero-padded so that string order is numeric order; every key is
//! printable ASCII.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use uuid::Uuid;

use super::exec::{get_n, get_s, s, Item};
use crate::error::{MetadataError, Result};
use crate::types::PartitionOwner;

pub(super) const ACCOUNT_SK: &str = "ACCOUNT";
pub(super) const CLUSTER_SK: &str = "CLUSTER";
pub(super) const KEY_SK: &str = "KEY";
pub(super) const TOPIC_SK: &str = "TOPIC";
pub(super) const NODES_PK: &str = "NODES";
pub(super) const GATEWAYS_PK: &str = "GATEWAYS";
pub(super) const PRODUCER_IDS_PK: &str = "PRODUCER_IDS";
pub(super) const COUNTER_SK: &str = "COUNTER";
pub(super) const REFS_SK: &str = "REFS";
pub(super) const FENCE_SK: &str = "FENCE";
pub(super) const AUTH_EPOCH_PK: &str = "AUTH_EPOCH";
pub(super) const SETTINGS_SK: &str = "SETTINGS";

pub(super) fn account(id: &str) -> String {
    format!("A#{id}")
}

pub(super) fn cluster(id: Uuid) -> String {
    format!("C#{id}")
}

/// Sort key of a cluster's name item under its account.
pub(super) fn cluster_name(name: &str) -> String {
    format!("CL#{name}")
}

/// Sort key of a principal under its account.
pub(super) fn principal(name: &str) -> String {
    format!("PR#{name}")
}

/// Sort key of an ACL binding under its cluster.
pub(super) fn acl(binding: &str) -> String {
    format!("ACL#{binding}")
}

/// Partition of a cluster's usage records.
pub(super) fn usage(cluster_id: Uuid) -> String {
    format!("U#{cluster_id}")
}

/// Sort key of a usage record (period start, then source).
pub(super) fn usage_record(period_start_ms: i64, source: &str) -> String {
    format!("{period_start_ms:020}#{source}")
}

pub(super) fn access_key(id: &str) -> String {
    format!("K#{id}")
}

pub(super) fn topic(id: Uuid) -> String {
    format!("T#{id}")
}

/// Sort key of a topic's name item under its cluster.
pub(super) fn topic_name(name: &str) -> String {
    format!("T#{name}")
}

/// Sort key of a partition's owner item under its topic.
pub(super) fn owner(partition: i32) -> String {
    format!("P#{partition:010}")
}

/// Prefix of the manifest chunks of one partition under its topic.
pub(super) fn manifest_prefix(partition: i32) -> String {
    format!("M#{partition:010}#")
}

/// Sort key of one manifest chunk (by the base offset of its first range, never negative).
pub(super) fn manifest(partition: i32, base_offset: i64) -> String {
    format!("M#{partition:010}#{base_offset:020}")
}

pub(super) fn object_refs(object_key: &str) -> String {
    format!("O#{object_key}")
}

/// Partition key of a node's fence item (generation, version, unfolded tail).
pub(super) fn fence(node_id: &str) -> String {
    format!("F#{node_id}")
}

pub(super) fn node(id: &str) -> String {
    format!("N#{id}")
}

/// Sort key of a gateway's registration under [`GATEWAYS_PK`].
pub(super) fn gateway(id: &str) -> String {
    format!("G#{id}")
}

/// Node-index partition of a node's partitions.
pub(super) fn node_index(node_id: &str) -> String {
    format!("N#{node_id}")
}

/// Node-index sort key of a partition.
pub(super) fn node_index_sort(topic_id: Uuid, partition: i32) -> String {
    format!("{topic_id}#{partition:010}")
}

pub(super) fn group(cluster_id: Uuid, group: &str) -> String {
    format!("G#{cluster_id}#{group}")
}

/// Sort key of a group's marker item under its cluster.
pub(super) fn group_marker(group: &str) -> String {
    format!("G#{group}")
}

pub(super) fn offset(topic: &str, partition: i32) -> String {
    format!("O#{partition:010}#{topic}")
}

fn build_err(e: impl std::fmt::Display) -> MetadataError {
    MetadataError::Backend(format!("building a DynamoDB request: {e}"))
}

/// A transaction's put of `item`, under `condition` if any.
pub(super) fn put(
    table: &str,
    item: Item,
    condition: Option<&str>,
    values: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
) -> Result<TransactWriteItem> {
    let mut b = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_string));
    for (k, v) in values {
        b = b.expression_attribute_values(*k, v.clone());
    }
    Ok(TransactWriteItem::builder()
        .put(b.build().map_err(build_err)?)
        .build())
}

/// A transaction's update of one item.
pub(super) fn update(
    table: &str,
    pk: &str,
    sk: &str,
    expression: &str,
    condition: Option<&str>,
    values: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
) -> Result<TransactWriteItem> {
    let mut b = Update::builder()
        .table_name(table)
        .key("pk", s(pk))
        .key("sk", s(sk))
        .update_expression(expression)
        .set_condition_expression(condition.map(str::to_string));
    for (k, v) in values {
        b = b.expression_attribute_values(*k, v.clone());
    }
    Ok(TransactWriteItem::builder()
        .update(b.build().map_err(build_err)?)
        .build())
}

/// A transaction's delete of one item, under `condition` if any.
pub(super) fn delete(
    table: &str,
    pk: &str,
    sk: &str,
    condition: Option<&str>,
    values: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
) -> Result<TransactWriteItem> {
    let mut b = Delete::builder()
        .table_name(table)
        .key("pk", s(pk))
        .key("sk", s(sk))
        .set_condition_expression(condition.map(str::to_string));
    for (k, v) in values {
        b = b.expression_attribute_values(*k, v.clone());
    }
    Ok(TransactWriteItem::builder()
        .delete(b.build().map_err(build_err)?)
        .build())
}

/// The item of a partition owner. Its node-index attributes let a node find its partitions.
pub(super) fn owner_item(o: &PartitionOwner) -> Item {
    use super::exec::n;
    Item::from([
        ("pk".to_string(), s(topic(o.topic_id))),
        ("sk".to_string(), s(owner(o.partition))),
        ("tid".to_string(), s(o.topic_id.to_string())),
        ("part".to_string(), n(i64::from(o.partition))),
        ("node".to_string(), s(o.node_id.clone())),
        ("ep".to_string(), n(i64::from(o.epoch))),
        ("lso".to_string(), n(o.log_start_offset)),
        ("gpk".to_string(), s(node_index(&o.node_id))),
        (
            "gsk".to_string(),
            s(node_index_sort(o.topic_id, o.partition)),
        ),
    ])
}

/// Decodes an owner item (from the table or the node index).
pub(super) fn owner_from(item: &Item) -> Result<PartitionOwner> {
    let narrow = |name: &str| -> Result<i32> {
        let v = get_n(item, name)?;
        i32::try_from(v).map_err(|e| MetadataError::Corrupt(format!("{name}={v}: {e}")))
    };
    Ok(PartitionOwner {
        topic_id: Uuid::parse_str(get_s(item, "tid")?)
            .map_err(|e| MetadataError::Corrupt(format!("topic id: {e}")))?,
        partition: narrow("part")?,
        node_id: get_s(item, "node")?.to_string(),
        epoch: narrow("ep")?,
        log_start_offset: get_n(item, "lso")?,
    })
}
