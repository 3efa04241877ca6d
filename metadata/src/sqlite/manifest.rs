//! The tiered-data manifest and idempotent-producer snapshots.

use rusqlite::{params, Connection, OptionalExtension, Params};
use uuid::Uuid;

use super::rows::{self, MANIFEST_COLS, SNAPSHOT_COLS};
use super::topics;
use crate::error::{MetadataError, Result};
use crate::store::PartitionCommit;
use crate::types::*;
use crate::validate;

/// Removes the manifest entries matching `filter` (a `WHERE` clause over `manifest`) and returns
/// them ordered by partition and base offset.
pub(super) fn take_entries<P: Params + Copy>(
    conn: &Connection,
    filter: &str,
    params: P,
) -> Result<Vec<ManifestEntry>> {
    let sql = format!(
        "SELECT {MANIFEST_COLS} FROM manifest WHERE {filter} ORDER BY partition, base_offset"
    );
    let entries = rows::query_all(conn, &sql, params, rows::manifest_entry)?;
    conn.execute(&format!("DELETE FROM manifest WHERE {filter}"), params)?;
    Ok(entries)
}

pub(super) fn commit_manifest(
    conn: &Connection,
    node_id: &str,
    commits: &[PartitionCommit],
) -> Result<()> {
    // Every fence is checked before anything is written, so a refused call reports the first
    // stale partition without relying on rollback for its message; rollback (by the caller's
    // transaction) still covers failures in the writes themselves.
    for c in commits {
        let owner = topics::fenced_owner(conn, c.topic_id, c.partition)?;
        validate::commit_fence(c, node_id, &owner)?;
    }
    for c in commits {
        for e in &c.entries {
            insert_entry(conn, c, e)?;
        }
        replace_snapshots(conn, c.topic_id, c.partition, &c.producers)?;
    }
    Ok(())
}

fn insert_entry(conn: &Connection, c: &PartitionCommit, e: &ManifestEntry) -> Result<()> {
    validate::manifest_entry(c, e)?;
    // Stored entries never overlap, so among them only the last one starting below `end_offset`
    // can overlap the new range.
    let sql = format!(
        "SELECT {MANIFEST_COLS} FROM manifest
         WHERE topic_id = ?1 AND partition = ?2 AND base_offset < ?3
         ORDER BY base_offset DESC LIMIT 1"
    );
    let prev = conn
        .query_row(
            &sql,
            params![e.topic_id.to_string(), e.partition, e.end_offset],
            rows::manifest_entry,
        )
        .optional()?;
    if let Some(prev) = prev.filter(|p| p.end_offset > e.base_offset) {
        if &prev == e {
            // A retried commit whose first attempt landed: already done.
            return Ok(());
        }
        return Err(validate::manifest_overlap(e, &prev));
    }
    conn.execute(
        "INSERT INTO manifest (topic_id, partition, base_offset, end_offset, max_timestamp_ms,
                               object_key, position, length)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            e.topic_id.to_string(),
            e.partition,
            e.base_offset,
            e.end_offset,
            e.max_timestamp_ms,
            e.object_key,
            rows::u64_to_sql(e.position, "manifest entry position")?,
            rows::u64_to_sql(e.length, "manifest entry length")?
        ],
    )?;
    Ok(())
}

fn replace_snapshots(
    conn: &Connection,
    topic_id: Uuid,
    partition: i32,
    producers: &[ProducerSnapshot],
) -> Result<()> {
    let id = topic_id.to_string();
    conn.execute(
        "DELETE FROM producer_snapshots WHERE topic_id = ?1 AND partition = ?2",
        params![id, partition],
    )?;
    // Upsert rather than insert: a snapshot list naming one producer twice keeps the last.
    let mut stmt = conn.prepare(
        "INSERT INTO producer_snapshots
            (topic_id, partition, producer_id, producer_epoch, last_sequence, last_offset)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (topic_id, partition, producer_id) DO UPDATE SET
            producer_epoch = excluded.producer_epoch,
            last_sequence = excluded.last_sequence,
            last_offset = excluded.last_offset",
    )?;
    for p in producers {
        stmt.execute(params![
            id,
            partition,
            p.producer_id,
            p.producer_epoch,
            p.last_sequence,
            p.last_offset
        ])?;
    }
    Ok(())
}

pub(super) fn list_manifest(
    conn: &Connection,
    topic_id: Uuid,
    partition: i32,
) -> Result<Vec<ManifestEntry>> {
    let sql = format!(
        "SELECT {MANIFEST_COLS} FROM manifest WHERE topic_id = ?1 AND partition = ?2
         ORDER BY base_offset"
    );
    rows::query_all(
        conn,
        &sql,
        params![topic_id.to_string(), partition],
        rows::manifest_entry,
    )
}

pub(super) fn manifest_references(conn: &Connection, object_key: &str) -> Result<usize> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM manifest WHERE object_key = ?1",
        [object_key],
        |r| r.get(0),
    )?;
    usize::try_from(n).map_err(|e| MetadataError::Corrupt(format!("reference count {n}: {e}")))
}

pub(super) fn producer_snapshots(
    conn: &Connection,
    topic_id: Uuid,
    partition: i32,
) -> Result<Vec<ProducerSnapshot>> {
    let sql = format!(
        "SELECT {SNAPSHOT_COLS} FROM producer_snapshots WHERE topic_id = ?1 AND partition = ?2
         ORDER BY producer_id"
    );
    rows::query_all(
        conn,
        &sql,
        params![topic_id.to_string(), partition],
        rows::producer_snapshot,
    )
}
