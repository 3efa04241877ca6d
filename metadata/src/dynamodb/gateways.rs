//! Gateway registrations: `GATEWAYS` / `G#<gateway>`, with the id in `gid` and the last
//! heartbeat in `hb`, so that a heartbeat is one small upsert and a listing one query.

use super::exec::{backend, get_n, get_s, n, s, Item};
use super::keys::{self, GATEWAYS_PK};
use super::DynamoStore;
use crate::error::Result;
use crate::types::*;

fn gateway_from(item: &Item) -> Result<GatewayInfo> {
    Ok(GatewayInfo {
        id: get_s(item, "gid")?.to_string(),
        heartbeat_ms: get_n(item, "hb")?,
    })
}

impl DynamoStore {
    pub(super) async fn d_heartbeat_gateway(&self, gateway_id: &str, now_ms: Millis) -> Result<()> {
        self.counters.write(1);
        // UpdateItem creates the item when absent: one request registers or renews.
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(GATEWAYS_PK))
            .key("sk", s(keys::gateway(gateway_id)))
            .update_expression("SET gid = :id, hb = :hb")
            .expression_attribute_values(":id", s(gateway_id))
            .expression_attribute_values(":hb", n(now_ms))
            .send()
            .await
            .map_err(|e| backend("heartbeat_gateway", e))?;
        Ok(())
    }

    pub(super) async fn d_list_gateways(&self) -> Result<Vec<GatewayInfo>> {
        let mut out: Vec<GatewayInfo> = self
            .query_prefix("list_gateways", GATEWAYS_PK, "G#")
            .await?
            .iter()
            .map(gateway_from)
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub(super) async fn d_remove_gateway(&self, gateway_id: &str) -> Result<()> {
        self.counters.write(1);
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(GATEWAYS_PK))
            .key("sk", s(keys::gateway(gateway_id)))
            .send()
            .await
            .map_err(|e| backend("remove_gateway", e))?;
        Ok(())
    }
}
