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
        let mut args = vec!["dev", "--kafka-addr", kafka_addr];
        args.extend_from_slice(extra);
        Self::start_role(data_dir, &args, "bootstrap: ")
    }

    /// Starts `fjord <args…> --data-dir <data_dir>` and waits until it prints a line starting
    /// with `ready_prefix`; `bootstrap` is the rest of that line.
    pub fn start_role(data_dir: &Path, args: &[&str], ready_prefix: &str) -> Fjord {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fjord"))
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--region", REGION])
            // Tests run several `fjord dev`s at once: no fixed control-plane port.
            .env("FJORD_CONTROL_PLANE_ADDR", "127.0.0.1:0")
            .env(
                "FJORD_LOG",
                std::env::var("FJORD_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn fjord");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut ready = None;
        for line in lines.by_ref() {
            let line = line.expect("read fjord stdout");
            if let Some(rest) = line.trim().strip_prefix(ready_prefix) {
                ready = Some(rest.to_string());
                break;
            }
        }
        let bootstrap =
            ready.unwrap_or_else(|| panic!("fjord {args:?} exited before it was ready"));
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

/// Creates a topic over a raw connection (PLAIN login) and checks the result. (rdkafka's
/// AdminClient never serves OAUTHBEARER token-refresh events, so it cannot log in with MSK IAM.)
pub async fn create_topic(fjord: &Fjord, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;

    let mut conn = raw::RawConn::connect(&fjord.bootstrap);
    conn.login_plain(&fjord.credentials());
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.into())))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_value(Some(StrBytes::from_string(v.to_string())))
                })
                .collect(),
        );
    let req = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(30_000);
    let resp: CreateTopicsResponse =
        tokio::task::block_in_place(|| conn.call(ApiKey::CreateTopics, 7, &req));
    let result = &resp.topics[0];
    assert_eq!(
        result.error_code, 0,
        "creating topic {name}: {:?}",
        result.error_message
    );
}

/// A producer context that authenticates like [`MskIam`] and records which messages were acked
/// (by the index each message carries as its delivery opaque) and how many failed.
#[derive(Clone)]
pub struct Deliveries {
    iam: MskIam,
    /// Indexes of acknowledged messages, in ack order.
    pub acked: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
    /// Count of failed deliveries.
    pub failed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Deliveries {
    /// A context for the dev credentials of `fjord`.
    pub fn new(fjord: &Fjord) -> Deliveries {
        Deliveries {
            iam: MskIam(fjord.credentials()),
            acked: Default::default(),
            failed: Default::default(),
        }
    }

    /// How many messages were acked so far.
    pub fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// How many deliveries failed so far.
    pub fn failed_count(&self) -> usize {
        self.failed.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl ClientContext for Deliveries {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.iam.generate_oauth_token(config)
    }
}

impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, index: Box<usize>) {
        match result {
            Ok(_) => self.acked.lock().unwrap().push(*index),
            Err((e, _)) => {
                eprintln!("delivery of message {index} failed: {e}");
                self.failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// Sends `record` on a threaded producer, waiting while librdkafka's local queue is full.
pub fn send_waiting<'a, K, P>(
    producer: &rdkafka::producer::ThreadedProducer<Deliveries>,
    mut record: rdkafka::producer::BaseRecord<'a, K, P, Box<usize>>,
) where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    use rdkafka::types::RDKafkaErrorCode;
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((e, r)) => {
                assert_eq!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::QueueFull),
                    "send: {e}"
                );
                record = r;
                // Let the producer's thread drain the queue; delivery callbacks make room.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// Reads every partition of `topic` from the beginning (no group), until at least
/// `expect_at_least` messages arrived and two quiet seconds passed, or two minutes.
pub fn read_all(
    fjord: &Fjord,
    topic: &str,
    partitions: i32,
    expect_at_least: usize,
) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let c: BaseConsumer<MskIam> = client_config(&fjord.bootstrap)
        .set("group.id", "fjord-test-reader")
        .set("enable.auto.commit", "false")
        .create_with_context(MskIam(fjord.credentials()))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut idle_since = Instant::now();
    while Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(m) => {
                let m = m.expect("consume");
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                idle_since = Instant::now();
            }
            None if out.len() >= expect_at_least
                && idle_since.elapsed() > Duration::from_secs(2) =>
            {
                break
            }
            None => {}
        }
    }
    out
}

/// Commits `offset` for `topic`/`partition` as a member of `group` (joins, waits for its
/// assignment, commits synchronously).
pub fn commit_offset(fjord: &Fjord, group: &str, topic: &str, partition: i32, offset: i64) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let c: BaseConsumer<MskIam> = client_config(&fjord.bootstrap)
        .set("group.id", group)
        .create_with_context(MskIam(fjord.credentials()))
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.assignment().map(|a| a.count()).unwrap_or(0) == 0 {
        assert!(
            Instant::now() < deadline,
            "consumer never got its assignment"
        );
        // Polling also serves librdkafka's token refresh and group events.
        let _ = c.poll(Duration::from_millis(100));
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .unwrap();
    c.commit(&tpl, CommitMode::Sync).expect("commit offsets");
}

/// The offset `group` has committed for `topic`/`partition`.
pub fn committed_offset(
    fjord: &Fjord,
    group: &str,
    topic: &str,
    partition: i32,
) -> rdkafka::Offset {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::TopicPartitionList;
    let c: BaseConsumer<MskIam> = client_config(&fjord.bootstrap)
        .set("group.id", group)
        .create_with_context(MskIam(fjord.credentials()))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    // rdkafka-rust serves the OAUTHBEARER token refresh only from poll(), so the consumer must
    // be polled while it looks for its coordinator; retry until a deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    let committed = loop {
        let _ = c.poll(Duration::from_millis(100));
        match c.committed_offsets(tpl.clone(), Duration::from_secs(2)) {
            Ok(committed) => break committed,
            Err(e) => assert!(Instant::now() < deadline, "fetch committed offsets: {e}"),
        }
    };
    committed.find_partition(topic, partition).unwrap().offset()
}
