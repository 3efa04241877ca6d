//! Conversions between SQLite columns and the domain types.
//!
//! Row mappers return `rusqlite::Result` so they plug into `query_row`/`query_map`; a column that
//! does not decode becomes `FromSqlConversionFailure`, which the error layer reports as
//! [`MetadataError::Corrupt`].

use std::collections::BTreeMap;

use rusqlite::types::Type;
use rusqlite::{Connection, Params, Row};
use uuid::Uuid;

use crate::error::{MetadataError, Result};
use crate::types::*;

/// Column list matching [`account`].
pub(super) const ACCOUNT_COLS: &str = "id, name, created_ms";
/// Column list matching [`cluster`].
pub(super) const CLUSTER_COLS: &str = "id, account_id, name, region, created_ms";
/// Column list matching [`access_key`].
pub(super) const ACCESS_KEY_COLS: &str =
    "id, sealed_secret, account_id, principal, status, expires_ms, created_ms";
/// Column list matching [`topic`].
pub(super) const TOPIC_COLS: &str =
    "id, cluster_id, name, partitions, configs, version, created_ms";
/// Column list matching [`owner`].
pub(super) const OWNER_COLS: &str = "topic_id, partition, node_id, epoch, log_start_offset";
/// Column list matching [`node`].
pub(super) const NODE_COLS: &str = "id, rpc_addr, cert_der, heartbeat_ms";
/// Column list matching [`manifest_entry`].
pub(super) const MANIFEST_COLS: &str =
    "topic_id, partition, base_offset, end_offset, max_timestamp_ms, object_key, position, length";
/// Column list matching [`producer_snapshot`].
pub(super) const SNAPSHOT_COLS: &str = "producer_id, producer_epoch, last_sequence, last_offset";
/// Column list matching [`committed_offset`].
pub(super) const OFFSET_COLS: &str =
    r#"topic, partition, "offset", leader_epoch, metadata, commit_ms"#;

/// Runs the query `sql` with `params` and maps every result row with `map`.
pub(super) fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let out = stmt
        .query_map(params, map)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(out)
}

fn bad_column(
    idx: usize,
    ty: Type,
    e: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, ty, Box::new(e))
}

/// Reads a uuid stored as text.
pub(super) fn uuid_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(idx)?;
    Uuid::parse_str(&text).map_err(|e| bad_column(idx, Type::Text, e))
}

/// Reads an unsigned 64-bit value stored as SQLite's signed integer.
fn u64_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|e| bad_column(idx, Type::Integer, e))
}

/// Converts a `u64` for storage; SQLite integers are signed 64-bit.
pub(super) fn u64_to_sql(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v)
        .map_err(|_| MetadataError::InvalidArgument(format!("{what} {v} exceeds i64::MAX")))
}

/// The stored text of a [`KeyStatus`].
pub(super) fn status_to_sql(s: KeyStatus) -> &'static str {
    match s {
        KeyStatus::Active => "active",
        KeyStatus::Inactive => "inactive",
    }
}

/// Encodes topic configs as JSON.
pub(super) fn configs_to_sql(configs: &BTreeMap<String, String>) -> Result<String> {
    serde_json::to_string(configs).map_err(|e| MetadataError::InvalidArgument(e.to_string()))
}

/// Maps an `accounts` row.
pub(super) fn account(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: row.get(0)?,
        name: row.get(1)?,
        created_ms: row.get(2)?,
    })
}

/// Maps a `clusters` row.
pub(super) fn cluster(row: &Row<'_>) -> rusqlite::Result<Cluster> {
    Ok(Cluster {
        id: uuid_at(row, 0)?,
        account_id: row.get(1)?,
        name: row.get(2)?,
        region: row.get(3)?,
        created_ms: row.get(4)?,
    })
}

/// Maps an `access_keys` row.
pub(super) fn access_key(row: &Row<'_>) -> rusqlite::Result<AccessKey> {
    let status: String = row.get(4)?;
    let status = match status.as_str() {
        "active" => KeyStatus::Active,
        "inactive" => KeyStatus::Inactive,
        other => {
            return Err(bad_column(
                4,
                Type::Text,
                MetadataError::Corrupt(format!("unknown key status {other:?}")),
            ))
        }
    };
    Ok(AccessKey {
        id: row.get(0)?,
        sealed_secret: row.get(1)?,
        account_id: row.get(2)?,
        principal: row.get(3)?,
        status,
        expires_ms: row.get(5)?,
        created_ms: row.get(6)?,
    })
}

/// Maps a `topics` row.
pub(super) fn topic(row: &Row<'_>) -> rusqlite::Result<Topic> {
    let configs: String = row.get(4)?;
    let configs = serde_json::from_str(&configs).map_err(|e| bad_column(4, Type::Text, e))?;
    Ok(Topic {
        id: uuid_at(row, 0)?,
        cluster_id: uuid_at(row, 1)?,
        name: row.get(2)?,
        partitions: row.get(3)?,
        configs,
        version: row.get(5)?,
        created_ms: row.get(6)?,
    })
}

/// Maps a `partition_owners` row.
pub(super) fn owner(row: &Row<'_>) -> rusqlite::Result<PartitionOwner> {
    Ok(PartitionOwner {
        topic_id: uuid_at(row, 0)?,
        partition: row.get(1)?,
        node_id: row.get(2)?,
        epoch: row.get(3)?,
        log_start_offset: row.get(4)?,
    })
}

/// Maps a `nodes` row.
pub(super) fn node(row: &Row<'_>) -> rusqlite::Result<NodeInfo> {
    Ok(NodeInfo {
        id: row.get(0)?,
        rpc_addr: row.get(1)?,
        cert_der: row.get(2)?,
        heartbeat_ms: row.get(3)?,
    })
}

/// Maps a `manifest` row.
pub(super) fn manifest_entry(row: &Row<'_>) -> rusqlite::Result<ManifestEntry> {
    Ok(ManifestEntry {
        topic_id: uuid_at(row, 0)?,
        partition: row.get(1)?,
        base_offset: row.get(2)?,
        end_offset: row.get(3)?,
        max_timestamp_ms: row.get(4)?,
        object_key: row.get(5)?,
        position: u64_at(row, 6)?,
        length: u64_at(row, 7)?,
    })
}

/// Maps a `producer_snapshots` row.
pub(super) fn producer_snapshot(row: &Row<'_>) -> rusqlite::Result<ProducerSnapshot> {
    Ok(ProducerSnapshot {
        producer_id: row.get(0)?,
        producer_epoch: row.get(1)?,
        last_sequence: row.get(2)?,
        last_offset: row.get(3)?,
    })
}

/// Maps a `group_offsets` row.
pub(super) fn committed_offset(row: &Row<'_>) -> rusqlite::Result<CommittedOffset> {
    Ok(CommittedOffset {
        topic: row.get(0)?,
        partition: row.get(1)?,
        offset: row.get(2)?,
        leader_epoch: row.get(3)?,
        metadata: row.get(4)?,
        commit_ms: row.get(5)?,
    })
}
