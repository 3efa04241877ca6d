//! Per-cluster limits at the gateway: connection caps, throttling, and usage metering.
//!
//! - [`QuotaService`] keeps one [`ClusterEntry`] per cluster this gateway serves: the cluster
//!   record, its limits ([`GatewayConfig::default_limits`] with the stored overrides of
//!   `MetadataStore::get_cluster_settings`, re-read every [`GatewayConfig::limits_refresh`]),
//!   its token buckets ([`fjord_tenancy::quota::ClusterQuotas`]), its open-connection count and
//!   its [`UsageMeter`]. Entries exist only for clusters found in the store, so a client cannot
//!   grow the table by naming clusters; idle entries are dropped after each metering period.
//! - Connections: [`QuotaService::admit`] refuses a connection once the cluster has
//!   `max-connections` open or has accepted `connection-attempts-per-sec` in the last second.
//! - Rates: [`QuotaService::on_request`] / [`QuotaService::on_response`] record requests,
//!   topic-admin requests, produce and fetch bytes (cluster-wide and per partition) and
//!   return Kafka's throttle time: the answer carries it in
//!   `throttle_time_ms` ([`wire`]) and the connection reads nothing more until it has passed.
//! - Partition mutations: [`mutations`] (KIP-599's quota on partitions created or deleted),
//!   charged by the admin handlers, which put the throttle into their responses;
//!   [`QuotaService::on_response`] mutes the connection for it.
//! - Counts: [`groups`] (consumer groups); partitions are checked by the topic service with
//!   [`cluster_limits`].
//! - [`metering`]: the background task that writes usage records.
//!
//! Limits hold cluster-wide across gateway processes by a simple rule: each live gateway
//! enforces 1/N of every cluster-wide rate limit (ingress, egress, requests, topic-admin
//! requests, connection attempts, partition mutations) and of the open-connection cap,
//! N = gateways alive now ([`share::gateway_share`]; per-partition rates stay whole, see there). [`membership`] keeps
//! N current from the gateways' heartbeats in metadata; a cluster's limiters are rebuilt with
//! the new share on its first request after N changed (they start full again). Counts kept in
//! metadata (partitions, consumer groups) are cluster-wide already. The rule's limit: a tenant
//! whose clients are spread unevenly over the gateways gets less than its full quota (one
//! producer on one of two gateways gets half the ingress quota).
//!
//! [`GatewayConfig::default_limits`]: crate::GatewayConfig::default_limits
//! [`GatewayConfig::limits_refresh`]: crate::GatewayConfig::limits_refresh

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fjord_metadata::{Cluster, MetadataError, MetadataStore};
use fjord_tenancy::metering::UsageMeter;
use fjord_tenancy::quota::{ClusterLimits, ClusterQuotas, RateLimiter};
use kafka_protocol::messages::ApiKey;
use parking_lot::RwLock;
use tracing::{debug, warn};
use uuid::Uuid;

pub mod groups;
pub mod membership;
pub mod metering;
pub mod mutations;
pub mod share;
pub mod wire;

use share::{gateway_share, GatewayCount};

/// At most one warning per cluster per this many ms about refused connections.
const REFUSAL_WARN_INTERVAL_MS: i64 = 10_000;
/// Per-partition limiters kept (an idle one is full again after a second, so dropping it
/// loses nothing).
const PARTITION_LIMITERS: u64 = 200_000;
/// Clusters remembered as absent, and for how long.
const MISSING_CLUSTERS: u64 = 10_000;
const MISSING_TTL: Duration = Duration::from_secs(5);

/// Applies stored overrides (kebab-case limit names, as the control plane writes them) over
/// `defaults`; unknown names or unusable values are an error naming them.
pub fn cluster_limits(
    defaults: &ClusterLimits,
    overrides: &BTreeMap<String, i64>,
) -> Result<ClusterLimits, String> {
    let mut value = serde_json::to_value(defaults).map_err(|e| e.to_string())?;
    if let serde_json::Value::Object(map) = &mut value {
        for (k, v) in overrides {
            if !map.contains_key(k) {
                return Err(format!("unknown cluster limit {k:?}"));
            }
            map.insert(k.clone(), serde_json::Value::from(*v));
        }
    }
    let limits: ClusterLimits =
        serde_json::from_value(value).map_err(|e| format!("invalid limit overrides: {e}"))?;
    limits.validate().map_err(|e| e.to_string())?;
    Ok(limits)
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The cluster has its maximum of open connections on this gateway.
    #[error("too many connects: cluster {cluster} has {max} open connections on this gateway, its share of the cluster's connection limit")]
    Connections {
        /// The cluster.
        cluster: Uuid,
        /// This gateway's share of its connection limit.
        max: u64,
    },
    /// The cluster accepted its maximum of new connections in the last second.
    #[error("too many connects: cluster {cluster} is over this gateway's share of its connection rate limit, {per_sec} new connections per second")]
    Rate {
        /// The cluster.
        cluster: Uuid,
        /// This gateway's share of its connection-rate limit.
        per_sec: u64,
    },
    /// No such cluster.
    #[error("unknown cluster {0}")]
    UnknownCluster(Uuid),
}

