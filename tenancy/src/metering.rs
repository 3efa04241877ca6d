//! Usage metering per cluster: the dimensions MSK Serverless bills on.
//!
//! MSK Serverless charges per cluster-hour, per partition-hour, per GiB written (bytes in), per
//! GiB read (bytes out) and per GiB-month of storage. [`UsageMeter`] keeps those for one cluster:
//! - bytes in and out are atomics bumped on the produce and fetch paths with relaxed operations
//!   (they are independent counters; exactness comes from the atomic swap in [`UsageMeter::drain`]);
//! - cluster-hours, partition-hours and storage byte-hours are integrals over time, fed by
//!   [`UsageMeter::tick`] with the partition count and stored bytes observed at that moment;
//!   each observation holds until the next tick (a step function). The gateway passes 0 stored
//!   bytes: storage nodes meter storage byte-hours themselves (`fjord_storage_node::metering`),
//!   since only a partition's owner knows its size cheaply.
//!
//! [`UsageMeter::drain`] closes the current period and returns one [`UsageRecord`] for the caller
//! to persist; periods are contiguous, so summing records never double-counts or loses time.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use uuid::Uuid;

const MS_PER_HOUR: f64 = 3_600_000.0;

/// Usage of one cluster over `[period_start_ms, period_end_ms)`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord {
    /// The cluster.
    pub cluster_id: Uuid,
    /// Start of the period (inclusive), ms since the epoch.
    pub period_start_ms: i64,
    /// End of the period (exclusive), ms since the epoch.
    pub period_end_ms: i64,
    /// Hours the cluster existed during the period.
    pub cluster_hours: f64,
    /// Sum over partitions of the hours each existed.
    pub partition_hours: f64,
    /// Bytes produced into the cluster.
    pub bytes_in: u64,
    /// Bytes fetched out of the cluster.
    pub bytes_out: u64,
    /// Integral of stored bytes over time, in byte-hours (divide by the hours in a month and by
    /// 2^30 for GiB-months).
    pub storage_byte_hours: f64,
}

#[derive(Debug)]
struct Integrals {
    period_start_ms: i64,
    last_ms: i64,
    partitions: u64,
    stored_bytes: u64,
    cluster_hours: f64,
    partition_hours: f64,
    storage_byte_hours: f64,
}

impl Integrals {
    /// Accounts `[last_ms, now_ms)` with the current observation. Time never runs backwards here:
    /// an earlier `now_ms` accounts nothing.
    fn advance(&mut self, now_ms: i64) {
        if now_ms <= self.last_ms {
            return;
        }
        let hours = (now_ms - self.last_ms) as f64 / MS_PER_HOUR;
        self.cluster_hours += hours;
        self.partition_hours += hours * self.partitions as f64;
        self.storage_byte_hours += hours * self.stored_bytes as f64;
        self.last_ms = now_ms;
    }
}

/// The usage counters of one cluster.
#[derive(Debug)]
pub struct UsageMeter {
    cluster_id: Uuid,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    integrals: Mutex<Integrals>,
}

impl UsageMeter {
    /// A meter for `cluster_id` starting at `now_ms` with the given observation.
    pub fn new(cluster_id: Uuid, now_ms: i64, partitions: u64, stored_bytes: u64) -> Self {
        Self {
            cluster_id,
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            integrals: Mutex::new(Integrals {
                period_start_ms: now_ms,
                last_ms: now_ms,
                partitions,
                stored_bytes,
                cluster_hours: 0.0,
                partition_hours: 0.0,
                storage_byte_hours: 0.0,
            }),
        }
    }

    /// The cluster metered.
    pub fn cluster_id(&self) -> Uuid {
        self.cluster_id
    }

