//! Topics, partition owners, epoch-fenced claims and the log start offset.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::manifest;
use super::rows::{self, OWNER_COLS, TOPIC_COLS};
use crate::error::{MetadataError, Result};
use crate::types::*;
use crate::validate;

/// Checks every owner (see [`validate::owner`]). Duplicates are caught by the primary key on
/// insert.
fn validate_owners(topic: &Topic, owners: &[PartitionOwner]) -> Result<()> {
    owners.iter().try_for_each(|o| validate::owner(topic, o))
}

fn insert_owners(conn: &Connection, owners: &[PartitionOwner]) -> Result<()> {
    let mut stmt = conn.prepare(
        "INSERT INTO partition_owners (topic_id, partition, node_id, epoch, log_start_offset)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
    )?;
    for o in owners {
        let inserted = stmt.execute(params![
            o.topic_id.to_string(),
            o.partition,
            o.node_id,
            o.epoch,
            o.log_start_offset
        ])?;
        if inserted == 0 {
            return Err(validate::partition_exists(o.topic_id, o.partition));
        }
    }
    Ok(())
}

pub(super) fn create_topic(conn: &Connection, t: &Topic, owners: &[PartitionOwner]) -> Result<()> {
    validate::new_topic(t)?;
    validate_owners(t, owners)?;
    if get_topic(conn, t.cluster_id, &t.name)?.is_some() {
        return Err(MetadataError::AlreadyExists {
            kind: "topic",
            name: t.name.clone(),
        });
    }
    let inserted = conn.execute(
        "INSERT INTO topics (id, cluster_id, name, partitions, configs, version, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        params![
            t.id.to_string(),
            t.cluster_id.to_string(),
            t.name,
            t.partitions,
            rows::configs_to_sql(&t.configs)?,
            t.version,
            t.created_ms
        ],
    )?;
    if inserted == 0 {
        return Err(MetadataError::AlreadyExists {
            kind: "topic id",
            name: t.id.to_string(),
        });
    }
    insert_owners(conn, owners)
}

pub(super) fn get_topic(conn: &Connection, cluster_id: Uuid, name: &str) -> Result<Option<Topic>> {
    let sql = format!("SELECT {TOPIC_COLS} FROM topics WHERE cluster_id = ?1 AND name = ?2");
    Ok(conn
        .query_row(&sql, params![cluster_id.to_string(), name], rows::topic)
        .optional()?)
}

pub(super) fn get_topic_by_id(conn: &Connection, topic_id: Uuid) -> Result<Option<Topic>> {
    let sql = format!("SELECT {TOPIC_COLS} FROM topics WHERE id = ?1");
    Ok(conn
        .query_row(&sql, [topic_id.to_string()], rows::topic)
        .optional()?)
}

pub(super) fn list_topics(conn: &Connection, cluster_id: Uuid) -> Result<Vec<Topic>> {
    let sql = format!("SELECT {TOPIC_COLS} FROM topics WHERE cluster_id = ?1 ORDER BY name");
    rows::query_all(conn, &sql, [cluster_id.to_string()], rows::topic)
}

pub(super) fn update_topic(
    conn: &Connection,
    t: &Topic,
    new_owners: &[PartitionOwner],
) -> Result<Topic> {
    let stored = get_topic_by_id(conn, t.id)?.ok_or_else(|| validate::topic_not_found(t.id))?;
    validate::topic_update(&stored, t)?;
    validate_owners(t, new_owners)?;
    let updated = validate::updated_topic(&stored, t)?;
    conn.execute(
        "UPDATE topics SET partitions = ?2, configs = ?3, version = ?4 WHERE id = ?1",
        params![
            t.id.to_string(),
            updated.partitions,
            rows::configs_to_sql(&updated.configs)?,
            updated.version
        ],
    )?;
    insert_owners(conn, new_owners)?;
    Ok(updated)
}

