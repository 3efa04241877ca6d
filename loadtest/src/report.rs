//! Results: the per-second progress line and time series, the final table, the JSON file, and
//! the HTML report.

use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::catchup::CatchUp;
use crate::connection::{Auth, Connection};
use crate::procstat::{ServerUsage, WindowCpu};
use crate::stats::{Counters, Latency};
use crate::workload::Workload;
use crate::LoadtestError;

pub mod html;

/// One second of the run.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Acknowledged messages per second.
    pub publish_msg_s: f64,
    /// Acknowledged MB (10^6 bytes) per second.
    pub publish_mb_s: f64,
    /// Consumed messages per second.
    pub consume_msg_s: f64,
    /// Consumed MB per second.
    pub consume_mb_s: f64,
    /// Messages acknowledged but not yet consumed (times subscriptions).
    pub backlog: i64,
    /// Errors so far.
    pub errors: u64,
    /// Publish latency in this second.
    pub publish_latency: Latency,
    /// End-to-end latency in this second.
    pub e2e_latency: Latency,
}

impl Sample {
    /// The progress line for this second.
    pub fn line(&self, phase: &str) -> String {
        let l = &self.publish_latency;
        let e = &self.e2e_latency;
        format!(
            "[{:>5.0}s {phase:>7}] pub {:>9.0} msg/s {:>7.1} MB/s | cons {:>9.0} msg/s {:>7.1} MB/s | backlog {:>8} | pub p50 {:.2} p99 {:.2} ms | e2e p50 {:.2} p99 {:.2} ms | errors {}",
            self.t_s, self.publish_msg_s, self.publish_mb_s, self.consume_msg_s, self.consume_mb_s,
            self.backlog, l.p50_ms, l.p99_ms, e.p50_ms, e.p99_ms, self.errors
        )
    }
}

/// Turns successive counter snapshots into per-second samples.
#[derive(Debug)]
pub struct Progress {
    subscriptions: u64,
    last: Counters,
    last_t: Duration,
}

impl Progress {
    /// Starts at zero; `subscriptions` multiplies acknowledged messages into expected receives.
    pub fn new(subscriptions: u64) -> Progress {
        Progress {
            subscriptions,
            last: Counters::default(),
            last_t: Duration::ZERO,
        }
    }

    /// The sample for the interval ending at `t` with counters `now` and that interval's
    /// latency histograms.
    pub fn step(
        &mut self,
        t: Duration,
        now: Counters,
        publish: &Histogram<u64>,
        e2e: &Histogram<u64>,
    ) -> Sample {
        let d = now.since(&self.last);
        let secs = t.saturating_sub(self.last_t).as_secs_f64().max(1e-3);
        self.last = now;
        self.last_t = t;
        Sample {
            t_s: t.as_secs_f64(),
            publish_msg_s: d.acked as f64 / secs,
            publish_mb_s: d.acked_bytes as f64 / secs / 1e6,
            consume_msg_s: d.received as f64 / secs,
            consume_mb_s: d.received_bytes as f64 / secs / 1e6,
            backlog: backlog(&now, self.subscriptions),
            errors: now.publish_errors + now.consume_errors,
            publish_latency: Latency::of(publish),
            e2e_latency: Latency::of(e2e),
        }
    }
}

/// Acknowledged-but-unconsumed messages over all subscriptions.
pub fn backlog(c: &Counters, subscriptions: u64) -> i64 {
    (c.acked.saturating_mul(subscriptions) as i64).saturating_sub(c.received as i64)
}

/// Rate over the measured window.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Throughput {
    /// Messages.
    pub messages: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Messages per second.
    pub msg_per_s: f64,
    /// MB (10^6 bytes) per second.
    pub mb_per_s: f64,
}

impl Throughput {
    fn of(messages: u64, bytes: u64, secs: f64) -> Throughput {
        let secs = secs.max(1e-3);
        Throughput {
            messages,
            bytes,
            msg_per_s: messages as f64 / secs,
            mb_per_s: bytes as f64 / secs / 1e6,
        }
    }
}

