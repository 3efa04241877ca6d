//! Accounts, clusters and access keys.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::rows::{self, ACCESS_KEY_COLS, ACCOUNT_COLS, CLUSTER_COLS};
use crate::error::{MetadataError, Result};
use crate::types::*;

pub(super) fn create_account(conn: &Connection, a: &Account) -> Result<()> {
    let inserted = conn.execute(
        "INSERT INTO accounts (id, name, created_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        params![a.id, a.name, a.created_ms],
    )?;
    if inserted == 0 {
        return Err(MetadataError::AlreadyExists {
            kind: "account",
            name: a.id.clone(),
        });
    }
    Ok(())
}

pub(super) fn get_account(conn: &Connection, id: &str) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?1");
    Ok(conn.query_row(&sql, [id], rows::account).optional()?)
}

pub(super) fn create_cluster(conn: &Connection, c: &Cluster) -> Result<()> {
    // Checked first so the error names the clash the caller can act on (the name); an id clash
    // (a reused uuid) falls through to the insert below.
    if get_cluster_by_name(conn, &c.account_id, &c.name)?.is_some() {
        return Err(MetadataError::AlreadyExists {
            kind: "cluster",
            name: format!("{}/{}", c.account_id, c.name),
        });
    }
    let inserted = conn.execute(
        "INSERT INTO clusters (id, account_id, name, region, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        params![
            c.id.to_string(),
            c.account_id,
            c.name,
            c.region,
            c.created_ms
        ],
    )?;
    if inserted == 0 {
        return Err(MetadataError::AlreadyExists {
            kind: "cluster",
            name: c.id.to_string(),
        });
    }
    Ok(())
}

pub(super) fn get_cluster(conn: &Connection, id: Uuid) -> Result<Option<Cluster>> {
    let sql = format!("SELECT {CLUSTER_COLS} FROM clusters WHERE id = ?1");
    Ok(conn
        .query_row(&sql, [id.to_string()], rows::cluster)
        .optional()?)
}

pub(super) fn get_cluster_by_name(
    conn: &Connection,
    account_id: &str,
    name: &str,
) -> Result<Option<Cluster>> {
    let sql = format!("SELECT {CLUSTER_COLS} FROM clusters WHERE account_id = ?1 AND name = ?2");
    Ok(conn
        .query_row(&sql, [account_id, name], rows::cluster)
        .optional()?)
}

pub(super) fn list_clusters(conn: &Connection, account_id: &str) -> Result<Vec<Cluster>> {
    let sql = format!("SELECT {CLUSTER_COLS} FROM clusters WHERE account_id = ?1 ORDER BY name");
    rows::query_all(conn, &sql, [account_id], rows::cluster)
}

pub(super) fn create_access_key(conn: &Connection, k: &AccessKey) -> Result<()> {
    let inserted = conn.execute(
        "INSERT INTO access_keys
            (id, account_id, principal, sealed_secret, status, expires_ms, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        params![
            k.id,
            k.account_id,
            k.principal,
            k.sealed_secret,
            rows::status_to_sql(k.status),
            k.expires_ms,
            k.created_ms
        ],
    )?;
    if inserted == 0 {
        return Err(MetadataError::AlreadyExists {
            kind: "access key",
            name: k.id.clone(),
        });
    }
    Ok(())
}

pub(super) fn get_access_key(conn: &Connection, id: &str) -> Result<Option<AccessKey>> {
    let sql = format!("SELECT {ACCESS_KEY_COLS} FROM access_keys WHERE id = ?1");
    Ok(conn.query_row(&sql, [id], rows::access_key).optional()?)
}

pub(super) fn list_access_keys(conn: &Connection, account_id: &str) -> Result<Vec<AccessKey>> {
    let sql =
        format!("SELECT {ACCESS_KEY_COLS} FROM access_keys WHERE account_id = ?1 ORDER BY id");
    rows::query_all(conn, &sql, [account_id], rows::access_key)
}

pub(super) fn set_access_key_status(conn: &Connection, id: &str, status: KeyStatus) -> Result<()> {
    let updated = conn.execute(
        "UPDATE access_keys SET status = ?2 WHERE id = ?1",
        params![id, rows::status_to_sql(status)],
    )?;
    if updated == 0 {
        return Err(MetadataError::NotFound {
            kind: "access key",
            name: id.to_string(),
        });
    }
    super::principals::bump_auth_epoch(conn)
}

pub(super) fn delete_access_key(conn: &Connection, id: &str) -> Result<()> {
    if conn.execute("DELETE FROM access_keys WHERE id = ?1", [id])? > 0 {
        super::principals::bump_auth_epoch(conn)?;
    }
    Ok(())
}
