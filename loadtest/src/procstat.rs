//! Resource usage of the server under test, when it runs on this machine (`--server-pid`):
//! resident memory from `/proc/<pid>/status` and CPU time from `/proc/<pid>/stat`.

use serde::Serialize;

/// Clock ticks per second of `/proc/<pid>/stat` times; 100 on every mainstream Linux build
/// (USER_HZ), which std cannot query without libc.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of a process's usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Resident set size in KiB.
    pub rss_kib: u64,
    /// User + system CPU seconds so far.
    pub cpu_seconds: f64,
}

/// Reads `pid`'s usage, or `None` if the process is gone or /proc is unavailable.
pub fn read(pid: u32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(Usage {
        rss_kib: parse_rss_kib(&status)?,
        cpu_seconds: parse_cpu_ticks(&stat)? as f64 / TICKS_PER_SECOND,
    })
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces and parentheses; fields resume after the
    // last ')'. utime and stime are fields 14 and 15, i.e. 12th and 13th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Server usage over the measured window.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ServerUsage {
    /// The process.
    pub pid: u32,
    /// Usage before the workload (after topics and idle connections were set up).
    pub before: Usage,
    /// Usage at the end of the measured window.
    pub after: Usage,
    /// CPU seconds per GB (10^9 bytes) produced plus consumed in the window (warm-up and
    /// backlog building excluded).
    pub cpu_seconds_per_gb: Option<f64>,
    /// Cores the server kept busy on average over the window.
    pub cpu_cores: f64,
}

/// CPU of one process over the measured window.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct WindowCpu {
    /// CPU seconds per GB (10^9 bytes) produced plus consumed in the window.
    pub cpu_seconds_per_gb: Option<f64>,
    /// Cores kept busy on average over the window.
    pub cpu_cores: f64,
}

impl WindowCpu {
    /// CPU between two readings, over `bytes` moved in `seconds`.
    pub fn between(start: Usage, end: Usage, bytes: u64, seconds: f64) -> Self {
        let cpu = end.cpu_seconds - start.cpu_seconds;
        let gb = bytes as f64 / 1e9;
        Self {
            cpu_seconds_per_gb: (gb > 0.0).then(|| cpu / gb),
            cpu_cores: if seconds > 0.0 { cpu / seconds } else { 0.0 },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let status = "Name:\tfjord\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\n";
        assert_eq!(parse_rss_kib(status), Some(12345));
        let stat = "42 (fjord (dev) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        let me = read(std::process::id()).unwrap();
        assert!(me.rss_kib > 0);
        let (a, b) = (
            Usage {
                rss_kib: 1,
                cpu_seconds: 10.0,
            },
            Usage {
                rss_kib: 1,
                cpu_seconds: 13.0,
            },
        );
        let w = WindowCpu::between(a, b, 2_000_000_000, 6.0);
        assert_eq!(w.cpu_seconds_per_gb, Some(1.5));
        assert_eq!(w.cpu_cores, 0.5);
        assert_eq!(WindowCpu::between(a, b, 0, 6.0).cpu_seconds_per_gb, None);
    }
}
