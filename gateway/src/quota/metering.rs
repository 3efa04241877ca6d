//! The metering task: every period, each served cluster's counters become a usage record
//! written with `MetadataStore::record_usage` (source = [`GatewayConfig::gateway_id`]).
//!
//! What a gateway records per cluster and period:
//! - `bytes_in`: record-batch bytes of the Produce requests it accepted (what MSK bills as
//!   data written); `bytes_out`: bytes of the Fetch responses it sent (MSK's BytesOut).
//! - `cluster_hours` and `partition_hours`: only when [`GatewayConfig::meter_cluster_hours`] is
//!   set, for the clusters it served in the period (partition counts sampled at every tick,
//!   at most a minute apart); otherwise 0, because several gateways serving a cluster would
//!   each count its hours. A deployment with several gateways should derive them from the
//!   cluster and topic records instead (not done yet).
//! - `storage_byte_hours`: always 0 here: each storage node writes it for the partitions it
//!   owns, in records of source `storage-node/<node id>` (see `fjord_storage_node::metering`).
//!
//! The control plane sums the records of all sources per period. A record that fails to be
//! written is retried at the next tick (the store keys records by cluster, source and period
//! start, so a retry never double-counts); at most [`MAX_PENDING`] wait.
//!
//! [`GatewayConfig::gateway_id`]: crate::GatewayConfig::gateway_id
//! [`GatewayConfig::meter_cluster_hours`]: crate::GatewayConfig::meter_cluster_hours

use std::sync::Arc;
use std::time::Duration;

use fjord_metadata::UsageRecord;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::connection::now_ms;
use crate::server::Gateway;

/// Records kept for retry at most; older ones are dropped with an error log.
pub const MAX_PENDING: usize = 10_000;
/// Longest time between partition-count samples.
const MAX_TICK: Duration = Duration::from_secs(60);

/// The task's state between ticks.
#[derive(Debug, Default)]
pub struct Meterer {
    pending: Vec<UsageRecord>,
    period_start_ms: Option<i64>,
}

impl Meterer {
    /// Samples partition counts at `now_ms` and, once a period has passed since the last
    /// drain, drains every served cluster into records and writes them. Returns the number of
    /// records written.
    pub async fn tick(&mut self, gw: &Gateway, now_ms: i64) -> usize {
        let period = i64::try_from(gw.config.metering_period.as_millis()).unwrap_or(i64::MAX);
        let start = *self.period_start_ms.get_or_insert(now_ms);
        let hours = gw.config.meter_cluster_hours;
        let entries = gw.quotas.entries();
        if hours {
            for e in &entries {
                let partitions = match gw.topics.list(e.cluster.id).await {
                    Ok(list) => list
                        .iter()
                        .map(|t| u64::try_from(t.topic.partitions).unwrap_or(0))
                        .sum(),
                    Err(err) => {
                        debug!(cluster = %e.cluster.id, error = %err, "partition count unavailable; keeping the last one");
                        continue;
                    }
                };
                e.meter.tick(now_ms, partitions, 0);
            }
        }
        if now_ms.saturating_sub(start) >= period {
            self.period_start_ms = Some(now_ms);
            for e in &entries {
                let r = e.meter.drain(now_ms);
                let (cluster_hours, partition_hours) = if hours {
                    (r.cluster_hours, r.partition_hours)
                } else {
                    (0.0, 0.0)
                };
                if r.bytes_in == 0 && r.bytes_out == 0 && cluster_hours == 0.0 {
                    continue;
                }
                self.pending.push(UsageRecord {
                    cluster_id: r.cluster_id,
                    source: gw.config.gateway_id.clone(),
                    period_start_ms: r.period_start_ms,
                    period_end_ms: r.period_end_ms,
                    cluster_hours,
                    partition_hours,
                    bytes_in: r.bytes_in,
                    bytes_out: r.bytes_out,
                    storage_byte_hours: 0.0,
                });
            }
            let dropped = gw.quotas.prune_idle();
            if dropped > 0 {
                debug!(dropped, "idle clusters forgotten");
            }
        }
        self.flush(gw).await
    }

    async fn flush(&mut self, gw: &Gateway) -> usize {
        let mut written = 0;
        let mut failed = Vec::new();
        for r in std::mem::take(&mut self.pending) {
            match gw.store.record_usage(&r).await {
                Ok(()) => written += 1,
                Err(e) => {
                    warn!(cluster = %r.cluster_id, error = %e, "writing a usage record failed; will retry");
                    failed.push(r);
                }
            }
        }
        if failed.len() > MAX_PENDING {
            let excess = failed.len() - MAX_PENDING;
            tracing::error!(
                excess,
                "usage records could not be written for too long; dropping the oldest"
            );
            failed.drain(..excess);
        }
        self.pending = failed;
        written
    }

    /// Records waiting to be written.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// Runs the metering task until `stop` turns true, then drains one last time so that nothing
/// counted is lost at shutdown.
pub(crate) async fn run(gw: Arc<Gateway>, mut stop: watch::Receiver<bool>) {
    let tick = gw.config.metering_period.min(MAX_TICK);
    let mut meterer = Meterer::default();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                meterer.tick(&gw, now_ms()).await;
            }
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    // Close the period early: the next process starts a new one.
    meterer.period_start_ms = Some(i64::MIN / 2);
    let written = meterer.tick(&gw, now_ms()).await;
    info!(
        written,
        pending = meterer.pending(),
        "usage metering stopped"
    );
}
