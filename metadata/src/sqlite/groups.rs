//! Committed consumer-group offsets and the producer id counter.

use rusqlite::{params, Connection};
use uuid::Uuid;

use super::rows::{self, OFFSET_COLS};
use crate::error::{MetadataError, Result};
use crate::types::*;

pub(super) fn commit_offsets(
    conn: &Connection,
    cluster_id: Uuid,
    group: &str,
    offsets: &[CommittedOffset],
) -> Result<()> {
    let cluster = cluster_id.to_string();
    let mut stmt = conn.prepare(
        r#"INSERT INTO group_offsets
            (cluster_id, group_id, topic, partition, "offset", leader_epoch, metadata, commit_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (cluster_id, group_id, topic, partition) DO UPDATE SET
            "offset" = excluded."offset",
            leader_epoch = excluded.leader_epoch,
            metadata = excluded.metadata,
            commit_ms = excluded.commit_ms"#,
    )?;
    for o in offsets {
        stmt.execute(params![
            cluster,
            group,
            o.topic,
            o.partition,
            o.offset,
            o.leader_epoch,
            o.metadata,
            o.commit_ms
        ])?;
    }
    Ok(())
}

pub(super) fn fetch_offsets(
    conn: &Connection,
    cluster_id: Uuid,
    group: &str,
) -> Result<Vec<CommittedOffset>> {
    let sql = format!(
        "SELECT {OFFSET_COLS} FROM group_offsets WHERE cluster_id = ?1 AND group_id = ?2
         ORDER BY topic, partition"
    );
    rows::query_all(
        conn,
        &sql,
        params![cluster_id.to_string(), group],
        rows::committed_offset,
    )
}

pub(super) fn delete_group_offsets(conn: &Connection, cluster_id: Uuid, group: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM group_offsets WHERE cluster_id = ?1 AND group_id = ?2",
        params![cluster_id.to_string(), group],
    )?;
    Ok(())
}

pub(super) fn list_offset_groups(conn: &Connection, cluster_id: Uuid) -> Result<Vec<String>> {
    rows::query_all(
        conn,
        "SELECT DISTINCT group_id FROM group_offsets WHERE cluster_id = ?1 ORDER BY group_id",
        [cluster_id.to_string()],
        |r| r.get(0),
    )
}

/// Must run inside a `BEGIN IMMEDIATE` transaction: the read and the bump of the counter are
/// then one atomic step for every process sharing the file.
pub(super) fn allocate_producer_ids(conn: &Connection, count: i64) -> Result<i64> {
    if count < 1 {
        return Err(MetadataError::InvalidArgument(format!(
            "cannot allocate {count} producer ids"
        )));
    }
    let first: i64 = conn.query_row(
        "SELECT next_id FROM producer_id_counter WHERE id = 0",
        [],
        |r| r.get(0),
    )?;
    let next = first.checked_add(count).ok_or_else(|| {
        MetadataError::Conflict(format!(
            "producer id space exhausted: next id {first}, {count} requested"
        ))
    })?;
    conn.execute(
        "UPDATE producer_id_counter SET next_id = ?1 WHERE id = 0",
        [next],
    )?;
    Ok(first)
}