    /// Counts produced bytes (hot path).
    pub fn record_bytes_in(&self, bytes: u64) {
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts fetched bytes (hot path).
    pub fn record_bytes_out(&self, bytes: u64) {
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Accounts the time since the previous tick with the previous observation, then records
    /// that from `now_ms` on the cluster has `partitions` partitions and `stored_bytes` bytes.
    pub fn tick(&self, now_ms: i64, partitions: u64, stored_bytes: u64) {
        let mut i = self.integrals.lock();
        i.advance(now_ms);
        i.partitions = partitions;
        i.stored_bytes = stored_bytes;
    }

    /// Closes the period at `now_ms` (accounting the time since the last tick with the current
    /// observation) and returns its usage; the next period starts at `now_ms`.
    pub fn drain(&self, now_ms: i64) -> UsageRecord {
        let mut i = self.integrals.lock();
        i.advance(now_ms);
        // Swapped under the lock so that two concurrent drains cannot interleave their periods;
        // bytes counted after the swap belong to the next period.
        let bytes_in = self.bytes_in.swap(0, Ordering::Relaxed);
        let bytes_out = self.bytes_out.swap(0, Ordering::Relaxed);
        let record = UsageRecord {
            cluster_id: self.cluster_id,
            period_start_ms: i.period_start_ms,
            period_end_ms: i.last_ms,
            cluster_hours: i.cluster_hours,
            partition_hours: i.partition_hours,
            bytes_in,
            bytes_out,
            storage_byte_hours: i.storage_byte_hours,
        };
        i.period_start_ms = i.last_ms;
        i.cluster_hours = 0.0;
        i.partition_hours = 0.0;
        i.storage_byte_hours = 0.0;
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn integrates_step_functions_and_counts_bytes() {
        let id = Uuid::from_u128(7);
        let m = UsageMeter::new(id, 0, 10, 1000);
        m.record_bytes_in(100);
        m.record_bytes_out(40);
        m.record_bytes_in(5);
        // 10 partitions, 1000 bytes for 1 h; then 30 partitions, 4000 bytes for 30 min.
        m.tick(H, 30, 4000);
        let r = m.drain(H + H / 2);
        assert_eq!(r.cluster_id, id);
        assert_eq!((r.period_start_ms, r.period_end_ms), (0, H + H / 2));
        assert!(close(r.cluster_hours, 1.5), "{r:?}");
        assert!(close(r.partition_hours, 10.0 + 15.0), "{r:?}");
        assert!(close(r.storage_byte_hours, 1000.0 + 2000.0), "{r:?}");
        assert_eq!((r.bytes_in, r.bytes_out), (105, 40));
    }

    #[test]
    fn periods_are_contiguous_and_reset() {
        let m = UsageMeter::new(Uuid::nil(), 1000, 4, 0);
        m.record_bytes_in(9);
        let a = m.drain(1000 + H);
        m.record_bytes_out(3);
        let b = m.drain(1000 + 3 * H);
        assert_eq!(a.period_end_ms, b.period_start_ms);
        assert!(
            close(a.partition_hours, 4.0) && close(b.partition_hours, 8.0),
            "{a:?} {b:?}"
        );
        assert_eq!(
            (a.bytes_in, a.bytes_out, b.bytes_in, b.bytes_out),
            (9, 0, 0, 3)
        );
        assert!(close(b.cluster_hours, 2.0));
    }

    #[test]
    fn time_going_backwards_accounts_nothing() {
        let m = UsageMeter::new(Uuid::nil(), H, 1, 1);
        m.tick(0, 100, 100);
        let r = m.drain(H / 2);
        assert_eq!((r.period_start_ms, r.period_end_ms), (H, H));
        assert_eq!(
            (r.cluster_hours, r.partition_hours, r.storage_byte_hours),
            (0.0, 0.0, 0.0)
        );
        // The newer observation still took effect.
        let r = m.drain(2 * H);
        assert!(close(r.partition_hours, 100.0), "{r:?}");
    }

    #[test]
    fn concurrent_recording_loses_nothing() {
        let m = std::sync::Arc::new(UsageMeter::new(Uuid::nil(), 0, 0, 0));
        let mut drained = 0u64;
        std::thread::scope(|s| {
            for _ in 0..4 {
                let m = m.clone();
                s.spawn(move || (0..10_000).for_each(|_| m.record_bytes_in(3)));
            }
            for t in 0..50 {
                drained += m.drain(t).bytes_in;
            }
        });
        drained += m.drain(100).bytes_in;
        assert_eq!(drained, 4 * 10_000 * 3);
    }

    #[test]
    fn record_serializes() {
        let r = UsageMeter::new(Uuid::nil(), 0, 2, 0).drain(H);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["partitionHours"], 2.0);
        assert_eq!(serde_json::from_value::<UsageRecord>(json).unwrap(), r);
    }
}
