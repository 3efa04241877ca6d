//! Principals, the authorization epoch, cluster settings, ACLs and usage records.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::rows;
use crate::error::{MetadataError, Result};
use crate::types::*;

const PRINCIPAL_COLS: &str = "account_id, name, policies, scram, version, created_ms";

fn principal(row: &Row<'_>) -> rusqlite::Result<Principal> {
    let policies: String = row.get(2)?;
    let policies: BTreeMap<String, String> = serde_json::from_str(&policies).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Principal {
        account_id: row.get(0)?,
        name: row.get(1)?,
        policies,
        scram: row.get(3)?,
        version: row.get(4)?,
        created_ms: row.get(5)?,
    })
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v)
        .map_err(|e| MetadataError::InvalidArgument(format!("record does not encode: {e}")))
}

/// Raises the authorization epoch (inside the caller's transaction).
pub(super) fn bump_auth_epoch(conn: &Connection) -> Result<()> {
    conn.execute("UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 0", [])?;
    Ok(())
}

pub(super) fn auth_epoch(conn: &Connection) -> Result<i64> {
    Ok(
        conn.query_row("SELECT epoch FROM auth_epoch WHERE id = 0", [], |r| {
            r.get(0)
        })?,
    )
}

pub(super) fn delete_cluster(conn: &Connection, id: Uuid) -> Result<()> {
    let deleted = conn.execute("DELETE FROM clusters WHERE id = ?1", [id.to_string()])?;
    if deleted == 0 {
        return Err(MetadataError::NotFound {
            kind: "cluster",
            name: id.to_string(),
        });
    }
    Ok(())
}

pub(super) fn create_principal(conn: &Connection, p: &Principal) -> Result<()> {
    if p.version != 0 {
        return Err(MetadataError::InvalidArgument(format!(
            "a new principal has version 0, not {}",
            p.version
        )));
    }
    let inserted = conn.execute(
        "INSERT INTO principals (account_id, name, policies, scram, version, created_ms)
         VALUES (?1, ?2, ?3, ?4, 0, ?5) ON CONFLICT DO NOTHING",
        params![
            p.account_id,
            p.name,
            json(&p.policies)?,
            p.scram,
            p.created_ms
        ],
    )?;
    if inserted == 0 {
        return Err(MetadataError::AlreadyExists {
            kind: "principal",
            name: format!("{}/{}", p.account_id, p.name),
        });
    }
    Ok(())
}

pub(super) fn get_principal(
    conn: &Connection,
    account_id: &str,
    name: &str,
) -> Result<Option<Principal>> {
    let sql =
        format!("SELECT {PRINCIPAL_COLS} FROM principals WHERE account_id = ?1 AND name = ?2");
    Ok(conn
        .query_row(&sql, [account_id, name], principal)
        .optional()?)
}

pub(super) fn list_principals(conn: &Connection, account_id: &str) -> Result<Vec<Principal>> {
    let sql =
        format!("SELECT {PRINCIPAL_COLS} FROM principals WHERE account_id = ?1 ORDER BY name");
    rows::query_all(conn, &sql, [account_id], principal)
}

pub(super) fn update_principal(conn: &Connection, p: &Principal) -> Result<Principal> {
    let Some(stored) = get_principal(conn, &p.account_id, &p.name)? else {
        return Err(MetadataError::NotFound {
            kind: "principal",
            name: format!("{}/{}", p.account_id, p.name),
        });
    };
    if stored.version != p.version {
        return Err(MetadataError::Conflict(format!(
            "principal {}/{} is at version {}, not {}",
            p.account_id, p.name, stored.version, p.version
        )));
    }
    conn.execute(
        "UPDATE principals SET policies = ?3, scram = ?4, version = version + 1
         WHERE account_id = ?1 AND name = ?2",
        params![p.account_id, p.name, json(&p.policies)?, p.scram],
    )?;
    bump_auth_epoch(conn)?;
    Ok(Principal {
        version: stored.version + 1,
        created_ms: stored.created_ms,
        ..p.clone()
    })
}

pub(super) fn delete_principal(conn: &Connection, account_id: &str, name: &str) -> Result<()> {
    let deleted = conn.execute(
        "DELETE FROM principals WHERE account_id = ?1 AND name = ?2",
        [account_id, name],
    )?;
    if deleted > 0 {
        bump_auth_epoch(conn)?;
    }
    Ok(())
}

