//! Per-cluster limits as MSK Serverless applies them, and the mechanisms that enforce them.
//!
//! - [`ClusterLimits`]: every limit with MSK Serverless's value as the default; stored overrides
//!   deserialize over the defaults (`#[serde(default)]`), so a record holding only
//!   `{"max-partitions": 4800}` changes just that limit.
//! - [`RateLimiter`]: a token bucket with Kafka's quota semantics: a request is let through,
//!   and the caller answers it with `throttle_time_ms` and delays the answer by the returned time,
//!   so that the rate converges to the limit; the burst is bounded (one window's worth).
//! - [`CountLimit`]: a check for counts (partitions, groups, connections) with an error naming
//!   the limit, and [`ConnectionLimit`], a counter with RAII permits.
//!
//! These limiters count in one process. The gateway gives each of them its share of a
//! cluster's limit when several gateways serve the cluster (`fjord_gateway::quota::share`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

const MIB: u64 = 1024 * 1024;

/// Limits of one cluster. Defaults are MSK Serverless's (throughputs in MiB: MSK's "MBps").
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClusterLimits {
    /// Produce bytes per second into the cluster (200 MiB/s).
    pub ingress_bytes_per_sec: u64,
    /// Fetch bytes per second out of the cluster (400 MiB/s).
    pub egress_bytes_per_sec: u64,
    /// Produce bytes per second into one partition (5 MiB/s).
    pub partition_ingress_bytes_per_sec: u64,
    /// Fetch bytes per second out of one partition (10 MiB/s).
    pub partition_egress_bytes_per_sec: u64,
    /// Open client connections (3000); more are closed.
    pub max_connections: u64,
    /// New connections per second (100); more are closed.
    pub connection_attempts_per_sec: u64,
    /// Kafka requests per second (15,000).
    pub requests_per_sec: u64,
    /// Topic-admin requests per second: CreateTopics, DeleteTopics, CreatePartitions, configs (2).
    pub topic_admin_requests_per_sec: u64,
    /// Consumer groups (500); JoinGroup of a new group fails beyond it.
    pub max_consumer_groups: u64,
    /// Partitions (2400).
    pub max_partitions: u64,
    /// Partitions of compacted topics (120).
    pub max_compacted_partitions: u64,
    /// Partitions created or deleted per [`Self::partition_mutation_window_ms`] (250).
    pub partition_mutations_per_window: u64,
    /// The window of [`Self::partition_mutations_per_window`] (5 minutes).
    pub partition_mutation_window_ms: u64,
    /// Largest `max_bytes` of one Fetch request (55 MiB); more is INVALID_REQUEST.
    pub max_fetch_bytes: u64,
    /// Largest record batch (8 MiB, MSK's `max.message.bytes` ceiling).
    pub max_message_bytes: u64,
}

impl Default for ClusterLimits {
    fn default() -> Self {
        Self {
            ingress_bytes_per_sec: 200 * MIB,
            egress_bytes_per_sec: 400 * MIB,
            partition_ingress_bytes_per_sec: 5 * MIB,
            partition_egress_bytes_per_sec: 10 * MIB,
            max_connections: 3000,
            connection_attempts_per_sec: 100,
            requests_per_sec: 15_000,
            topic_admin_requests_per_sec: 2,
            max_consumer_groups: 500,
            max_partitions: 2400,
            max_compacted_partitions: 120,
            partition_mutations_per_window: 250,
            partition_mutation_window_ms: 5 * 60 * 1000,
            max_fetch_bytes: 55 * MIB,
            max_message_bytes: 8 * MIB,
        }
    }
}

/// A limit set to an unusable value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// Zero would refuse everything; a limit must be at least 1.
    #[error("cluster limit `{0}` must be at least 1")]
    Zero(&'static str),
}

