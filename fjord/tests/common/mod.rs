//! Shared pieces of the end-to-end tests: `fjord dev` as a child process, credentials, and
//! librdkafka clients that authenticate with MSK IAM OAUTHBEARER tokens made the way
//! aws-msk-iam-sasl-signer makes them.

#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

pub mod raw;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::OAuthToken;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerContext;
use rdkafka::ClientContext;

/// Region the dev tenant and the tokens use.
pub const REGION: &str = "us-east-1";

/// A `fjord dev` child process.
pub struct Fjord {
    child: Child,
    /// `host:port` of its Kafka listener.
    pub bootstrap: String,
    /// Its data dir.
    pub data_dir: PathBuf,
}

impl Fjord {
    /// Starts `fjord dev` on `data_dir` with extra flags, and waits for its banner.
    pub fn start(data_dir: &Path, kafka_addr: &str, extra: &[&str]) -> Fjord {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fjord"))
            .arg("dev")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--kafka-addr", kafka_addr, "--region", REGION])
            .args(extra)
            .env(
                "FJORD_LOG",
                std::env::var("FJORD_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn fjord dev");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut bootstrap = None;
        for line in lines.by_ref() {
            let line = line.expect("read fjord stdout");
            if let Some(addr) = line.trim().strip_prefix("bootstrap: ") {
                bootstrap = Some(addr.to_string());
                break;
            }
        }
        let bootstrap = bootstrap.expect("fjord dev exited before printing its bootstrap address");
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Fjord {
            child,
            bootstrap,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9 fjord");
        self.child.wait().expect("reap fjord");
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for fjord") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "fjord did not stop within 60 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The dev access key from `<data-dir>/credentials`.
    pub fn credentials(&self) -> Credentials {
        Credentials::read(&self.data_dir.join("credentials"))
    }
}

impl Drop for Fjord {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on loopback (for tests that restart Fjord on the same address).
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// An access key id and secret.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret: String,
}

impl Credentials {
    /// Parses an AWS shared-credentials file, profile `fjord`.
    pub fn read(path: &Path) -> Credentials {
        let text = std::fs::read_to_string(path).expect("read credentials file");
        let mut in_profile = false;
        let (mut id, mut secret) = (None, None);
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_profile = line == "[fjord]";
            } else if in_profile {
                if let Some((k, v)) = line.split_once('=') {
                    match k.trim() {
                        "aws_access_key_id" => id = Some(v.trim().to_string()),
                        "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                        _ => {}
                    }
                }
            }
        }
        Credentials {
            access_key_id: id.expect("aws_access_key_id in profile fjord"),
            secret: secret.expect("aws_secret_access_key in profile fjord"),
        }
    }
}

/// A librdkafka client context that authenticates with MSK IAM OAUTHBEARER tokens.
#[derive(Clone)]
pub struct MskIam(pub Credentials);

impl ClientContext for MskIam {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let now = SystemTime::now();
        let token = fjord_tenancy::signer::msk_iam_oauth_token(
            &self.0.access_key_id,
            &self.0.secret,
            None,
            REGION,
            now,
        )?;
        let expires = now + Duration::from_secs(900);
        let lifetime_ms = expires.duration_since(SystemTime::UNIX_EPOCH)?.as_millis() as i64;
        Ok(OAuthToken {
            token,
            principal_name: self.0.access_key_id.clone(),
            lifetime_ms,
        })
    }
}

impl ConsumerContext for MskIam {}

/// Client config for SASL_PLAINTEXT + OAUTHBEARER against `bootstrap`.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "OAUTHBEARER")
        .set("broker.address.family", "v4");
    c
}

/// Creates a topic and waits for the result.
pub async fn create_topic(fjord: &Fjord, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin: AdminClient<MskIam> = client_config(&fjord.bootstrap)
        .create_with_context(MskIam(fjord.credentials()))
        .expect("admin client");
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(-1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create_topics request");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}