/// An open connection counted against its cluster; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionSlot {
    open: Arc<AtomicU64>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The limits and buckets of one cluster, replaced when its limits or the number of live
/// gateways change.
#[derive(Debug)]
struct Buckets {
    /// Limiters of this gateway's share of `limits`.
    quotas: ClusterQuotas,
    /// The cluster-wide limits.
    limits: ClusterLimits,
    /// Live gateways `quotas` was built for.
    gateways: u64,
}

impl Buckets {
    fn new(limits: ClusterLimits, gateways: u64, now_ms: i64) -> Self {
        Self {
            quotas: ClusterQuotas::new(gateway_share(&limits, gateways), now_ms),
            limits,
            gateways,
        }
    }
}

/// What the gateway keeps per cluster it serves.
#[derive(Debug)]
pub struct ClusterEntry {
    /// The cluster's record (account, region).
    pub cluster: Cluster,
    buckets: RwLock<Arc<Buckets>>,
    refreshed_ms: AtomicI64,
    refreshing: AtomicBool,
    open: Arc<AtomicU64>,
    last_warn_ms: AtomicI64,
    /// Usage counters of the current metering period.
    pub meter: UsageMeter,
    /// Whether any request was served since the last drain (idle entries are dropped).
    active: AtomicBool,
}

impl ClusterEntry {
    /// The cluster-wide limits in effect (defaults with the stored overrides).
    pub fn limits(&self) -> ClusterLimits {
        self.buckets.read().limits.clone()
    }

    /// This gateway's share of [`ClusterEntry::limits`], which its limiters enforce.
    pub fn local_limits(&self) -> ClusterLimits {
        self.buckets.read().quotas.limits().clone()
    }

    /// The number of live gateways the limiters were last built for.
    pub fn gateways(&self) -> u64 {
        self.buckets.read().gateways
    }

    fn quotas(&self) -> Arc<Buckets> {
        self.buckets.read().clone()
    }

    /// Connections open now.
    pub fn open_connections(&self) -> u64 {
        self.open.load(Ordering::Acquire)
    }