impl ClusterLimits {
    /// Refuses zero limits (a zero rate would block a cluster forever; say so instead).
    pub fn validate(&self) -> Result<(), LimitsError> {
        let fields = [
            ("ingress-bytes-per-sec", self.ingress_bytes_per_sec),
            ("egress-bytes-per-sec", self.egress_bytes_per_sec),
            (
                "partition-ingress-bytes-per-sec",
                self.partition_ingress_bytes_per_sec,
            ),
            (
                "partition-egress-bytes-per-sec",
                self.partition_egress_bytes_per_sec,
            ),
            ("max-connections", self.max_connections),
            (
                "connection-attempts-per-sec",
                self.connection_attempts_per_sec,
            ),
            ("requests-per-sec", self.requests_per_sec),
            (
                "topic-admin-requests-per-sec",
                self.topic_admin_requests_per_sec,
            ),
            ("max-consumer-groups", self.max_consumer_groups),
            ("max-partitions", self.max_partitions),
            ("max-compacted-partitions", self.max_compacted_partitions),
            (
                "partition-mutations-per-window",
                self.partition_mutations_per_window,
            ),
            (
                "partition-mutation-window-ms",
                self.partition_mutation_window_ms,
            ),
            ("max-fetch-bytes", self.max_fetch_bytes),
            ("max-message-bytes", self.max_message_bytes),
        ];
        match fields.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(LimitsError::Zero(name)),
            None => Ok(()),
        }
    }

    /// The cluster partition count limit.
    pub fn partitions(&self) -> CountLimit {
        CountLimit::new("cluster partition limit", self.max_partitions)
    }

    /// The compacted-topic partition count limit.
    pub fn compacted_partitions(&self) -> CountLimit {
        CountLimit::new(
            "cluster compacted-partition limit",
            self.max_compacted_partitions,
        )
    }

    /// The consumer group count limit.
    pub fn consumer_groups(&self) -> CountLimit {
        CountLimit::new("cluster consumer group limit", self.max_consumer_groups)
    }
}

/// The rate limiters of one cluster, built from its [`ClusterLimits`]. Per-partition limiters are
/// made on demand with [`ClusterQuotas::partition_ingress`] / [`ClusterQuotas::partition_egress`].
#[derive(Debug)]
pub struct ClusterQuotas {
    /// Produce bytes.
    pub ingress: RateLimiter,
    /// Fetch bytes.
    pub egress: RateLimiter,
    /// Requests.
    pub requests: RateLimiter,
    /// Topic-admin requests.
    pub topic_admin: RateLimiter,
    /// Connection attempts (use [`RateLimiter::try_acquire`]: refuse, do not throttle).
    pub connection_attempts: RateLimiter,
    /// Partitions created or deleted (use [`RateLimiter::try_acquire`]: THROTTLING_QUOTA_EXCEEDED).
    pub partition_mutations: RateLimiter,
    /// Open connections.
    pub connections: ConnectionLimit,
    limits: ClusterLimits,
}

impl ClusterQuotas {
    /// Limiters for `limits`, with full buckets at `now_ms`.
    pub fn new(limits: ClusterLimits, now_ms: i64) -> Self {
        let per_sec = |n| RateLimiter::new(n, 1000, now_ms);
        Self {
            ingress: per_sec(limits.ingress_bytes_per_sec),
            egress: per_sec(limits.egress_bytes_per_sec),
            requests: per_sec(limits.requests_per_sec),
            topic_admin: per_sec(limits.topic_admin_requests_per_sec),
            connection_attempts: per_sec(limits.connection_attempts_per_sec),
            partition_mutations: RateLimiter::new(
                limits.partition_mutations_per_window,
                limits.partition_mutation_window_ms,
                now_ms,
            ),
            connections: ConnectionLimit::new(limits.max_connections),
            limits,
        }
    }

    /// The limits these quotas enforce.
    pub fn limits(&self) -> &ClusterLimits {
        &self.limits
    }

    /// A new produce limiter for one partition.
    pub fn partition_ingress(&self, now_ms: i64) -> RateLimiter {
        RateLimiter::new(self.limits.partition_ingress_bytes_per_sec, 1000, now_ms)
    }

    /// A new fetch limiter for one partition.
    pub fn partition_egress(&self, now_ms: i64) -> RateLimiter {
        RateLimiter::new(self.limits.partition_egress_bytes_per_sec, 1000, now_ms)
    }
}

#[derive(Debug)]
struct Bucket {
    /// Available tokens; negative while the client is in debt (being throttled).
    tokens: f64,
    last_ms: i64,
}

/// A token bucket: `limit` units per `window_ms`, holding at most one window's worth.
///
/// [`RateLimiter::record`] always admits and returns how long the client must wait for the
/// bucket to be out of debt: that is Kafka's `throttle_time_ms`, and delaying the answer by it
/// makes the admitted rate converge to the limit whatever the request sizes. The lock is held for
/// a few arithmetic operations and never across an await.
#[derive(Debug)]
pub struct RateLimiter {
    /// Units per millisecond.
    rate_per_ms: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

impl RateLimiter {
    /// `limit` units per `window_ms` (both at least 1; zeros are raised to 1), full at `now_ms`.
    pub fn new(limit: u64, window_ms: u64, now_ms: i64) -> Self {
        let limit = limit.max(1) as f64;
        let window = window_ms.max(1) as f64;
        Self {
            rate_per_ms: limit / window,
            burst: limit,
            bucket: Mutex::new(Bucket {
                tokens: limit,
                last_ms: now_ms,
            }),
        }
    }

