//! Per-cluster settings (limit overrides) and usage (the dimensions MSK Serverless bills on).
//! Fjord's own JSON API (see `openapi.json`).
//!
//! Raising a cluster's limits is an operator's decision rather than a tenant's (on AWS it goes
//! through service quotas), so these use Fjord's own actions, which tenant policies written
//! for MSK (`kafka:*`, `kafka-cluster:*`) do not grant: `fjord:GetClusterSettings`,
//! `fjord:PutClusterSettings`, `fjord:GetClusterUsage`, on the cluster ARN.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use fjord_metadata::{ClusterSettings, MetadataError, UsageRecord};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::msk::authorized_cluster;
use crate::request::{json, parse_json, Req};
use crate::server::{cluster_limits, limits_from_overrides, AppState};
use crate::time::{format_iso8601, parse_iso8601};

/// Longest usage range one request may read (31 days).
pub const MAX_USAGE_RANGE_MS: i64 = 31 * 24 * 3600 * 1000;
/// Attempts of the conditional settings write.
const PUT_ATTEMPTS: usize = 3;

/// `GET /v1/clusters/{clusterArn}/settings`: the stored overrides and the effective limits.
pub(crate) async fn get_settings(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let (cluster, cref) = authorized_cluster(&state, &req, "fjord:GetClusterSettings").await?;
    let stored = state.store.get_cluster_settings(cluster.id).await?;
    let effective = cluster_limits(state.store.as_ref(), cluster.id).await?;
    json(&json!({
        "clusterArn": cref.cluster_arn(),
        "limits": stored.as_ref().map(|s| s.limits.clone()).unwrap_or_default(),
        "effectiveLimits": effective,
        "version": stored.map(|s| s.version).unwrap_or(0),
    }))
}

#[derive(Deserialize)]
struct PutSettingsRequest {
    limits: Option<BTreeMap<String, i64>>,
}

/// `PUT /v1/clusters/{clusterArn}/settings` with `{"limits": {"max-partitions": 4800, …}}`:
/// replaces the overrides (kebab-case limit names; limits not named return to MSK
/// Serverless's defaults). Unknown names and values below 1 are refused.
pub(crate) async fn put_settings(
    State(state): State<AppState>,
    req: Req,
    body: Bytes,
) -> ApiResult<Response> {
    let (cluster, cref) = authorized_cluster(&state, &req, "fjord:PutClusterSettings").await?;
    let input: PutSettingsRequest = parse_json(&body)?;
    let limits = input.limits.ok_or_else(|| {
        ApiError::BadRequest("limits is required (an object, may be empty)".into())
    })?;
    if let Some((name, v)) = limits.iter().find(|(_, v)| **v < 1) {
        return Err(ApiError::BadRequest(format!(
            "limit {name} must be at least 1, not {v}"
        )));
    }
    let effective = limits_from_overrides(&limits)?;
    let mut stored = None;
    for _ in 0..PUT_ATTEMPTS {
        let version = state
            .store
            .get_cluster_settings(cluster.id)
            .await?
            .map(|s| s.version)
            .unwrap_or(0);
        let settings = ClusterSettings {
            cluster_id: cluster.id,
            limits: limits.clone(),
            version,
        };
        match state.store.put_cluster_settings(&settings).await {
            Ok(s) => {
                stored = Some(s);
                break;
            }
            Err(MetadataError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let stored = stored.ok_or_else(|| {
        ApiError::Conflict("the cluster's settings kept changing concurrently; retry".into())
    })?;
    state.forget_limits(cluster.id).await;
    tracing::info!(cluster = %cluster.name, limits = ?stored.limits, "cluster settings changed");
    json(&json!({
        "clusterArn": cref.cluster_arn(),
        "limits": stored.limits,
        "effectiveLimits": effective,
        "version": stored.version,
    }))
}

/// A time given as milliseconds since the epoch or as RFC 3339 UTC.
fn parse_time(name: &str, raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>()
        .ok()
        .or_else(|| parse_iso8601(raw))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{name} must be milliseconds since the epoch or an RFC 3339 UTC time"
            ))
        })
}

/// One billing period, summed over the processes that measured it.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct PeriodUsage {
    /// Period start (inclusive), ms.
    pub start_ms: i64,
    /// Period end (exclusive), ms.
    pub end_ms: i64,
    /// Cluster-hours.
    pub cluster_hours: f64,
    /// Partition-hours.
    pub partition_hours: f64,
    /// Bytes produced.
    pub bytes_in: u64,
    /// Bytes fetched.
    pub bytes_out: u64,
    /// Stored byte-hours.
    pub storage_byte_hours: f64,
}

