//! Which gateways are alive, so that each enforces its share of every cluster-wide limit
//! ([`super::share`]).
//!
//! Every gateway process registers under a fresh id (a UUID per process run) and renews the
//! registration every [`GatewayConfig::membership_heartbeat`] (default 1 s) with
//! `MetadataStore::heartbeat_gateway`. At the same period it lists the registrations and counts
//! N: the gateways whose heartbeat is newer than three periods, itself always included (also
//! when its own write just failed, since it is serving). N goes to [`GatewayCount`], which
//! [`super::QuotaService`] reads on every request and rebuilds a cluster's limiters from when it
//! changed. A gateway that stops cleanly removes its registration, so the others take over its
//! share at their next refresh; one that crashes is no longer counted three periods later.
//!
//! When metadata cannot be reached, the last N is kept (the alternative, falling back to 1,
//! would let every cut-off gateway grant the full quota) and a warning is logged at most every
//! [`WARN_INTERVAL_MS`].
//!
//! Liveness compares heartbeat times written by other gateways with this one's clock, so it
//! assumes clocks agree to well within three periods (NTP does much better).
//!
//! Registrations left by crashed gateways are deleted by any gateway that sees them expired for
//! over [`SWEEP_AFTER_MS`] (or 100 periods, if longer), so the list stays as short as the set of
//! live gateways.
//!
//! [`GatewayConfig::membership_heartbeat`]: crate::GatewayConfig::membership_heartbeat

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fjord_metadata::MetadataStore;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::share::GatewayCount;

/// A gateway is alive while its heartbeat is newer than this many periods.
const LIVE_PERIODS: i64 = 3;
/// At most one warning about unreachable metadata per this many ms.
pub const WARN_INTERVAL_MS: i64 = 30_000;
/// Registrations expired for longer than this are deleted (at least 100 periods).
pub const SWEEP_AFTER_MS: i64 = 10 * 60 * 1000;

/// This gateway's registration and the live-gateway count; see the module docs.
pub struct Membership {
    store: Arc<dyn MetadataStore>,
    id: String,
    period_ms: i64,
    count: GatewayCount,
    last_warn_ms: AtomicI64,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("id", &self.id)
            .field("period_ms", &self.period_ms)
            .field("gateways", &self.count.get())
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, ms)
}

impl Membership {
    /// A membership under a fresh id, heartbeating every `period` and publishing the live
    /// count to `count`.
    pub fn new(store: Arc<dyn MetadataStore>, period: Duration, count: GatewayCount) -> Self {
        Self {
            store,
            id: uuid::Uuid::new_v4().to_string(),
            period_ms: ms(period).max(1),
            count,
            last_warn_ms: AtomicI64::new(i64::MIN),
        }
    }

    /// This gateway's registration id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Live gateways as last counted, this one included.
    pub fn gateways(&self) -> u64 {
        self.count.get()
    }

    fn warn_due(&self, now_ms: i64) -> bool {
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        now_ms.saturating_sub(last) >= WARN_INTERVAL_MS
            && self
                .last_warn_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// One round at `now_ms`: renews this gateway's registration, counts the live gateways,
    /// publishes the count and deletes long-expired registrations. Returns the count in effect
    /// (the previous one if the registrations could not be read).
    pub async fn refresh(&self, now_ms: i64) -> u64 {
        if let Err(e) = self.store.heartbeat_gateway(&self.id, now_ms).await {
            // Still counted below: this gateway serves whether or not the write landed.
            if self.warn_due(now_ms) {
                warn!(
                    gateway = %self.id,
                    error = %e,
                    "gateway heartbeat failed (repeats within 30 s are logged at debug)"
                );
            } else {
                debug!(gateway = %self.id, error = %e, "gateway heartbeat failed");
            }
        }
        let list = match self.store.list_gateways().await {
            Ok(list) => list,
            Err(e) => {
                let kept = self.count.get();
                if self.warn_due(now_ms) {
                    warn!(
                        error = %e,
                        gateways = kept,
                        "listing gateways failed; keeping the last count \
                         (repeats within 30 s are logged at debug)"
                    );
                } else {
                    debug!(error = %e, gateways = kept, "listing gateways failed");
                }
                return kept;
            }
        };
        let live_since = now_ms.saturating_sub(LIVE_PERIODS.saturating_mul(self.period_ms));
        let sweep_before =
            live_since.saturating_sub(SWEEP_AFTER_MS.max(self.period_ms.saturating_mul(100)));
        let others = list
            .iter()
            .filter(|g| g.id != self.id && g.heartbeat_ms >= live_since)
            .count();
        let n = u64::try_from(others).unwrap_or(u64::MAX).saturating_add(1);
        let before = self.count.set(n);
        if before != n {
            info!(
                gateway = %self.id,
                gateways = n,
                before,
                "live gateways changed: each enforces 1/{n} of every cluster-wide rate limit"
            );
        }
        for stale in list
            .iter()
            .filter(|g| g.id != self.id && g.heartbeat_ms < sweep_before)
        {
            match self.store.remove_gateway(&stale.id).await {
                Ok(()) => info!(
                    gateway = %stale.id,
                    heartbeat_ms = stale.heartbeat_ms,
                    "removed the registration of a gateway gone for long"
                ),
                Err(e) => debug!(
                    gateway = %stale.id,
                    error = %e,
                    "removing a stale gateway registration failed"
                ),
            }
        }
        n
    }

    /// Removes this gateway's registration, so the others take over its share at their next
    /// refresh (a failure is logged: the registration then expires instead).
    pub async fn leave(&self) {
        match self.store.remove_gateway(&self.id).await {
            Ok(()) => info!(gateway = %self.id, "gateway registration removed"),
            Err(e) => warn!(
                gateway = %self.id,
                error = %e,
                "removing the gateway registration failed; it expires in a few seconds"
            ),
        }
    }

    /// Runs [`Membership::refresh`] every period (the first right away) until `stop` turns
    /// true or its sender is dropped, then [`Membership::leave`]s.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let period = Duration::from_millis(u64::try_from(self.period_ms).unwrap_or(1000));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        info!(gateway = %self.id, period_ms = self.period_ms, "gateway membership started");
        loop {
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = tick.tick() => {
                    self.refresh(wall_ms()).await;
                }
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
        }
        self.leave().await;
    }
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