    fn refill(&self, b: &mut Bucket, now_ms: i64) {
        // A clock that steps back refills nothing rather than draining the bucket.
        if now_ms > b.last_ms {
            let elapsed = (now_ms - b.last_ms) as f64;
            b.tokens = (b.tokens + elapsed * self.rate_per_ms).min(self.burst);
            b.last_ms = now_ms;
        }
    }

    fn debt_ms(&self, tokens: f64) -> u64 {
        if tokens >= 0.0 {
            0
        } else {
            (-tokens / self.rate_per_ms).ceil().min(i32::MAX as f64) as u64
        }
    }

    /// Records `amount` used at `now_ms` and returns the throttle time in ms (0 when within the
    /// limit).
    pub fn record(&self, now_ms: i64, amount: u64) -> u64 {
        let mut b = self.bucket.lock();
        self.refill(&mut b, now_ms);
        b.tokens -= amount as f64;
        self.debt_ms(b.tokens)
    }

    /// KIP-599 strict mode, for what is refused rather than delayed (connection attempts,
    /// partition mutations): admitted (and recorded, possibly into debt) when the bucket is not
    /// in debt; otherwise refused with the ms until it will not be.
    pub fn try_acquire(&self, now_ms: i64, amount: u64) -> Result<(), u64> {
        let mut b = self.bucket.lock();
        self.refill(&mut b, now_ms);
        if b.tokens < 0.0 {
            return Err(self.debt_ms(b.tokens).max(1));
        }
        b.tokens -= amount as f64;
        Ok(())
    }

    /// The current throttle time, without recording anything.
    pub fn throttle_ms(&self, now_ms: i64) -> u64 {
        let mut b = self.bucket.lock();
        self.refill(&mut b, now_ms);
        self.debt_ms(b.tokens)
    }
}

/// A count exceeded; the text names the limit (e.g. "cluster partition limit of 2400 reached").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} of {max} reached ({current} in use, {requested} more requested)")]
pub struct LimitExceeded {
    /// The limit's name.
    pub name: &'static str,
    /// The limit.
    pub max: u64,
    /// Count before the request.
    pub current: u64,
    /// What the request would add.
    pub requested: u64,
}

/// A named upper bound on a count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountLimit {
    /// E.g. "cluster partition limit".
    pub name: &'static str,
    /// The largest allowed count.
    pub max: u64,
}

impl CountLimit {
    /// A limit called `name` at `max`.
    pub fn new(name: &'static str, max: u64) -> Self {
        Self { name, max }
    }

    /// Whether `current + adding` stays within the limit.
    pub fn check(&self, current: u64, adding: u64) -> Result<(), LimitExceeded> {
        match current.checked_add(adding) {
            Some(total) if total <= self.max => Ok(()),
            _ => Err(LimitExceeded {
                name: self.name,
                max: self.max,
                current,
                requested: adding,
            }),
        }
    }
}

/// Open connections of a cluster, with permits that release on drop.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    open: Arc<AtomicU64>,
    max: u64,
}

/// One open connection counted against a [`ConnectionLimit`]; dropping it releases the slot.
#[derive(Debug)]
pub struct ConnectionPermit {
    open: Arc<AtomicU64>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionLimit {
    /// At most `max` connections.
    pub fn new(max: u64) -> Self {
        Self {
            open: Arc::new(AtomicU64::new(0)),
            max,
        }
    }

    /// Counts one more connection, or refuses it when `max` are open.
    pub fn try_open(&self) -> Result<ConnectionPermit, LimitExceeded> {
        let mut cur = self.open.load(Ordering::Acquire);
        loop {
            if cur >= self.max {
                return Err(LimitExceeded {
                    name: "cluster connection limit",
                    max: self.max,
                    current: cur,
                    requested: 1,
                });
            }
            match self
                .open
                .compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Ok(ConnectionPermit {
                        open: self.open.clone(),
                    })
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Connections currently open.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Acquire)
    }
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tests;
