//! Counters and latency histograms shared by the producer and consumer threads.
//!
//! Latencies are recorded in microseconds into per-interval HdrHistograms; the reporter takes
//! them once a second (for the progress line and the time series) and merges them into the
//! whole-window histograms the final result is computed from.

use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

/// Largest latency recorded exactly: one hour, in microseconds. Larger values saturate.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds with three significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // Bounds are constants that satisfy HdrHistogram's preconditions (low >= 1, high >= 2*low,
    // sigfig <= 5), so construction cannot fail.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

/// Counters and interval histograms, updated from many threads.
#[derive(Debug)]
pub struct Stats {
    /// Messages handed to the client.
    pub sent: AtomicU64,
    /// Messages the broker acknowledged.
    pub acked: AtomicU64,
    /// Payload bytes the broker acknowledged.
    pub acked_bytes: AtomicU64,
    /// Sends or deliveries that failed.
    pub publish_errors: AtomicU64,
    /// Messages consumed (over all subscriptions).
    pub received: AtomicU64,
    /// Payload bytes consumed.
    pub received_bytes: AtomicU64,
    /// Consumer errors.
    pub consume_errors: AtomicU64,
    publish_latency: Mutex<Histogram<u64>>,
    e2e_latency: Mutex<Histogram<u64>>,
    error_samples: Mutex<Vec<String>>,
}

/// Distinct error messages kept for the report.
const MAX_ERROR_SAMPLES: usize = 10;

impl Default for Stats {
    fn default() -> Self {
        Self {
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            acked_bytes: AtomicU64::new(0),
            publish_errors: AtomicU64::new(0),
            received: AtomicU64::new(0),
            received_bytes: AtomicU64::new(0),
            consume_errors: AtomicU64::new(0),
            publish_latency: Mutex::new(new_histogram()),
            e2e_latency: Mutex::new(new_histogram()),
            error_samples: Mutex::new(Vec::new()),
        }
    }
}

/// The counters at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Messages handed to the client.
    pub sent: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// Bytes acknowledged.
    pub acked_bytes: u64,
    /// Publish errors.
    pub publish_errors: u64,
    /// Messages consumed.
    pub received: u64,
    /// Bytes consumed.
    pub received_bytes: u64,
    /// Consume errors.
    pub consume_errors: u64,
}

impl Counters {
    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            sent: self.sent.saturating_sub(earlier.sent),
            acked: self.acked.saturating_sub(earlier.acked),
            acked_bytes: self.acked_bytes.saturating_sub(earlier.acked_bytes),
            publish_errors: self.publish_errors.saturating_sub(earlier.publish_errors),
            received: self.received.saturating_sub(earlier.received),
            received_bytes: self.received_bytes.saturating_sub(earlier.received_bytes),
            consume_errors: self.consume_errors.saturating_sub(earlier.consume_errors),
        }
    }
}

impl Stats {
    /// Records an acknowledged message of `bytes` that took `latency_us` from send to ack.
    pub fn record_ack(&self, bytes: usize, latency_us: u64) {
        self.acked.fetch_add(1, Ordering::Relaxed);
        self.acked_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.publish_latency
            .lock()
            .saturating_record(latency_us.max(1));
    }

    /// Records a consumed message of `bytes`; `e2e_us` is its end-to-end latency when the
    /// payload carried a send timestamp.
    pub fn record_receive(&self, bytes: usize, e2e_us: Option<u64>) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.received_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        if let Some(us) = e2e_us {
            self.e2e_latency.lock().saturating_record(us.max(1));
        }
    }

    /// Keeps `message` (if new and there is room) so the report can say what went wrong.
    pub fn note_error(&self, message: String) {
        let mut samples = self.error_samples.lock();
        if samples.len() < MAX_ERROR_SAMPLES && !samples.contains(&message) {
            tracing::warn!(error = %message, "load test error");
            samples.push(message);
        }
    }

    /// The distinct error messages noted so far.
    pub fn error_samples(&self) -> Vec<String> {
        self.error_samples.lock().clone()
    }

    /// The counters now.
    pub fn counters(&self) -> Counters {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counters {
            sent: l(&self.sent),
            acked: l(&self.acked),
            acked_bytes: l(&self.acked_bytes),
            publish_errors: l(&self.publish_errors),
            received: l(&self.received),
            received_bytes: l(&self.received_bytes),
            consume_errors: l(&self.consume_errors),
        }
    }

    /// Takes the interval histograms (publish, end-to-end), leaving empty ones behind.
    pub fn take_interval(&self) -> (Histogram<u64>, Histogram<u64>) {
        let take = |m: &Mutex<Histogram<u64>>| {
            let mut h = m.lock();
            let out = h.clone();
            h.reset();
            out
        };
        (take(&self.publish_latency), take(&self.e2e_latency))
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of a microsecond histogram.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_percentiles() {
        let s = Stats::default();
        for i in 1..=1000u64 {
            s.record_ack(100, i * 10);
        }
        s.record_receive(100, Some(2_000));
        s.record_receive(100, None);
        let c = s.counters();
        assert_eq!(
            (c.acked, c.acked_bytes, c.received, c.received_bytes),
            (1000, 100_000, 2, 200)
        );
        let (p, e) = s.take_interval();
        let l = Latency::of(&p);
        assert_eq!(l.count, 1000);
        assert!((l.p50_ms - 5.0).abs() < 0.01, "{l:?}");
        assert!((l.p99_ms - 9.9).abs() < 0.01, "{l:?}");
        assert!((l.max_ms - 10.0).abs() < 0.01, "{l:?}");
        assert_eq!(Latency::of(&e).count, 1);
        // Taking resets the interval.
        let (p, _) = s.take_interval();
        assert!(p.is_empty());
        assert_eq!(Latency::of(&p), Latency::default());
        let later = s.counters();
        assert_eq!(later.since(&c), Counters::default());
    }
}
