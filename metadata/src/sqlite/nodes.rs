//! Storage-node and gateway registrations and heartbeats.

use rusqlite::{params, Connection, OptionalExtension};

use super::rows::{self, NODE_COLS};
use crate::error::{MetadataError, Result};
use crate::types::*;

pub(super) fn register_node(conn: &Connection, n: &NodeInfo) -> Result<()> {
    conn.execute(
        "INSERT INTO nodes (id, rpc_addr, cert_der, heartbeat_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET
            rpc_addr = excluded.rpc_addr,
            cert_der = excluded.cert_der,
            heartbeat_ms = excluded.heartbeat_ms",
        params![n.id, n.rpc_addr, n.cert_der, n.heartbeat_ms],
    )?;
    Ok(())
}

pub(super) fn heartbeat_node(conn: &Connection, node_id: &str, now_ms: Millis) -> Result<()> {
    let updated = conn.execute(
        "UPDATE nodes SET heartbeat_ms = ?2 WHERE id = ?1",
        params![node_id, now_ms],
    )?;
    if updated == 0 {
        return Err(MetadataError::NotFound {
            kind: "node",
            name: node_id.to_string(),
        });
    }
    Ok(())
}

pub(super) fn get_node(conn: &Connection, node_id: &str) -> Result<Option<NodeInfo>> {
    let sql = format!("SELECT {NODE_COLS} FROM nodes WHERE id = ?1");
    Ok(conn.query_row(&sql, [node_id], rows::node).optional()?)
}

pub(super) fn list_nodes(conn: &Connection) -> Result<Vec<NodeInfo>> {
    let sql = format!("SELECT {NODE_COLS} FROM nodes ORDER BY id");
    rows::query_all(conn, &sql, [], rows::node)
}

pub(super) fn heartbeat_gateway(conn: &Connection, gateway_id: &str, now_ms: Millis) -> Result<()> {
    conn.execute(
        "INSERT INTO gateways (id, heartbeat_ms) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
        params![gateway_id, now_ms],
    )?;
    Ok(())
}

pub(super) fn list_gateways(conn: &Connection) -> Result<Vec<GatewayInfo>> {
    rows::query_all(
        conn,
        "SELECT id, heartbeat_ms FROM gateways ORDER BY id",
        [],
        |r| {
            Ok(GatewayInfo {
                id: r.get(0)?,
                heartbeat_ms: r.get(1)?,
            })
        },
    )
}

pub(super) fn remove_gateway(conn: &Connection, gateway_id: &str) -> Result<()> {
    conn.execute("DELETE FROM gateways WHERE id = ?1", [gateway_id])?;
    Ok(())
}