pub(super) fn delete_topic(conn: &Connection, topic_id: Uuid) -> Result<Vec<ManifestEntry>> {
    let id = topic_id.to_string();
    let deleted = conn.execute("DELETE FROM topics WHERE id = ?1", [&id])?;
    if deleted == 0 {
        return Err(validate::topic_not_found(topic_id));
    }
    conn.execute("DELETE FROM partition_owners WHERE topic_id = ?1", [&id])?;
    conn.execute("DELETE FROM producer_snapshots WHERE topic_id = ?1", [&id])?;
    manifest::take_entries(conn, "topic_id = ?1", params![id])
}

pub(super) fn list_partition_owners(
    conn: &Connection,
    topic_id: Uuid,
) -> Result<Vec<PartitionOwner>> {
    let sql =
        format!("SELECT {OWNER_COLS} FROM partition_owners WHERE topic_id = ?1 ORDER BY partition");
    rows::query_all(conn, &sql, [topic_id.to_string()], rows::owner)
}

pub(super) fn get_partition_owner(
    conn: &Connection,
    topic_id: Uuid,
    partition: i32,
) -> Result<Option<PartitionOwner>> {
    let sql =
        format!("SELECT {OWNER_COLS} FROM partition_owners WHERE topic_id = ?1 AND partition = ?2");
    Ok(conn
        .query_row(&sql, params![topic_id.to_string(), partition], rows::owner)
        .optional()?)
}

/// Reads an owner row that a claim needs; `NotFound` if the partition is gone.
fn require_owner(conn: &Connection, topic_id: Uuid, partition: i32) -> Result<PartitionOwner> {
    get_partition_owner(conn, topic_id, partition)?
        .ok_or_else(|| validate::partition_not_found(topic_id, partition))
}

/// Reads the owner row a node's fenced write is conditioned on. A missing row (the topic was
/// deleted) is a `Conflict` like any other lost ownership: the writer must stop serving the
/// partition, which is what it does on `Conflict`.
pub(super) fn fenced_owner(
    conn: &Connection,
    topic_id: Uuid,
    partition: i32,
) -> Result<PartitionOwner> {
    get_partition_owner(conn, topic_id, partition)?
        .ok_or_else(|| validate::partition_gone(topic_id, partition))
}

pub(super) fn list_partitions_of_node(
    conn: &Connection,
    node_id: &str,
) -> Result<Vec<PartitionOwner>> {
    let sql = format!(
        "SELECT {OWNER_COLS} FROM partition_owners WHERE node_id = ?1
         ORDER BY topic_id, partition"
    );
    rows::query_all(conn, &sql, [node_id], rows::owner)
}

pub(super) fn claim_partition(
    conn: &Connection,
    topic_id: Uuid,
    partition: i32,
    node_id: &str,
    expected_epoch: i32,
) -> Result<PartitionOwner> {
    let mut owner = require_owner(conn, topic_id, partition)?;
    owner.epoch = validate::claim(&owner, expected_epoch)?;
    owner.node_id = node_id.to_string();
    conn.execute(
        "UPDATE partition_owners SET node_id = ?3, epoch = ?4
         WHERE topic_id = ?1 AND partition = ?2",
        params![topic_id.to_string(), partition, owner.node_id, owner.epoch],
    )?;
    tracing::info!(%topic_id, partition, node_id, epoch = owner.epoch, "partition claimed");
    Ok(owner)
}

pub(super) fn advance_log_start(
    conn: &Connection,
    topic_id: Uuid,
    partition: i32,
    epoch: i32,
    log_start_offset: i64,
) -> Result<Vec<ManifestEntry>> {
    validate::log_start_offset(topic_id, partition, log_start_offset)?;
    let owner = fenced_owner(conn, topic_id, partition)?;
    validate::epoch_fence(&owner, epoch)?;
    // Never lowered: a late retention pass must not resurrect deleted data.
    let start = owner.log_start_offset.max(log_start_offset);
    if start != owner.log_start_offset {
        conn.execute(
            "UPDATE partition_owners SET log_start_offset = ?3
             WHERE topic_id = ?1 AND partition = ?2",
            params![topic_id.to_string(), partition, start],
        )?;
    }
    manifest::take_entries(
        conn,
        "topic_id = ?1 AND partition = ?2 AND end_offset <= ?3",
        params![topic_id.to_string(), partition, start],
    )
}
