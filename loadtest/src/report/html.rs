//! A self-contained HTML report: inline SVG charts, no scripts or external assets, so it opens
//! in any browser from a file.

use std::fmt::Write as _;

use super::{PercentilePoint, RunResult};

const W: f64 = 720.0;
const H: f64 = 240.0;
const PAD: f64 = 48.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"];

/// One line of a chart.
struct Series<'a> {
    name: &'a str,
    points: Vec<(f64, f64)>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart; `log_x` spaces x as -log10(100 - x) (for percentiles).
fn chart(title: &str, x_label: &str, y_label: &str, series: &[Series<'_>], log_x: bool) -> String {
    let tx = |x: f64| {
        if log_x {
            -(100.0 - x.min(99.9999)).log10()
        } else {
            x
        }
    };
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in all {
        x0 = x0.min(tx(x));
        x1 = x1.max(tx(x));
        y1 = y1.max(y);
    }
    let mut svg = format!(
        "<h2>{}</h2><svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\">",
        esc(title)
    );
    if x0 > x1 {
        svg.push_str("<text x=\"60\" y=\"120\">no data</text></svg>");
        return svg;
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.05 };
    let px = |x: f64| PAD + (tx(x) - x0) / (x1 - x0) * (W - 2.0 * PAD);
    let py = |y: f64| H - PAD + -(y / y1) * (H - 2.0 * PAD);
    let _ = write!(
        svg,
        "<line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/>\
         <line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{b}\" stroke=\"#888\"/>\
         <text x=\"{PAD}\" y=\"{t}\" font-size=\"11\">{y1:.3} {yl}</text>\
         <text x=\"{cx}\" y=\"{bl}\" font-size=\"11\" text-anchor=\"middle\">{xl}</text>",
        b = H - PAD,
        r = W - PAD,
        t = PAD - 6.0,
        yl = esc(y_label),
        cx = W / 2.0,
        bl = H - 12.0,
        xl = esc(x_label),
    );
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{lx}\" y=\"{ly}\" font-size=\"11\" fill=\"{color}\">{}</text>",
            pts.join(" "),
            esc(s.name),
            lx = W - PAD - 150.0,
            ly = PAD + 14.0 * i as f64,
        );
        if log_x {
            for &(x, y) in &s.points {
                let _ = write!(
                    svg,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{color}\"><title>p{x}: {y:.3} ms</title></circle>",
                    px(x),
                    py(y)
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

fn dist(points: &[PercentilePoint]) -> Vec<(f64, f64)> {
    points.iter().map(|p| (p.percentile, p.ms)).collect()
}

/// Renders the report.
pub fn render(r: &RunResult) -> String {
    let t = |f: &dyn Fn(&super::Sample) -> f64| -> Vec<(f64, f64)> {
        r.samples.iter().map(|s| (s.t_s, f(s))).collect()
    };
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>fjord-loadtest</title>\
         <style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em}</style>\
         </head><body>",
    );
    let _ = write!(
        out,
        "<h1>{}</h1><pre>{}</pre>",
        esc(&r.workload.name),
        esc(&r.table())
    );
    out.push_str(&chart(
        "Throughput",
        "seconds",
        "MB/s",
        &[
            Series {
                name: "publish MB/s",
                points: t(&|s| s.publish_mb_s),
            },
            Series {
                name: "consume MB/s",
                points: t(&|s| s.consume_mb_s),
            },
        ],
        false,
    ));
    out.push_str(&chart(
        "Publish latency per second",
        "seconds",
        "ms",
        &[
            Series {
                name: "p50",
                points: t(&|s| s.publish_latency.p50_ms),
            },
            Series {
                name: "p99",
                points: t(&|s| s.publish_latency.p99_ms),
            },
            Series {
                name: "p99.9",
                points: t(&|s| s.publish_latency.p999_ms),
            },
        ],
        false,
    ));
    out.push_str(&chart(
        "End-to-end latency per second",
        "seconds",
        "ms",
        &[
            Series {
                name: "p50",
                points: t(&|s| s.e2e_latency.p50_ms),
            },
            Series {
                name: "p99",
                points: t(&|s| s.e2e_latency.p99_ms),
            },
            Series {
                name: "p99.9",
                points: t(&|s| s.e2e_latency.p999_ms),
            },
        ],
        false,
    ));
    out.push_str(&chart(
        "Backlog",
        "seconds",
        "messages",
        &[Series {
            name: "backlog",
            points: t(&|s| s.backlog.max(0) as f64),
        }],
        false,
    ));
    out.push_str(&chart(
        "Latency distribution (whole window)",
        "percentile (log scale toward 100)",
        "ms",
        &[
            Series {
                name: "publish",
                points: dist(&r.publish_distribution),
            },
            Series {
                name: "end-to-end",
                points: dist(&r.e2e_distribution),
            },
        ],
        true,
    ));
    out.push_str("</body></html>\n");
    out
}
