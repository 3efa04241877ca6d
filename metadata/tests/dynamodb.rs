//! The DynamoDB backend against the conformance suite, on a real moto server (PyPI
//! `moto[server]`, installed by `./scripts/test`) that each test starts on 127.0.0.1 and stops at
//! its end. Every case gets its own table.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fjord_metadata::conformance::{self, Store};
use fjord_metadata::dynamodb::{Credentials, DynamoConfig, DynamoStore};
use fjord_metadata::store::PartitionCommit;
use fjord_metadata::{ManifestEntry, MetadataError, MetadataStore, PartitionOwner, Topic};
use uuid::Uuid;

/// A running moto server, killed when dropped (also when a test panics).
struct Moto {
    child: Child,
    endpoint: String,
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

fn start_moto() -> Moto {
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

fn config(moto: &Moto, prefix: &str) -> DynamoConfig {
    let mut c = DynamoConfig::from_url(&format!(
        "dynamodb://{prefix}?region=us-east-1&endpoint={}",
        moto.endpoint
    ))
    .expect("url");
    c.credentials = Some(Credentials::new("test", "test", None, None, "test"));
    c
}

/// A store on a fresh table.
async fn fresh(moto: &Moto) -> DynamoStore {
    let prefix = format!("t{}", Uuid::new_v4().simple());
    let s = DynamoStore::from_config(config(moto, &prefix)).expect("client");
    s.create_tables().await.expect("create table");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_single_store() {
    let moto = start_moto();
    conformance::run_all(|| {
        let moto = &moto;
        async move { Arc::new(fresh(moto).await) as Store }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_two_clients_on_one_table() {
    let moto = start_moto();
    conformance::run_shared(|| {
        let moto = &moto;
        async move {
            let a = fresh(moto).await;
            // A second, independent client (own connection pool) on the same table, as a
            // gateway and a storage node would have.
            let b = DynamoStore::from_config(config(
                moto,
                a.table_name().trim_end_matches("-metadata"),
            ))
            .expect("client");
            (Arc::new(a) as Store, Arc::new(b) as Store)
        }
    })
    .await;
}

fn topic(partitions: i32) -> Topic {
    Topic {
        id: Uuid::new_v4(),
        cluster_id: Uuid::new_v4(),
        name: "big".to_string(),
        partitions,
        configs: Default::default(),
        version: 0,
        created_ms: 0,
    }
}

fn owners(t: &Topic) -> Vec<PartitionOwner> {
    (0..t.partitions)
        .map(|p| PartitionOwner {
            topic_id: t.id,
            partition: p,
            node_id: "n1".to_string(),
            epoch: 0,
            log_start_offset: 0,
        })
        .collect()
}

/// Topics and commits larger than one DynamoDB transaction (100 actions) still work whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_one_transaction() {
    let moto = start_moto();
    let s = fresh(&moto).await;
    let t = topic(250);
    s.create_topic(&t, &owners(&t)).await.expect("create");
    assert_eq!(
        s.list_partition_owners(t.id).await.expect("owners").len(),
        250
    );
    assert_eq!(
        s.list_partitions_of_node("n1")
            .await
            .expect("of node")
            .len(),
        250
    );

    let commits: Vec<PartitionCommit> = (0..t.partitions)
        .map(|p| PartitionCommit {
            topic_id: t.id,
            partition: p,
            epoch: 0,
            entries: vec![ManifestEntry {
                topic_id: t.id,
                partition: p,
                base_offset: 0,
                end_offset: 10,
                max_timestamp_ms: 1,
                object_key: "obj".to_string(),
                position: u64::try_from(p).expect("non-negative") * 100,
                length: 100,
            }],
            producers: vec![],
        })
        .collect();
    s.commit_manifest("n1", &commits).await.expect("commit");
    // A retry of the whole call after it landed is accepted and changes nothing.
    s.commit_manifest("n1", &commits).await.expect("retry");
    assert_eq!(s.manifest_references("obj").await.expect("refs"), 250);

    let removed = s.delete_topic(t.id).await.expect("delete");
    assert_eq!(removed.len(), 250);
    assert_eq!(s.manifest_references("obj").await.expect("refs"), 0);
    assert!(s
        .list_partition_owners(t.id)
        .await
        .expect("owners")
        .is_empty());
}

#[tokio::test]
async fn missing_table_names_the_fix_and_create_is_idempotent() {
    let moto = start_moto();
    let s = DynamoStore::from_config(config(&moto, "absent")).expect("client");
    match s.get_account("123456789012").await {
        Err(MetadataError::Backend(msg)) => assert!(msg.contains("init-metadata"), "{msg}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    s.create_tables().await.expect("create");
    s.create_tables().await.expect("create again");
    assert_eq!(s.get_account("123456789012").await.expect("get"), None);
}

#[test]
fn connect_parses_the_url() {
    let s = DynamoStore::connect("dynamodb://fjord?region=eu-west-1&endpoint=http://127.0.0.1:1")
        .expect("connect");
    assert_eq!(s.table_name(), "fjord-metadata");
    assert!(matches!(
        DynamoStore::connect("dynamodb://fjord?bogus=1"),
        Err(MetadataError::InvalidArgument(_))
    ));
}