pub(super) fn get_cluster_settings(
    conn: &Connection,
    cluster_id: Uuid,
) -> Result<Option<ClusterSettings>> {
    let row = conn
        .query_row(
            "SELECT limits, version FROM cluster_settings WHERE cluster_id = ?1",
            [cluster_id.to_string()],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )
        .optional()?;
    row.map(|(limits, version)| {
        Ok(ClusterSettings {
            cluster_id,
            limits: serde_json::from_str(&limits)?,
            version,
        })
    })
    .transpose()
}

pub(super) fn put_cluster_settings(
    conn: &Connection,
    s: &ClusterSettings,
) -> Result<ClusterSettings> {
    let stored = get_cluster_settings(conn, s.cluster_id)?;
    let conflict = |now: i64| {
        MetadataError::Conflict(format!(
            "settings of cluster {} are at version {now}, not {}",
            s.cluster_id, s.version
        ))
    };
    match stored {
        None if s.version == 0 => {
            conn.execute(
                "INSERT INTO cluster_settings (cluster_id, limits, version) VALUES (?1, ?2, 1)",
                params![s.cluster_id.to_string(), json(&s.limits)?],
            )?;
        }
        None => return Err(conflict(0)),
        Some(now) if now.version != s.version => return Err(conflict(now.version)),
        Some(_) => {
            conn.execute(
                "UPDATE cluster_settings SET limits = ?2, version = version + 1
                 WHERE cluster_id = ?1",
                params![s.cluster_id.to_string(), json(&s.limits)?],
            )?;
        }
    }
    Ok(ClusterSettings {
        version: s.version + 1,
        ..s.clone()
    })
}

pub(super) fn create_acls(
    conn: &Connection,
    cluster_id: Uuid,
    bindings: &[String],
) -> Result<usize> {
    let mut added = 0;
    for b in bindings {
        added += conn.execute(
            "INSERT INTO acls (cluster_id, binding) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![cluster_id.to_string(), b],
        )?;
    }
    // A new binding can grant access (or, as a Deny, take it away): gateways must drop their
    // cached ACLs within a poll, not after their cache TTL.
    if added > 0 {
        bump_auth_epoch(conn)?;
    }
    Ok(added)
}

pub(super) fn list_acls(conn: &Connection, cluster_id: Uuid) -> Result<Vec<String>> {
    rows::query_all(
        conn,
        "SELECT binding FROM acls WHERE cluster_id = ?1 ORDER BY binding",
        [cluster_id.to_string()],
        |r| r.get(0),
    )
}

pub(super) fn delete_acls(
    conn: &Connection,
    cluster_id: Uuid,
    bindings: &[String],
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for b in bindings {
        if conn.execute(
            "DELETE FROM acls WHERE cluster_id = ?1 AND binding = ?2",
            params![cluster_id.to_string(), b],
        )? > 0
        {
            removed.push(b.clone());
        }
    }
    if !removed.is_empty() {
        bump_auth_epoch(conn)?;
    }
    removed.sort();
    removed.dedup();
    Ok(removed)
}

pub(super) fn record_usage(conn: &Connection, r: &UsageRecord) -> Result<()> {
    conn.execute(
        "INSERT INTO usage (cluster_id, period_start_ms, source, record) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (cluster_id, period_start_ms, source) DO UPDATE SET record = excluded.record",
        params![
            r.cluster_id.to_string(),
            r.period_start_ms,
            r.source,
            json(r)?
        ],
    )?;
    Ok(())
}

pub(super) fn list_usage(
    conn: &Connection,
    cluster_id: Uuid,
    from_ms: Millis,
    to_ms: Millis,
) -> Result<Vec<UsageRecord>> {
    let records: Vec<String> = rows::query_all(
        conn,
        "SELECT record FROM usage WHERE cluster_id = ?1 AND period_start_ms >= ?2
         AND period_start_ms < ?3 ORDER BY period_start_ms, source",
        params![cluster_id.to_string(), from_ms, to_ms],
        |r| r.get(0),
    )?;
    records
        .iter()
        .map(|r| Ok(serde_json::from_str(r)?))
        .collect()
}