/// One latency percentile point of a whole-window distribution.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PercentilePoint {
    /// Percentile (0–100).
    pub percentile: f64,
    /// Latency in milliseconds.
    pub ms: f64,
}

/// Percentile points from p0 to p99.999 for charts.
pub fn distribution(h: &Histogram<u64>) -> Vec<PercentilePoint> {
    if h.is_empty() {
        return Vec::new();
    }
    const QS: [f64; 12] = [
        0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 99.999,
    ];
    QS.iter()
        .map(|&p| PercentilePoint {
            percentile: p,
            ms: h.value_at_percentile(p) as f64 / 1000.0,
        })
        .chain(std::iter::once(PercentilePoint {
            percentile: 100.0,
            ms: h.max() as f64 / 1000.0,
        }))
        .collect()
}

/// The result of one run.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// The workload as run.
    pub workload: Workload,
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Security protocol.
    pub security_protocol: String,
    /// SASL mechanism, if any.
    pub sasl_mechanism: Option<String>,
    /// Unix time (ms) the result was produced.
    pub finished_at_unix_ms: u64,
    /// Target rate in msg/s (0 = max).
    pub target_rate: f64,
    /// Length of the measured window in seconds.
    pub window_s: f64,
    /// Acknowledged over the window.
    pub publish: Throughput,
    /// Consumed over the window.
    pub consume: Throughput,
    /// Send → ack latency over the window.
    pub publish_latency: Latency,
    /// Send timestamp in the payload → consumed, over the window.
    pub e2e_latency: Latency,
    /// Publish latency distribution.
    pub publish_distribution: Vec<PercentilePoint>,
    /// End-to-end latency distribution.
    pub e2e_distribution: Vec<PercentilePoint>,
    /// Backlog at the end of the window (messages, over all subscriptions).
    pub backlog_end: i64,
    /// With a backlog: how fast the consumers read it (see [`crate::catchup`]).
    pub catch_up: Option<CatchUp>,
    /// Counters over the whole run, warm-up and shutdown included.
    pub totals: Counters,
    /// Distinct error messages seen.
    pub error_samples: Vec<String>,
    /// Authenticated idle connections held open during the run.
    pub idle_connections: u32,
    /// Server memory and CPU, with `--server-pid`.
    pub server: Option<ServerUsage>,
    /// The harness's own CPU over the window: on a machine shared with the server, it shows
    /// where the other cores went.
    pub client: Option<WindowCpu>,
    /// Per-second samples of the measured window.
    pub samples: Vec<Sample>,
}

/// What [`RunResult::new`] is built from.
pub struct RunParts<'a> {
    /// Connection used.
    pub conn: &'a Connection,
    /// Workload run.
    pub workload: &'a Workload,
    /// Target rate.
    pub rate: f64,
    /// Measured window.
    pub window: Duration,
    /// Counter deltas over the window.
    pub window_counters: Counters,
    /// Counters over the whole run.
    pub totals: Counters,
    /// Publish latency over the window.
    pub publish: &'a Histogram<u64>,
    /// End-to-end latency over the window.
    pub e2e: &'a Histogram<u64>,
    /// Backlog at the end of the window.
    pub backlog_end: i64,
    /// The backlog's catch-up, for backlog workloads.
    pub catch_up: Option<CatchUp>,
    /// Error messages.
    pub error_samples: Vec<String>,
    /// Server usage.
    pub server: Option<ServerUsage>,
    /// The harness's CPU over the window.
    pub client: Option<WindowCpu>,
    /// Per-second samples.
    pub samples: Vec<Sample>,
}

