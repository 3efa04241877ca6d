//! `--find-max`: the highest producer rate the endpoint sustains.
//!
//! First a run at full speed gives an upper bound; then a bisection between zero and that bound
//! runs the workload at fixed rates. A rate is sustained when the measured publish rate is
//! within 5% of it, the backlog at the end is under one second of traffic (consumers keep up),
//! publish p99 is under the bound, and there were no errors. Each step uses fresh topics, so no
//! step reads another's data.

use serde::Serialize;
use tracing::info;

use crate::connection::Connection;
use crate::report::RunResult;
use crate::runner::{run, RunOptions};
use crate::workload::Workload;
use crate::LoadtestError;

/// Search settings.
#[derive(Clone, Copy, Debug)]
pub struct FindMax {
    /// A rate is not sustained if publish p99 exceeds this.
    pub max_p99_ms: f64,
    /// Bisection steps after the full-speed run.
    pub steps: u32,
}

/// One step of the search.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Target msg/s (0 = full speed).
    pub target_rate: f64,
    /// Whether the rate was sustained.
    pub sustained: bool,
    /// The run.
    pub result: RunResult,
}

/// The outcome of the search.
#[derive(Clone, Debug, Serialize)]
pub struct FindMaxResult {
    /// Highest sustained rate in msg/s (0 if none was).
    pub max_sustained_msg_s: f64,
    /// That rate in MB/s.
    pub max_sustained_mb_s: f64,
    /// The p99 bound used.
    pub max_p99_ms: f64,
    /// Every step in order.
    pub steps: Vec<Step>,
}

/// Whether `r` sustained `target` msg/s under `max_p99_ms`.
pub fn sustained(r: &RunResult, target: f64, max_p99_ms: f64) -> bool {
    let subs = f64::from(r.workload.subscriptions_per_topic);
    r.publish.msg_per_s >= 0.95 * target
        && (r.backlog_end as f64) <= target * subs
        && r.publish_latency.p99_ms <= max_p99_ms
        && r.errors() == 0
}

/// Runs the search.
pub fn find_max(
    conn: &Connection,
    workload: &Workload,
    opts: &RunOptions,
    search: FindMax,
) -> Result<FindMaxResult, LoadtestError> {
    let step_opts = |i: usize, rate: f64| RunOptions {
        topic_prefix: format!("{}-step{i}", opts.topic_prefix),
        rate: Some(rate),
        ..opts.clone()
    };
    let full = run(conn, workload, &step_opts(0, 0.0))?;
    let mut hi = full.publish.msg_per_s;
    info!(upper_bound = hi, "full-speed run done");
    let mut steps = vec![Step {
        target_rate: 0.0,
        sustained: false,
        result: full,
    }];
    let mut lo = 0.0;
    // Check the bound itself first: often the full-speed rate is sustainable.
    let mut target = hi;
    for i in 1..=search.steps as usize {
        if target < 1.0 {
            break;
        }
        let result = run(conn, workload, &step_opts(i, target))?;
        let ok = sustained(&result, target, search.max_p99_ms);
        info!(target, ok, "find-max step");
        if opts.progress {
            eprintln!(
                "find-max step {i}: {target:.0} msg/s {}",
                if ok { "sustained" } else { "not sustained" }
            );
        }
        steps.push(Step {
            target_rate: target,
            sustained: ok,
            result,
        });
        if ok {
            lo = target;
            if target >= hi {
                break;
            }
        } else {
            hi = target;
        }
        target = (lo + hi) / 2.0;
    }
    Ok(FindMaxResult {
        max_sustained_msg_s: lo,
        max_sustained_mb_s: lo * f64::from(workload.message_size) / 1e6,
        max_p99_ms: search.max_p99_ms,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample_result;

    #[test]
    fn sustained_needs_rate_backlog_latency_and_no_errors() {
        let mut r = sample_result("x");
        assert!(sustained(&r, 1000.0, 20.0));
        assert!(
            !sustained(&r, 1100.0, 20.0),
            "publish rate below 95% of the target"
        );
        assert!(!sustained(&r, 1000.0, 5.0), "p99 above the bound");
        r.backlog_end = 5_000;
        assert!(!sustained(&r, 1000.0, 20.0), "consumers fell behind");
        r.backlog_end = 0;
        r.totals.consume_errors = 1;
        assert!(!sustained(&r, 1000.0, 20.0), "errors");
    }
}