    fn warn_due(&self, now_ms: i64) -> bool {
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        now_ms.saturating_sub(last) >= REFUSAL_WARN_INTERVAL_MS
            && self
                .last_warn_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Direction of a per-partition limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Dir {
    In,
    Out,
}

/// (cluster, topic hash, partition, direction, limit): the limit is part of the key so that a
/// changed limit takes effect with a fresh bucket. The topic is hashed to keep the key
/// fixed-size: its name, or its id for Fetch v13+ (so a consumer switching between those
/// versions gets a fresh bucket); a collision only shares a bucket between two partitions of
/// one cluster.
type PartitionKey = (Uuid, u64, i32, Dir, u64);

/// The gateway's quota and metering state; see the module docs.
pub struct QuotaService {
    store: Arc<dyn MetadataStore>,
    defaults: ClusterLimits,
    refresh_ms: i64,
    clusters: RwLock<HashMap<Uuid, Arc<ClusterEntry>>>,
    missing: moka::sync::Cache<Uuid, ()>,
    partitions: moka::sync::Cache<PartitionKey, Arc<RateLimiter>>,
    gateways: GatewayCount,
}

impl std::fmt::Debug for QuotaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaService")
            .field("clusters", &self.clusters.read().len())
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl QuotaService {
    /// Quotas with `defaults` for clusters without overrides, re-reading overrides every
    /// `refresh`.
    pub fn new(store: Arc<dyn MetadataStore>, defaults: ClusterLimits, refresh: Duration) -> Self {
        Self {
            store,
            defaults,
            refresh_ms: ms(refresh),
            clusters: RwLock::new(HashMap::new()),
            missing: moka::sync::Cache::builder()
                .max_capacity(MISSING_CLUSTERS)
                .time_to_live(MISSING_TTL)
                .build(),
            partitions: moka::sync::Cache::builder()
                .max_capacity(PARTITION_LIMITERS)
                .time_to_idle(Duration::from_secs(10))
                .build(),
            gateways: GatewayCount::default(),
        }
    }

    /// The live-gateway count this service splits cluster limits by (1 until a
    /// [`membership::Membership`] publishes to it).
    pub fn gateway_count(&self) -> &GatewayCount {
        &self.gateways
    }

    async fn load_limits(&self, cluster: Uuid) -> ClusterLimits {
        match self.store.get_cluster_settings(cluster).await {
            Ok(None) => self.defaults.clone(),
            Ok(Some(s)) => cluster_limits(&self.defaults, &s.limits).unwrap_or_else(|e| {
                warn!(%cluster, error = %e, "stored cluster limits unusable; using defaults");
                self.defaults.clone()
            }),
            Err(e) => {
                warn!(%cluster, error = %e, "reading cluster limits failed; using defaults");
                self.defaults.clone()
            }
        }
    }

    /// The entry of `cluster`, loading it (and its limits) on first use and refreshing its
    /// limits when they are older than the refresh interval; `None` if the cluster does not
    /// exist.
    pub async fn cluster(
        &self,
        cluster: Uuid,
        now_ms: i64,
    ) -> Result<Option<Arc<ClusterEntry>>, MetadataError> {
        let found = self.clusters.read().get(&cluster).cloned();
        if let Some(entry) = found {
            self.maybe_refresh(&entry, now_ms).await;
            self.apply_share(&entry, now_ms);
            return Ok(Some(entry));
        }
        if self.missing.contains_key(&cluster) {
            return Ok(None);
        }
        let Some(record) = self.store.get_cluster(cluster).await? else {
            self.missing.insert(cluster, ());
            return Ok(None);
        };
        let limits = self.load_limits(cluster).await;
        let entry = Arc::new(ClusterEntry {
            meter: UsageMeter::new(cluster, now_ms, 0, 0),
            cluster: record,
            buckets: RwLock::new(Arc::new(Buckets::new(limits, self.gateways.get(), now_ms))),
            refreshed_ms: AtomicI64::new(now_ms),
            refreshing: AtomicBool::new(false),
            open: Arc::new(AtomicU64::new(0)),
            last_warn_ms: AtomicI64::new(i64::MIN),
            active: AtomicBool::new(true),
        });
        // Another connection may have loaded it meanwhile: keep the first.
        Ok(Some(
            self.clusters
                .write()
                .entry(cluster)
                .or_insert(entry)
                .clone(),
        ))
    }

    async fn maybe_refresh(&self, entry: &ClusterEntry, now_ms: i64) {
        let at = entry.refreshed_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(at) < self.refresh_ms
            || entry.refreshing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let limits = self.load_limits(entry.cluster.id).await;
        if limits != entry.limits() {
            debug!(cluster = %entry.cluster.id, ?limits, "cluster limits changed");
            *entry.buckets.write() = Arc::new(Buckets::new(limits, self.gateways.get(), now_ms));
        }
        entry.refreshed_ms.store(now_ms, Ordering::Relaxed);
        entry.refreshing.store(false, Ordering::Release);
    }

    /// Rebuilds `entry`'s limiters for the current number of live gateways if they were built
    /// for another (one atomic load and a read lock when nothing changed).
    fn apply_share(&self, entry: &ClusterEntry, now_ms: i64) {
        let n = self.gateways.get();
        if entry.buckets.read().gateways == n {
            return;
        }
        let mut b = entry.buckets.write();
        // Another request may have rebuilt them meanwhile.
        if b.gateways != n {
            debug!(
                cluster = %entry.cluster.id,
                gateways = n,
                "applying this gateway's new share of the cluster limits"
            );
            *b = Arc::new(Buckets::new(b.limits.clone(), n, now_ms));
        }
    }

    /// The entries of every cluster served (for metering).
    pub fn entries(&self) -> Vec<Arc<ClusterEntry>> {
        self.clusters.read().values().cloned().collect()
    }

    /// Drops entries that served nothing since the previous call and have no connection, and
    /// marks the others as not yet active in the next period. Returns how many were dropped.
    pub(crate) fn prune_idle(&self) -> usize {
        let mut map = self.clusters.write();
        let before = map.len();
        map.retain(|_, e| {
            e.active.swap(false, Ordering::AcqRel) || e.open.load(Ordering::Acquire) > 0
        });
        before - map.len()
    }

    /// Counts a new connection to `entry`'s cluster at `now_ms`, or refuses it (logged at
    /// debug, and at most once per 10 s per cluster as a warning).
    pub fn admit(&self, entry: &ClusterEntry, now_ms: i64) -> Result<ConnectionSlot, Refusal> {
        let limits = entry.local_limits();
        let refusal = if entry
            .quotas()
            .quotas
            .connection_attempts
            .try_acquire(now_ms, 1)
            .is_err()
        {
            Some(Refusal::Rate {
                cluster: entry.cluster.id,
                per_sec: limits.connection_attempts_per_sec,
            })
        } else {
            let max = limits.max_connections;
            let opened = entry
                .open
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                });
            match opened {
                Ok(_) => None,
                Err(_) => Some(Refusal::Connections {
                    cluster: entry.cluster.id,
                    max,
                }),
            }
        };
        match refusal {
            None => {
                entry.active.store(true, Ordering::Relaxed);
                Ok(ConnectionSlot {
                    open: entry.open.clone(),
                })
            }
            Some(r) => {
                debug!(reason = %r, "connection refused");
                if entry.warn_due(now_ms) {
                    warn!(reason = %r, "refusing connections (repeats are logged at debug)");
                }
                Err(r)
            }
        }
    }

