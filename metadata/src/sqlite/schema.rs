//! Tables and migrations of the metadata file.
//!
//! Columns that are looked up, ordered or conditioned on (ids, names, epochs, versions, offsets)
//! are real columns; free-form data (topic configs) is JSON. Uuids are stored as hyphenated
//! lowercase text so the file stays readable with the `sqlite3` shell.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::{MetadataError, Result};

/// Migrations in order; migration `i` brings the schema from version `i` to `i + 1`. Never edit a
/// released entry: append a new one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE clusters (
    id          TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    region      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    UNIQUE (account_id, name)
) WITHOUT ROWID;

CREATE TABLE access_keys (
    id             TEXT PRIMARY KEY NOT NULL,
    account_id     TEXT NOT NULL,
    principal      TEXT NOT NULL,
    sealed_secret  BLOB NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    expires_ms     INTEGER,
    created_ms     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX access_keys_by_account ON access_keys (account_id, id);

CREATE TABLE topics (
    id          TEXT PRIMARY KEY NOT NULL,
    cluster_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    partitions  INTEGER NOT NULL,
    configs     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    UNIQUE (cluster_id, name)
) WITHOUT ROWID;

CREATE TABLE partition_owners (
    topic_id          TEXT NOT NULL,
    partition         INTEGER NOT NULL,
    node_id           TEXT NOT NULL,
    epoch             INTEGER NOT NULL,
    log_start_offset  INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition)
) WITHOUT ROWID;
CREATE INDEX partition_owners_by_node ON partition_owners (node_id, topic_id, partition);

CREATE TABLE nodes (
    id            TEXT PRIMARY KEY NOT NULL,
    rpc_addr      TEXT NOT NULL,
    cert_der      BLOB NOT NULL,
    heartbeat_ms  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE manifest (
    topic_id          TEXT NOT NULL,
    partition         INTEGER NOT NULL,
    base_offset       INTEGER NOT NULL,
    end_offset        INTEGER NOT NULL,
    max_timestamp_ms  INTEGER NOT NULL,
    object_key        TEXT NOT NULL,
    position          INTEGER NOT NULL,
    length            INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, base_offset)
) WITHOUT ROWID;
CREATE INDEX manifest_by_object ON manifest (object_key);

CREATE TABLE producer_snapshots (
    topic_id        TEXT NOT NULL,
    partition       INTEGER NOT NULL,
    producer_id     INTEGER NOT NULL,
    producer_epoch  INTEGER NOT NULL,
    last_sequence   INTEGER NOT NULL,
    last_offset     INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, producer_id)
) WITHOUT ROWID;

CREATE TABLE group_offsets (
    cluster_id    TEXT NOT NULL,
    group_id      TEXT NOT NULL,
    topic         TEXT NOT NULL,
    partition     INTEGER NOT NULL,
    "offset"      INTEGER NOT NULL,
    leader_epoch  INTEGER NOT NULL,
    metadata      TEXT NOT NULL,
    commit_ms     INTEGER NOT NULL,
    PRIMARY KEY (cluster_id, group_id, topic, partition)
) WITHOUT ROWID;

-- A single row: the next producer id to hand out.
CREATE TABLE producer_id_counter (
    id       INTEGER PRIMARY KEY CHECK (id = 0),
    next_id  INTEGER NOT NULL
);
INSERT INTO producer_id_counter (id, next_id) VALUES (0, 0);
"#,
    r#"
CREATE TABLE principals (
    account_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    policies    TEXT NOT NULL,
    scram       TEXT,
    version     INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

-- A single row: raised by every change that can take access away.
CREATE TABLE auth_epoch (
    id     INTEGER PRIMARY KEY CHECK (id = 0),
    epoch  INTEGER NOT NULL
);
INSERT INTO auth_epoch (id, epoch) VALUES (0, 0);

CREATE TABLE cluster_settings (
    cluster_id  TEXT PRIMARY KEY NOT NULL,
    limits      TEXT NOT NULL,
    version     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE acls (
    cluster_id  TEXT NOT NULL,
    binding     TEXT NOT NULL,
    PRIMARY KEY (cluster_id, binding)
) WITHOUT ROWID;

CREATE TABLE usage (
    cluster_id       TEXT NOT NULL,
    period_start_ms  INTEGER NOT NULL,
    source           TEXT NOT NULL,
    record           TEXT NOT NULL,
    PRIMARY KEY (cluster_id, period_start_ms, source)
) WITHOUT ROWID;
"#,
    r#"
-- Gateway processes and their last heartbeat (cluster-wide limits are split among the live ones).
CREATE TABLE gateways (
    id            TEXT PRIMARY KEY NOT NULL,
    heartbeat_ms  INTEGER NOT NULL
) WITHOUT ROWID;
"#,
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the file to [`SCHEMA_VERSION`], creating it from scratch if empty. Runs in one
/// `BEGIN IMMEDIATE` transaction so two processes opening a new file at once do not both
/// create tables.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);")?;
    let current: i64 = tx
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    if current < 0 {
        return Err(MetadataError::Corrupt(format!(
            "metadata file has invalid schema version {current}"
        )));
    }
    if current > SCHEMA_VERSION {
        return Err(MetadataError::Corrupt(format!(
            "metadata file has schema version {current}, newer than the {SCHEMA_VERSION} this \
             build understands; upgrade Fjord"
        )));
    }
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    // `current` is in 0..SCHEMA_VERSION here, so it fits a usize.
    let done = usize::try_from(current).unwrap_or(MIGRATIONS.len());
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        tracing::info!(from, to = from + 1, "migrating metadata schema");
        tx.execute_batch(sql)?;
    }
    tx.execute("DELETE FROM schema_version", [])?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [SCHEMA_VERSION],
    )?;
    tx.commit()?;
    Ok(())
}

/// The schema version stored in the file.
#[cfg(test)]
pub(crate) fn stored_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_reopens() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| MetadataError::Backend(e.to_string()))?;
        let path = dir.path().join("m.sqlite");
        let mut conn = Connection::open(&path)?;
        migrate(&mut conn)?;
        assert_eq!(stored_version(&conn)?, SCHEMA_VERSION);
        // A second run is a no-op (would fail with "table exists" otherwise).
        migrate(&mut conn)?;
        let rows: i64 = conn.query_row("SELECT count(*) FROM schema_version", [], |r| r.get(0))?;
        assert_eq!(rows, 1);
        Ok(())
    }

    #[test]
    fn upgrades_a_file_of_an_older_release() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| MetadataError::Backend(e.to_string()))?;
        let mut conn = Connection::open(dir.path().join("m.sqlite"))?;
        // A file as the release before the gateway registry left it (schema version 2).
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL);")?;
        for sql in &MIGRATIONS[..2] {
            conn.execute_batch(sql)?;
        }
        conn.execute("INSERT INTO schema_version (version) VALUES (2)", [])?;
        migrate(&mut conn)?;
        assert_eq!(stored_version(&conn)?, SCHEMA_VERSION);
        conn.execute(
            "INSERT INTO gateways (id, heartbeat_ms) VALUES ('gw', 1)",
            [],
        )?;
        Ok(())
    }

    #[test]
    fn refuses_a_newer_schema() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| MetadataError::Backend(e.to_string()))?;
        let mut conn = Connection::open(dir.path().join("m.sqlite"))?;
        migrate(&mut conn)?;
        conn.execute(
            "UPDATE schema_version SET version = ?1",
            [SCHEMA_VERSION + 1],
        )?;
        match migrate(&mut conn) {
            Err(MetadataError::Corrupt(msg)) => assert!(msg.contains("newer"), "{msg}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        Ok(())
    }
}
