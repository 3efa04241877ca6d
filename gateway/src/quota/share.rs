//! This gateway's share of a cluster's limits: with N gateways alive, each enforces 1/N of every
//! cluster-wide rate and of the connection cap, so that a tenant reaching every gateway gets its
//! cluster's limits in total rather than N times them.
//!
//! The rule is simple and has a known cost: a tenant whose clients are spread unevenly over the
//! gateways (say, one producer on one gateway) gets less than the full cluster quota. Counts
//! kept in metadata (partitions, consumer groups) and sizes (largest fetch, largest batch) are
//! cluster-wide already and are not split.
//!
//! Per-partition rates are not split either: a partition is usually written by one or a few
//! producers, each on one connection to one gateway, so a split would hold such a producer to
//! 1/N of the partition's rate (1.25 MiB/s instead of MSK's 5 with four gateways), while not
//! splitting lets a tenant that writes one partition through several gateways exceed it by at
//! most N times, still within the cluster's split ingress. Exact per-partition enforcement
//! belongs to the storage node that owns the partition (a next step).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fjord_tenancy::quota::ClusterLimits;

/// How many gateways are alive now (at least 1: this one), published by
/// [`super::membership::Membership`] and read by [`super::QuotaService`] when it builds a
/// cluster's limiters. Cloning shares the value.
#[derive(Clone, Debug)]
pub struct GatewayCount(Arc<AtomicU64>);

impl Default for GatewayCount {
    fn default() -> Self {
        Self(Arc::new(AtomicU64::new(1)))
    }
}

impl GatewayCount {
    /// Live gateways, this one included (never 0).
    pub fn get(&self) -> u64 {
        // Relaxed: the value guards no other memory; a limiter built one request late with
        // the previous count is rebuilt on the next.
        self.0.load(Ordering::Relaxed).max(1)
    }

    /// Publishes `n` live gateways (0 is taken as 1: this gateway is alive); returns the
    /// previous count.
    pub fn set(&self, n: u64) -> u64 {
        self.0.swap(n.max(1), Ordering::Relaxed).max(1)
    }
}

/// `value / gateways`, rounded up and at least 1: the gateways' shares add up to at least the
/// cluster's limit (never less, e.g. 2 topic-admin requests per second over 3 gateways is 1
/// each), and no share is 0, which would block the cluster.
fn split(value: u64, gateways: u64) -> u64 {
    value.div_ceil(gateways.max(1)).max(1)
}

/// The limits one of `gateways` live gateways enforces for a cluster whose limits are
/// `cluster`: every cluster-wide rate (ingress, egress, requests, topic-admin requests,
/// connection attempts, partition mutations per window) and the open connection cap divided
/// among the gateways (rounded up, at least 1); per-partition rates, counts, sizes and the
/// mutation window unchanged.
pub fn gateway_share(cluster: &ClusterLimits, gateways: u64) -> ClusterLimits {
    // Destructured without `..` so that a limit added to `ClusterLimits` must be classified
    // here (split or cluster-wide) before the gateway compiles again.
    let ClusterLimits {
        ingress_bytes_per_sec,
        egress_bytes_per_sec,
        partition_ingress_bytes_per_sec,
        partition_egress_bytes_per_sec,
        max_connections,
        connection_attempts_per_sec,
        requests_per_sec,
        topic_admin_requests_per_sec,
        max_consumer_groups,
        max_partitions,
        max_compacted_partitions,
        partition_mutations_per_window,
        partition_mutation_window_ms,
        max_fetch_bytes,
        max_message_bytes,
    } = cluster.clone();
    let n = gateways.max(1);
    ClusterLimits {
        ingress_bytes_per_sec: split(ingress_bytes_per_sec, n),
        egress_bytes_per_sec: split(egress_bytes_per_sec, n),
        partition_ingress_bytes_per_sec,
        partition_egress_bytes_per_sec,
        max_connections: split(max_connections, n),
        connection_attempts_per_sec: split(connection_attempts_per_sec, n),
        requests_per_sec: split(requests_per_sec, n),
        topic_admin_requests_per_sec: split(topic_admin_requests_per_sec, n),
        partition_mutations_per_window: split(partition_mutations_per_window, n),
        // Kept in metadata, hence cluster-wide already.
        max_consumer_groups,
        max_partitions,
        max_compacted_partitions,
        // Per request or per window, not rates.
        partition_mutation_window_ms,
        max_fetch_bytes,
        max_message_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_gateway_enforces_the_cluster_limits() {
        let l = ClusterLimits::default();
        assert_eq!(gateway_share(&l, 1), l);
        assert_eq!(gateway_share(&l, 0), l, "0 gateways is taken as this one");
    }

    #[test]
    fn cluster_rates_and_the_connection_cap_are_split_and_partition_rates_and_counts_are_not() {
        let l = ClusterLimits::default();
        let s = gateway_share(&l, 4);
        assert_eq!(s.ingress_bytes_per_sec, l.ingress_bytes_per_sec / 4);
        assert_eq!(s.egress_bytes_per_sec, l.egress_bytes_per_sec / 4);
        assert_eq!(
            s.partition_ingress_bytes_per_sec,
            l.partition_ingress_bytes_per_sec
        );
        assert_eq!(
            s.partition_egress_bytes_per_sec,
            l.partition_egress_bytes_per_sec
        );
        assert_eq!(s.max_connections, 750);
        assert_eq!(s.connection_attempts_per_sec, 25);
        assert_eq!(s.requests_per_sec, 3750);
        // 2 / 4 rounds up to 1: a share is never 0.
        assert_eq!(s.topic_admin_requests_per_sec, 1);
        // 250 / 4 = 62.5, rounded up so the shares cover the whole limit.
        assert_eq!(s.partition_mutations_per_window, 63);
        assert_eq!(
            s.partition_mutation_window_ms,
            l.partition_mutation_window_ms
        );
        assert_eq!(s.max_consumer_groups, l.max_consumer_groups);
        assert_eq!(s.max_partitions, l.max_partitions);
        assert_eq!(s.max_compacted_partitions, l.max_compacted_partitions);
        assert_eq!(s.max_fetch_bytes, l.max_fetch_bytes);
        assert_eq!(s.max_message_bytes, l.max_message_bytes);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn shares_add_up_to_at_least_the_limit() {
        for limit in [1u64, 2, 3, 7, 100, 3000, 200 * 1024 * 1024 + 1] {
            for n in 1u64..=9 {
                let share = split(limit, n);
                assert!(share >= 1);
                assert!(share * n >= limit, "{limit} over {n}: {share} each");
                assert!(
                    share * n < limit + n || limit < n,
                    "{limit} over {n}: {share} each is more than rounding"
                );
            }
        }
    }

    #[test]
    fn the_count_is_never_zero_and_is_shared_by_clones() {
        let c = GatewayCount::default();
        assert_eq!(c.get(), 1);
        let other = c.clone();
        assert_eq!(other.set(3), 1);
        assert_eq!(c.get(), 3);
        assert_eq!(c.set(0), 3);
        assert_eq!(other.get(), 1);
    }
}
