//! The catch-up figure of a backlog workload: how fast the consumers read the backlog that was
//! built before they started.
//!
//! The measured window cannot give it: once the backlog is drained the consumers only follow
//! the producers' (slow) rate, so a window longer than the drain reports the backlog's size
//! divided by the window, not the read speed. OpenMessaging Benchmark likewise reports the drain
//! separately. A watcher thread polls the consumed-bytes counter from the moment the consumers
//! start and notes when the first message arrived and when the backlog was read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::Stats;

/// How often the watcher reads the counters: fine enough for drains of a few seconds.
const POLL: Duration = Duration::from_millis(5);

/// The catch-up of a backlog, as reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CatchUp {
    /// Bytes the consumers had to read: the payload acknowledged when they started, once per
    /// subscription.
    pub backlog_bytes: u64,
    /// Seconds from starting the consumers to their first message (group join, assignment,
    /// first fetch).
    pub first_message_s: Option<f64>,
    /// Seconds from starting the consumers until they had consumed `backlog_bytes`; `None` if
    /// that did not happen before the end of the run.
    pub drained_s: Option<f64>,
    /// Bytes consumed from the start until the backlog was read (at least `backlog_bytes`:
    /// messages produced meanwhile may be read before the backlog's last ones).
    pub read_bytes: u64,
    /// Read rate from the first message until the backlog was read, MB/s (10^6 bytes).
    pub read_mb_per_s: Option<f64>,
    /// Read rate from starting the consumers, MB/s: includes joining the group.
    pub from_start_mb_per_s: Option<f64>,
}

impl CatchUp {
    /// Computes the figure from the observations (times relative to the consumers' start).
    pub fn of(
        backlog_bytes: u64,
        first: Option<Duration>,
        drained: Option<(Duration, u64)>,
    ) -> Self {
        let mb_per_s = |bytes: u64, d: Duration| {
            let s = d.as_secs_f64();
            (s > 0.0).then(|| bytes as f64 / 1e6 / s)
        };
        let read_bytes = drained.map(|(_, b)| b).unwrap_or(0);
        CatchUp {
            backlog_bytes,
            first_message_s: first.map(|d| d.as_secs_f64()),
            drained_s: drained.map(|(d, _)| d.as_secs_f64()),
            read_bytes,
            read_mb_per_s: match (first, drained) {
                (Some(f), Some((d, b))) => mb_per_s(b, d.saturating_sub(f)),
                _ => None,
            },
            from_start_mb_per_s: drained.and_then(|(d, b)| mb_per_s(b, d)),
        }
    }

    /// One line for the table.
    pub fn line(&self) -> String {
        match (self.drained_s, self.read_mb_per_s) {
            (Some(d), Some(rate)) => format!(
                "{:.2} GB in {:.2} s: {:.2} MB/s from the first message ({:.2} s after start), \
                 {:.2} MB/s from start",
                self.read_bytes as f64 / 1e9,
                d - self.first_message_s.unwrap_or(0.0),
                rate,
                self.first_message_s.unwrap_or(0.0),
                self.from_start_mb_per_s.unwrap_or(0.0),
            ),
            _ => format!(
                "backlog of {:.2} GB not read by the end of the run",
                self.backlog_bytes as f64 / 1e9
            ),
        }
    }
}

/// Watches the consumers read a backlog; started right before the consumers are.
pub struct CatchUpWatch {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<CatchUp>,
}

impl CatchUpWatch {
    /// Starts watching; `backlog_bytes` is what the consumers must read (all subscriptions).
    pub fn start(stats: Arc<Stats>, backlog_bytes: u64) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let start = Instant::now();
        let base = stats.counters().received_bytes;
        let handle = std::thread::Builder::new()
            .name("catch-up-watch".into())
            .spawn(move || {
                let mut first = None;
                loop {
                    // The flag is read before the counters, so bytes consumed before `finish`
                    // are always seen.
                    let stopping = stopped.load(Ordering::Acquire);
                    let read = stats.counters().received_bytes.saturating_sub(base);
                    let now = start.elapsed();
                    if first.is_none() && read > 0 {
                        first = Some(now);
                    }
                    if read >= backlog_bytes {
                        return CatchUp::of(backlog_bytes, first, Some((now, read)));
                    }
                    if stopping {
                        return CatchUp::of(backlog_bytes, first, None);
                    }
                    std::thread::sleep(POLL);
                }
            })?;
        Ok(CatchUpWatch { stop, handle })
    }

    /// Stops watching and returns the figure (not drained if it had not happened yet).
    pub fn finish(self) -> CatchUp {
        self.stop.store(true, Ordering::Release);
        self.handle.join().unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rates_from_first_message_and_from_start() {
        let c = CatchUp::of(
            4_000_000_000,
            Some(Duration::from_secs(2)),
            Some((Duration::from_secs(10), 4_000_000_000)),
        );
        assert_eq!(c.read_mb_per_s, Some(500.0));
        assert_eq!(c.from_start_mb_per_s, Some(400.0));
        assert_eq!(c.drained_s, Some(10.0));
        assert!(
            c.line().contains("500.00 MB/s from the first message"),
            "{}",
            c.line()
        );
    }

    #[test]
    fn not_drained_has_no_rate() {
        let c = CatchUp::of(1_000, Some(Duration::from_secs(1)), None);
        assert_eq!((c.read_mb_per_s, c.drained_s), (None, None));
        assert!(c.line().contains("not read"), "{}", c.line());
    }

    #[test]
    fn watch_sees_the_backlog_read() {
        let stats = Arc::new(Stats::default());
        stats.record_receive(1_000, None); // before the consumers started: not backlog read
        let w = CatchUpWatch::start(stats.clone(), 300).unwrap();
        stats.record_receive(100, None);
        stats.record_receive(250, None);
        let c = w.finish();
        assert_eq!((c.read_bytes, c.backlog_bytes), (350, 300));
        assert!(
            c.drained_s.is_some() && c.first_message_s.is_some(),
            "{c:?}"
        );
    }

    #[test]
    fn watch_reports_an_unread_backlog() {
        let stats = Arc::new(Stats::default());
        let w = CatchUpWatch::start(stats.clone(), 300).unwrap();
        stats.record_receive(299, None);
        let c = w.finish();
        assert_eq!((c.drained_s, c.read_mb_per_s), (None, None));
        assert!(c.first_message_s.is_some(), "{c:?}");
    }
}