    /// Records an authenticated request of `api` to `entry`'s cluster, with its frame of
    /// `frame_len` bytes and (for Produce at `version`) its `body`, and returns the throttle
    /// time in ms it earns: the largest of the request, topic-admin, ingress and per-partition
    /// ingress quotas it touches.
    pub fn on_request(
        &self,
        entry: &ClusterEntry,
        api: ApiKey,
        version: i16,
        body: &[u8],
        frame_len: usize,
        now_ms: i64,
    ) -> u64 {
        entry.active.store(true, Ordering::Relaxed);
        let b = entry.quotas();
        let q = &b.quotas;
        let mut throttle = q.requests.record(now_ms, 1);
        if matches!(
            api,
            ApiKey::CreateTopics | ApiKey::DeleteTopics | ApiKey::CreatePartitions
        ) {
            throttle = throttle.max(q.topic_admin.record(now_ms, 1));
        }
        if api == ApiKey::Produce {
            throttle = throttle.max(q.ingress.record(now_ms, frame_len as u64));
            let per_partition = q.limits().partition_ingress_bytes_per_sec;
            let mut records = 0u64;
            let parsed = wire::produce_partitions(body, version, |topic, partition, n| {
                records += n as u64;
                let key = (
                    entry.cluster.id,
                    hash(topic),
                    partition,
                    Dir::In,
                    per_partition,
                );
                let limiter = self
                    .partitions
                    .get_with(key, || Arc::new(q.partition_ingress(now_ms)));
                throttle = throttle.max(limiter.record(now_ms, n as u64));
            });
            // Bytes in are the record batches written (what MSK bills); a body that does not
            // parse is refused by the decoder right after, so it writes nothing.
            if parsed.is_some() {
                entry.meter.record_bytes_in(records);
            }
        }
        throttle
    }

    /// Records the response `frame` of `api` at `version` and returns the throttle time in ms
    /// it earns (Fetch: the cluster egress quota and the per-partition fetch quotas;
    /// CreateTopics, CreatePartitions, DeleteTopics: the partition mutation throttle their
    /// handler wrote into `throttle_time_ms`).
    pub fn on_response(
        &self,
        entry: &ClusterEntry,
        api: ApiKey,
        version: i16,
        frame: &[u8],
        now_ms: i64,
    ) -> u64 {
        if mutations::strict_since(api).is_some() {
            // The admin handler put the partition mutation throttle into the response.
            let hv = crate::frame::response_header_version(api, version);
            return wire::throttle_offset(api, version, hv, frame)
                .and_then(|at| frame.get(at..at + 4))
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, |b| u64::try_from(i32::from_be_bytes(b)).unwrap_or(0));
        }
        if api != ApiKey::Fetch {
            return 0;
        }
        entry.meter.record_bytes_out(frame.len() as u64);
        let b = entry.quotas();
        let q = &b.quotas;
        let mut throttle = q.egress.record(now_ms, frame.len() as u64);
        let per_partition = q.limits().partition_egress_bytes_per_sec;
        let hv = crate::frame::response_header_version(api, version);
        let parsed = wire::fetch_partitions(frame, version, hv, |topic, partition, n| {
            if n == 0 {
                return;
            }
            let key = (
                entry.cluster.id,
                hash(topic),
                partition,
                Dir::Out,
                per_partition,
            );
            let limiter = self
                .partitions
                .get_with(key, || Arc::new(q.partition_egress(now_ms)));
            throttle = throttle.max(limiter.record(now_ms, n as u64));
        });
        if parsed.is_none() {
            // Our own encoding: a failure here is a gateway bug, not a client's doing.
            warn!(
                version,
                "fetch response not understood by the quota scanner"
            );
        }
        throttle
    }
}

fn hash(topic: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    topic.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod limit_tests;
#[cfg(test)]
#[path = "tests.rs"]
mod tests;