impl RunResult {
    /// Assembles a result.
    pub fn new(p: RunParts<'_>) -> RunResult {
        let secs = p.window.as_secs_f64();
        let w = &p.window_counters;
        RunResult {
            workload: p.workload.clone(),
            bootstrap: p.conn.args.bootstrap.clone(),
            security_protocol: p.conn.args.security_protocol.as_str().into(),
            sasl_mechanism: match p.conn.auth {
                Auth::None => None,
                Auth::Plain { .. } => Some("PLAIN".into()),
                Auth::MskIam(_) => Some("OAUTHBEARER".into()),
            },
            finished_at_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            target_rate: p.rate,
            window_s: secs,
            publish: Throughput::of(w.acked, w.acked_bytes, secs),
            consume: Throughput::of(w.received, w.received_bytes, secs),
            publish_latency: Latency::of(p.publish),
            e2e_latency: Latency::of(p.e2e),
            publish_distribution: distribution(p.publish),
            e2e_distribution: distribution(p.e2e),
            backlog_end: p.backlog_end,
            catch_up: p.catch_up,
            totals: p.totals,
            error_samples: p.error_samples,
            idle_connections: p.workload.idle_connections,
            server: p.server,
            client: p.client,
            samples: p.samples,
        }
    }

    /// Errors over the whole run.
    pub fn errors(&self) -> u64 {
        self.totals.publish_errors + self.totals.consume_errors
    }

