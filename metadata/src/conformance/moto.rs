//! A real moto server (PyPI `moto[server]`, installed into `.venv` by `./scripts/test`) for
//! tests against DynamoDB and S3 endpoints, started on 127.0.0.1 by the test and killed when
//! dropped.
//!
//! Test-only code: a missing or broken moto is a setup error, so it panics with what to run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server, killed when dropped (also when a test panics).
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$FJORD_MOTO_SERVER`, else the workspace's `.venv/bin/moto_server`, else `moto_server` on
/// the PATH.
fn moto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FJORD_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("moto_server"))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| {
            panic!(
                "moto_server not found (looked at $FJORD_MOTO_SERVER, {}, and PATH): run \
                 ./scripts/test, which installs moto[server] into .venv",
                venv.display()
            )
        })
}

/// Runs moto's own server entry point with request threads turned off. moto checks a
/// transaction's conditions and applies its writes without a lock, so on its default threaded
/// server two racing conditional writes can both succeed, which DynamoDB never allows; serving
/// one request at a time restores the atomicity the conformance races test.
const SERIAL_MOTO: &str = "import sys, moto.server as s\n\
orig = s.run_simple\n\
s.run_simple = lambda *a, **k: orig(*a, **dict(k, threaded=False))\n\
sys.argv[0] = 'moto_server'\n\
s.main()\n";

/// The Python interpreter a `moto_server` console script runs on (its `#!` line).
fn interpreter_of(script: &std::path::Path) -> PathBuf {
    let text = std::fs::read(script).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): run ./scripts/test, which installs moto[server]",
            script.display()
        )
    });
    let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    match first.strip_prefix("#!") {
        Some(line) if line.contains("python") => {
            let line = line.trim();
            PathBuf::from(line.strip_prefix("/usr/bin/env ").unwrap_or(line))
        }
        _ => panic!(
            "{} is not moto's Python console script; run ./scripts/test",
            script.display()
        ),
    }
}

/// Starts moto on a free loopback port and waits until it listens.
pub fn start_moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("pick a free port")
        .port();
    let binary = moto_binary();
    let python = interpreter_of(&binary);
    let child = Command::new(&python)
        .args([
            "-c",
            SERIAL_MOTO,
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}): run ./scripts/test, which installs moto[server]",
                binary.display()
            )
        });
    let mut moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    // Readiness: moto listens once it has loaded; poll the port, bounded.
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return moto;
        }
        if let Ok(Some(status)) = moto.child.try_wait() {
            panic!("moto_server exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen within 30s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Moto {
    /// Sends one unsigned HTTP/1.0 request (moto does not check signatures) and returns the
    /// status code and body.
    pub fn http(&self, method: &str, path: &str) -> (u16, String) {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut conn = TcpStream::connect(addr).expect("connect to moto");
        write!(
            conn,
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
        )
        .expect("send to moto");
        let mut response = String::new();
        conn.read_to_string(&mut response).expect("read from moto");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// Creates an S3 bucket.
    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) = self.http("PUT", &format!("/{bucket}"));
        assert_eq!(status, 200, "create bucket {bucket}: {body}");
    }

    /// Keys and sizes of the objects under `prefix` (first 1000).
    pub fn list_objects(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let (status, body) = self.http("GET", &format!("/{bucket}?list-type=2&prefix={prefix}"));
        assert_eq!(status, 200, "list {bucket}: {body}");
        let mut out = Vec::new();
        for part in body.split("<Contents>").skip(1) {
            let field = |name: &str| {
                part.split_once(&format!("<{name}>"))
                    .and_then(|(_, rest)| rest.split_once(&format!("</{name}>")))
                    .map(|(v, _)| v.to_string())
                    .unwrap_or_default()
            };
            out.push((field("Key"), field("Size").parse().unwrap_or(0)));
        }
        out
    }
}
