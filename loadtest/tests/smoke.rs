//! Smoke test: `fjord dev` as a child process, then the `fjord-loadtest` binary against it with
//! OAUTHBEARER (MSK IAM tokens from the dev credentials file) over plaintext and over TLS, and
//! with PLAIN, checking the JSON result it writes; and a backlog workload's catch-up figure.
//!
//! Needs `target/debug/fjord`: build it first with `cargo build -p fjord`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// `fjord dev` running on a temporary data dir; killed on drop.
struct Fjord {
    child: Child,
    bootstrap: String,
    /// The IAM TLS listener, when one was asked for.
    iam_tls: Option<String>,
}

impl Drop for Fjord {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fjord_binary() -> PathBuf {
    // Test executables live in <target>/<profile>/deps/; binaries of the workspace (built by the
    // test command before the tests) one level up. This holds whatever CARGO_TARGET_DIR is.
    let exe = std::env::current_exe().expect("test executable path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable is inside <target>/<profile>/deps")
        .join("fjord");
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build -p fjord`",
        path.display()
    );
    path
}

fn start_fjord(data_dir: &Path) -> Fjord {
    start_fjord_with(data_dir, &[])
}

/// `fjord dev` with extra flags; with `--kafka-iam-addr`, waits for that listener too.
fn start_fjord_with(data_dir: &Path, flags: &[&str]) -> Fjord {
    let tls = flags.contains(&"--kafka-iam-addr");
    let mut child = Command::new(fjord_binary())
        .args([
            "dev",
            "--kafka-addr",
            "127.0.0.1:0",
            "--region",
            "us-east-1",
        ])
        .args(flags)
        .arg("--data-dir")
        .arg(data_dir)
        .env("FJORD_LOG", "warn")
        .env("FJORD_CONTROL_PLANE_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn fjord dev");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut fjord = Fjord {
        child,
        bootstrap: String::new(),
        iam_tls: None,
    };
    // The banner names the plaintext bootstrap; with more listeners, each is then printed as
    // `kafka listener: host:port`, the TLS one being the one that is not the bootstrap.
    for line in lines.by_ref() {
        let line = line.expect("read fjord stdout");
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("bootstrap: ") {
            fjord.bootstrap = rest.trim().to_string();
        } else if let Some(rest) = line.strip_prefix("kafka listener: ") {
            if rest.trim() != fjord.bootstrap {
                fjord.iam_tls = Some(rest.trim().to_string());
            }
        }
        if !fjord.bootstrap.is_empty() && (!tls || fjord.iam_tls.is_some()) {
            break;
        }
    }
    // Keep draining stdout so fjord never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    assert!(
        !fjord.bootstrap.is_empty() && (!tls || fjord.iam_tls.is_some()),
        "fjord dev exited before printing its bootstrap (and TLS listener)"
    );
    fjord
}

const WORKLOAD: &str = "
name: smoke
topics: 1
partitionsPerTopic: 2
messageSize: 200
randomBytesRatio: 0.5
keyDistributor: KEY_ROUND_ROBIN
producersPerTopic: 1
subscriptionsPerTopic: 1
consumerPerSubscription: 1
producerRate: 500
warmupDurationSeconds: 1
testDurationSeconds: 3
producer: { acks: all, lingerMs: 1 }
consumer: { fetchMaxWaitMs: 50 }
";

/// Runs the harness against the plaintext listener, topics prefixed with `name`, and returns
/// its parsed JSON result.
fn loadtest(
    fjord: &Fjord,
    dir: &Path,
    data_dir: &Path,
    name: &str,
    workload_extra: &str,
    extra: &[&str],
) -> Value {
    let args = [
        &[
            "--bootstrap",
            fjord.bootstrap.as_str(),
            "--topic-prefix",
            name,
        ],
        extra,
    ]
    .concat();
    run_loadtest(dir, data_dir, name, workload_extra, &args)
}

/// Runs the harness with `args` (which name the bootstrap and topic prefix); `name` names the
/// workload and result files.
fn run_loadtest(
    dir: &Path,
    data_dir: &Path,
    name: &str,
    workload_extra: &str,
    args: &[&str],
) -> Value {
    let workload = dir.join(format!("{name}.yaml"));
    std::fs::write(&workload, format!("{WORKLOAD}{workload_extra}")).unwrap();
    let output = dir.join(format!("{name}.json"));
    let html = dir.join(format!("{name}.html"));
    let out = Command::new(env!("CARGO_BIN_EXE_fjord-loadtest"))
        .args(["--quiet", "--fail-on-error"])
        .arg("--workload")
        .arg(&workload)
        .arg("--output")
        .arg(&output)
        .arg("--html")
        .arg(&html)
        .arg("--aws-credentials-file")
        .arg(data_dir.join("credentials"))
        .args(["--aws-profile", "fjord", "--region", "us-east-1"])
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("FJORD_LOADTEST_USERNAME")
        .env_remove("FJORD_LOADTEST_PASSWORD")
        .output()
        .expect("run fjord-loadtest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "fjord-loadtest failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("publish latency"),
        "no table on stdout:\n{stdout}"
    );
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains("<svg") && html.contains("polyline"),
        "HTML report has no charts"
    );
    serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap()
}

fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

fn check(r: &Value, window_s: f64) {
    assert_eq!(
        f(r, "/totals/publish_errors"),
        0.0,
        "{}",
        r["error_samples"]
    );
    assert_eq!(
        f(r, "/totals/consume_errors"),
        0.0,
        "{}",
        r["error_samples"]
    );
    let published = f(r, "/publish/messages");
    let consumed = f(r, "/consume/messages");
    // 500 msg/s for the window. The lower bound allows a loaded 2-core machine (fsync per
    // request in a debug build) to fall well short; the upper bound checks the pacing.
    assert!(
        published >= 0.25 * 500.0 * window_s,
        "published {published}"
    );
    assert!(published <= 1.2 * 500.0 * window_s, "published {published}");
    assert!(consumed >= 0.25 * 500.0 * window_s, "consumed {consumed}");
    assert_eq!(f(r, "/publish/bytes"), published * 200.0);
    for l in ["publish_latency", "e2e_latency"] {
        let p50 = f(r, &format!("/{l}/p50_ms"));
        let p99 = f(r, &format!("/{l}/p99_ms"));
        let max = f(r, &format!("/{l}/max_ms"));
        assert!(f(r, &format!("/{l}/count")) > 0.0, "{l}: no samples");
        assert!(p50 > 0.0 && p50 <= p99 && p99 <= max, "{l}: {}", r[l]);
        assert!(max < 5_000.0, "{l}: max {max} ms on loopback");
    }
    assert!(!r["samples"].as_array().unwrap().is_empty());
}

#[test]
fn smoke_oauthbearer_and_plain_against_fjord_dev() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let fjord = start_fjord(&data_dir);

    let r = loadtest(
        &fjord,
        dir.path(),
        &data_dir,
        "smoke-iam",
        "",
        &[
            "--security-protocol",
            "SASL_PLAINTEXT",
            "--sasl-mechanism",
            "OAUTHBEARER",
        ],
    );
    assert_eq!(r["sasl_mechanism"], "OAUTHBEARER");
    check(&r, 3.0);

    let pid = fjord.child.id().to_string();
    let r = loadtest(
        &fjord,
        dir.path(),
        &data_dir,
        "smoke-plain",
        "idleConnections: 20\n",
        &[
            "--server-pid",
            &pid,
            "--security-protocol",
            "SASL_PLAINTEXT",
            "--sasl-mechanism",
            "PLAIN",
            "--duration",
            "2",
            "--warmup",
            "1",
        ],
    );
    assert_eq!(r["sasl_mechanism"], "PLAIN");
    check(&r, 2.0);
    assert_eq!(f(&r, "/idle_connections"), 20.0);
    assert!(f(&r, "/server/before/rss_kib") > 0.0, "{}", r["server"]);
    assert!(f(&r, "/server/after/cpu_seconds") >= f(&r, "/server/before/cpu_seconds"));
}

#[test]
fn smoke_oauthbearer_over_tls_and_a_backlog_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let fjord = start_fjord_with(&data_dir, &["--kafka-iam-addr", "127.0.0.1:0"]);
    let tls = fjord.iam_tls.clone().unwrap();

    // rdkafka's AdminClient cannot refresh OAUTHBEARER tokens, so with TLS the harness expects
    // its topics to exist: a first run over plaintext with the same prefix creates them.
    let iam = [
        "--security-protocol",
        "SASL_PLAINTEXT",
        "--sasl-mechanism",
        "OAUTHBEARER",
    ];
    let short = ["--duration", "1", "--warmup", "0"];
    check(
        &loadtest(
            &fjord,
            dir.path(),
            &data_dir,
            "tls",
            "",
            &[&iam[..], &short[..]].concat(),
        ),
        1.0,
    );
    let ca = data_dir.join("tls").join("fjord-dev-ca.pem");
    let r = run_loadtest(
        dir.path(),
        &data_dir,
        "tls-run",
        "",
        &[
            "--bootstrap",
            &tls,
            "--topic-prefix",
            "tls",
            "--security-protocol",
            "SASL_SSL",
            "--sasl-mechanism",
            "OAUTHBEARER",
            "--ssl-ca-location",
            ca.to_str().unwrap(),
        ],
    );
    assert_eq!(
        (
            r["security_protocol"].as_str(),
            r["sasl_mechanism"].as_str()
        ),
        (Some("SASL_SSL"), Some("OAUTHBEARER"))
    );
    check(&r, 3.0);
    assert!(
        r["catch_up"].is_null(),
        "no backlog, no catch-up: {}",
        r["catch_up"]
    );

    // A 0.5 MB backlog (2,500 messages of 200 bytes) built before the consumers start: the
    // result times how long they took to read it.
    let r = loadtest(
        &fjord,
        dir.path(),
        &data_dir,
        "backlog",
        "consumerBacklogSizeGB: 0.0005\n",
        &iam,
    );
    // Not `check`: the backlog's messages reach the window seconds old (the consumers join
    // their group first), so its latency bounds do not apply.
    for e in ["/totals/publish_errors", "/totals/consume_errors"] {
        assert_eq!(f(&r, e), 0.0, "{}", r["error_samples"]);
    }
    let c = &r["catch_up"];
    assert!(f(c, "/backlog_bytes") >= 500_000.0, "{c}");
    assert!(f(c, "/read_bytes") >= f(c, "/backlog_bytes"), "{c}");
    let (first, drained) = (f(c, "/first_message_s"), f(c, "/drained_s"));
    assert!(0.0 < first && first <= drained, "{c}");
    assert!(f(c, "/read_mb_per_s") > 0.0, "{c}");
}