    /// The final table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let mut row = |k: &str, v: String| s.push_str(&format!("{k:<26} {v}\n"));
        row("workload", self.workload.name.clone());
        row(
            "endpoint",
            format!(
                "{} ({}{})",
                self.bootstrap,
                self.security_protocol,
                self.sasl_mechanism
                    .as_deref()
                    .map(|m| format!(" / {m}"))
                    .unwrap_or_default()
            ),
        );
        let target = if self.target_rate > 0.0 {
            format!("{:.0} msg/s", self.target_rate)
        } else {
            "max".into()
        };
        row("target rate", target);
        row("measured window", format!("{:.1} s", self.window_s));
        let t = |x: &Throughput| {
            format!(
                "{:.0} msg/s  {:.2} MB/s  ({} messages)",
                x.msg_per_s, x.mb_per_s, x.messages
            )
        };
        row("publish rate", t(&self.publish));
        row("consume rate", t(&self.consume));
        let l = |x: &Latency| {
            format!(
                "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3} ms",
                x.p50_ms, x.p90_ms, x.p99_ms, x.p999_ms, x.max_ms
            )
        };
        row("publish latency", l(&self.publish_latency));
        row("end-to-end latency", l(&self.e2e_latency));
        row("backlog at end", format!("{} messages", self.backlog_end));
        if let Some(c) = &self.catch_up {
            row("catch-up read", c.line());
        }
        row(
            "errors",
            format!(
                "{} publish, {} consume",
                self.totals.publish_errors, self.totals.consume_errors
            ),
        );
        for e in &self.error_samples {
            row("  error", e.clone());
        }
        if self.idle_connections > 0 {
            row("idle connections", self.idle_connections.to_string());
        }
        if let Some(sv) = &self.server {
            row(
                "server RSS",
                format!(
                    "{} KiB before, {} KiB after",
                    sv.before.rss_kib, sv.after.rss_kib
                ),
            );
            if let Some(c) = sv.cpu_seconds_per_gb {
                row(
                    "server CPU per GB",
                    format!("{c:.2} s  ({:.2} cores)", sv.cpu_cores),
                );
            }
        }
        if let Some(c) = &self.client {
            if let Some(per_gb) = c.cpu_seconds_per_gb {
                row(
                    "client CPU per GB",
                    format!("{per_gb:.2} s  ({:.2} cores)", c.cpu_cores),
                );
            }
        }
        s
    }

    /// Writes the result as JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), LoadtestError> {
        let write_err = |source| LoadtestError::WriteResult {
            path: path.to_path_buf(),
            source,
        };
        let text =
            serde_json::to_string_pretty(self).map_err(|e| write_err(std::io::Error::other(e)))?;
        std::fs::write(path, text).map_err(write_err)
    }

    /// Writes the HTML report to `path`.
    pub fn write_html(&self, path: &Path) -> Result<(), LoadtestError> {
        std::fs::write(path, html::render(self)).map_err(|source| LoadtestError::WriteResult {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::connection::{ConnectionArgs, SaslMechanism, SecurityProtocol};
    use crate::stats::new_histogram;

    /// A result of a 10 s window at 1,000 msg/s of 1 KiB, publish latencies 1..=10 ms.
    pub(crate) fn sample_result(name: &str) -> RunResult {
        let conn = Connection {
            args: ConnectionArgs {
                bootstrap: "127.0.0.1:9092".into(),
                security_protocol: SecurityProtocol::SaslPlaintext,
                sasl_mechanism: SaslMechanism::Plain,
                username: None,
                password: None,
                region: "us-east-1".into(),
                aws_credentials_file: None,
                aws_profile: "default".into(),
                ssl_ca_location: None,
                client_properties: Vec::new(),
            },
            auth: Auth::Plain {
                username: "u".into(),
                password: "p".into(),
            },
        };
        let yaml = format!(
            "name: '{name}'\ntopics: 1\npartitionsPerTopic: 1\nmessageSize: 1000\n\
             producersPerTopic: 1\nsubscriptionsPerTopic: 1\nconsumerPerSubscription: 1\n\
             producerRate: 1000\ntestDurationSeconds: 10\n"
        );
        let workload: Workload = serde_yaml::from_str(&yaml).unwrap();
        let mut publish = new_histogram();
        for ms in 1..=10u64 {
            publish.record(ms * 1000).unwrap();
        }
        let mut e2e = new_histogram();
        e2e.record(20_000).unwrap();
        let counters = Counters {
            sent: 10_000,
            acked: 10_000,
            acked_bytes: 10_000_000,
            received: 9_990,
            received_bytes: 9_990_000,
            ..Counters::default()
        };
        let mut progress = Progress::new(1);
        let samples = vec![progress.step(Duration::from_secs(1), counters, &publish, &e2e)];
        RunResult::new(RunParts {
            conn: &conn,
            workload: &workload,
            rate: 1000.0,
            window: Duration::from_secs(10),
            window_counters: counters,
            totals: counters,
            publish: &publish,
            e2e: &e2e,
            backlog_end: backlog(&counters, 1),
            catch_up: None,
            error_samples: Vec::new(),
            server: None,
            client: None,
            samples,
        })
    }

    #[test]
    fn rates_table_json_and_html() {
        let r = sample_result("a <b> & c");
        assert_eq!(r.publish.msg_per_s, 1000.0);
        assert_eq!(r.publish.mb_per_s, 1.0);
        assert_eq!(r.consume.messages, 9_990);
        assert_eq!(r.backlog_end, 10);
        // HdrHistogram reports the top of a value's bucket (3 significant digits).
        assert!((r.publish_latency.max_ms - 10.0).abs() < 0.01);
        assert_eq!(r.sasl_mechanism.as_deref(), Some("PLAIN"));
        assert_eq!(r.samples[0].publish_msg_s, 10_000.0);
        let d = &r.publish_distribution;
        assert_eq!(d.last().unwrap().percentile, 100.0);
        assert!(d.windows(2).all(|w| w[0].ms <= w[1].ms), "{d:?}");
        let table = r.table();
        assert!(table.contains("1000 msg/s  1.00 MB/s"), "{table}");
        assert!(
            table.contains("backlog at end             10 messages"),
            "{table}"
        );
        let json: serde_json::Value = serde_json::to_value(&r).unwrap();
        let p50 = json["publish_latency"]["p50_ms"].as_f64().unwrap();
        assert!((p50 - 5.0).abs() < 0.01, "{p50}");
        let html = html::render(&r);
        assert!(html.contains("a &lt;b&gt; &amp; c") && !html.contains("a <b>"));
        assert_eq!(html.matches("<svg").count(), 5);
    }
}