impl PeriodUsage {
    fn add(&mut self, r: &UsageRecord) {
        self.cluster_hours += r.cluster_hours;
        self.partition_hours += r.partition_hours;
        self.bytes_in = self.bytes_in.saturating_add(r.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(r.bytes_out);
        self.storage_byte_hours += r.storage_byte_hours;
    }

    fn to_json(&self) -> Value {
        json!({
            "periodStart": format_iso8601(self.start_ms),
            "periodEnd": format_iso8601(self.end_ms),
            "clusterHours": self.cluster_hours,
            "partitionHours": self.partition_hours,
            "bytesIn": self.bytes_in,
            "bytesOut": self.bytes_out,
            "storageByteHours": self.storage_byte_hours,
        })
    }
}

/// Sums records per period (records come ordered by period start, then source). Cluster-hours
/// are not added across sources: every gateway and node that saw the cluster reports the hours
/// it was up, but the cluster existed once, so the largest report counts.
pub fn sum_periods(records: &[UsageRecord]) -> Vec<PeriodUsage> {
    let mut out: Vec<PeriodUsage> = Vec::new();
    for r in records {
        let same = out
            .last()
            .is_some_and(|p| p.start_ms == r.period_start_ms && p.end_ms == r.period_end_ms);
        if !same {
            out.push(PeriodUsage {
                start_ms: r.period_start_ms,
                end_ms: r.period_end_ms,
                ..Default::default()
            });
        }
        if let Some(p) = out.last_mut() {
            let cluster_hours = p.cluster_hours.max(r.cluster_hours);
            p.add(r);
            p.cluster_hours = cluster_hours;
        }
    }
    out
}

/// `GET /v1/clusters/{clusterArn}/usage?from=…&to=…`: usage per period in `[from, to)` (at
/// most 31 days; `to` defaults to now, `from` to 24 hours before `to`) and the totals.
pub(crate) async fn get_usage(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let (cluster, cref) = authorized_cluster(&state, &req, "fjord:GetClusterUsage").await?;
    let to = match req.query("to") {
        Some(raw) => parse_time("to", raw)?,
        None => req.now_ms,
    };
    let from = match req.query("from") {
        Some(raw) => parse_time("from", raw)?,
        None => to - 24 * 3600 * 1000,
    };
    if from >= to || to - from > MAX_USAGE_RANGE_MS {
        return Err(ApiError::BadRequest(
            "from must be before to, and the range at most 31 days".into(),
        ));
    }
    let records = state.store.list_usage(cluster.id, from, to).await?;
    let periods = sum_periods(&records);
    let mut total = PeriodUsage {
        start_ms: from,
        end_ms: to,
        ..Default::default()
    };
    for p in &periods {
        total.cluster_hours += p.cluster_hours;
        total.partition_hours += p.partition_hours;
        total.bytes_in = total.bytes_in.saturating_add(p.bytes_in);
        total.bytes_out = total.bytes_out.saturating_add(p.bytes_out);
        total.storage_byte_hours += p.storage_byte_hours;
    }
    json(&json!({
        "clusterArn": cref.cluster_arn(),
        "from": format_iso8601(from),
        "to": format_iso8601(to),
        "periods": periods.iter().map(PeriodUsage::to_json).collect::<Vec<_>>(),
        "total": total.to_json(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn record(source: &str, start: i64, hours: f64, bytes_in: u64) -> UsageRecord {
        UsageRecord {
            cluster_id: Uuid::nil(),
            source: source.into(),
            period_start_ms: start,
            period_end_ms: start + 3_600_000,
            cluster_hours: hours,
            partition_hours: 2.0,
            bytes_in,
            bytes_out: 1,
            storage_byte_hours: 10.0,
        }
    }

    #[test]
    fn periods_sum_sources_but_not_cluster_hours() {
        let records = [
            record("gw-1", 0, 1.0, 100),
            record("gw-2", 0, 0.5, 50),
            record("gw-1", 3_600_000, 1.0, 7),
        ];
        let periods = sum_periods(&records);
        assert_eq!(periods.len(), 2);
        assert_eq!(periods[0].cluster_hours, 1.0);
        assert_eq!(periods[0].partition_hours, 4.0);
        assert_eq!(periods[0].bytes_in, 150);
        assert_eq!(periods[0].bytes_out, 2);
        assert_eq!(periods[0].storage_byte_hours, 20.0);
        assert_eq!(periods[1].bytes_in, 7);
        assert!(sum_periods(&[]).is_empty());
    }
}
