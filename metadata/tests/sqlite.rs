//! The SQLite backend against the conformance suite, on real files: fresh stores per case, two
//! handles on one file, and two real processes on one file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fjord_metadata::conformance::{self, Store};
use fjord_metadata::{MetadataError, MetadataStore, PartitionOwner, SqliteStore, Topic};
use uuid::Uuid;

fn open(path: &Path) -> Store {
    Arc::new(SqliteStore::open(path).expect("open sqlite store"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_single_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = AtomicUsize::new(0);
    conformance::run_all(|| {
        let path = dir.path().join(format!(
            "case-{}/metadata.sqlite",
            n.fetch_add(1, Ordering::Relaxed)
        ));
        async move { open(&path) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_two_handles_on_one_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = AtomicUsize::new(0);
    conformance::run_shared(|| {
        let path = dir.path().join(format!(
            "shared-{}.sqlite",
            n.fetch_add(1, Ordering::Relaxed)
        ));
        // Two independent connections, as a gateway and a storage node process would have.
        async move { (open(&path), open(&path)) }
    })
    .await;
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.sqlite");
    let t = topic(1);
    let first_id = {
        let s = open(&path);
        s.create_topic(&t, &[owner(&t)]).await.expect("create");
        s.claim_partition(t.id, 0, "node-b", 0)
            .await
            .expect("claim");
        s.allocate_producer_ids(10).await.expect("allocate")
    };
    let s = open(&path);
    assert_eq!(s.get_topic_by_id(t.id).await.expect("get"), Some(t.clone()));
    let o = s.get_partition_owner(t.id, 0).await.expect("get");
    assert_eq!(
        o.map(|o| (o.node_id, o.epoch)),
        Some(("node-b".to_string(), 1))
    );
    assert_eq!(
        s.allocate_producer_ids(1).await.expect("allocate"),
        first_id + 10,
        "the id counter is persistent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_first_opens_create_the_schema_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fresh.sqlite");
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let (path, barrier) = (path.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                SqliteStore::open(&path)
            })
        })
        .collect();
    let mut stores = Vec::new();
    for o in openers {
        stores.push(o.join().expect("opener thread").expect("open"));
    }
    // All four work on the one schema: ids from each are disjoint and the counter is shared.
    let mut firsts = Vec::new();
    for s in &stores {
        firsts.push(s.allocate_producer_ids(1).await.expect("allocate"));
    }
    firsts.sort_unstable();
    assert_eq!(firsts, vec![0, 1, 2, 3]);
}

#[test]
fn open_reports_an_unusable_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A directory where the file should be.
    match SqliteStore::open(dir.path()) {
        Err(MetadataError::Backend(msg)) => assert!(!msg.is_empty()),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

fn topic(partitions: i32) -> Topic {
    Topic {
        id: Uuid::new_v4(),
        cluster_id: Uuid::new_v4(),
        name: "t".to_string(),
        partitions,
        configs: Default::default(),
        version: 0,
        created_ms: 0,
    }
}

fn owner(t: &Topic) -> PartitionOwner {
    PartitionOwner {
        topic_id: t.id,
        partition: 0,
        node_id: "node-a".to_string(),
        epoch: 0,
        log_start_offset: 0,
    }
}

// ---- two real processes on one file ----

const CHILD_ENV: &str = "FJORD_METADATA_TEST_CHILD_DB";
const CHILD_TOPIC_ENV: &str = "FJORD_METADATA_TEST_CHILD_TOPIC";
const RESULT_PREFIX: &str = "FJORD-RESULT";
const ATTEMPTS: usize = 150;

/// What one process won: the epochs of its successful claims and its producer id blocks.
#[derive(Default)]
struct Won {
    epochs: Vec<i32>,
    blocks: Vec<(i64, i64)>,
}

/// Claims the partition at whatever epoch it last saw and allocates id blocks, `ATTEMPTS`
/// times each, interleaved.
async fn contend(s: &Store, topic_id: Uuid, me: &str) -> Won {
    let mut won = Won::default();
    for i in 0..ATTEMPTS {
        let seen = s
            .get_partition_owner(topic_id, 0)
            .await
            .expect("get owner")
            .expect("partition exists");
        match s.claim_partition(topic_id, 0, me, seen.epoch).await {
            Ok(o) => {
                assert_eq!(o.epoch, seen.epoch + 1);
                won.epochs.push(o.epoch);
            }
            Err(MetadataError::Conflict(_)) => {}
            Err(e) => panic!("claim failed: {e}"),
        }
        let count = 1 + (i as i64 % 5);
        let first = s.allocate_producer_ids(count).await.expect("allocate");
        won.blocks.push((first, count));
    }
    won
}

/// The child half of `two_processes_race_on_one_file`; a no-op unless that test started this
/// binary with the database path in the environment.
#[tokio::test]
async fn cross_process_child() {
    let (Ok(db), Ok(topic)) = (std::env::var(CHILD_ENV), std::env::var(CHILD_TOPIC_ENV)) else {
        return;
    };
    let topic_id = Uuid::parse_str(&topic).expect("topic id from the parent");
    let s = open(Path::new(&db));
    let won = contend(&s, topic_id, "child").await;
    for e in won.epochs {
        println!("{RESULT_PREFIX} epoch {e}");
    }
    for (first, count) in won.blocks {
        println!("{RESULT_PREFIX} ids {first} {count}");
    }
}

fn parse_child(stdout: &str) -> Won {
    let mut won = Won::default();
    for line in stdout.lines() {
        // Not a prefix match: with --nocapture, libtest's "test name ... " shares the first line.
        let Some(at) = line.find(RESULT_PREFIX) else {
            continue;
        };
        let rest = &line[at + RESULT_PREFIX.len()..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        match fields.as_slice() {
            ["epoch", e] => won.epochs.push(e.parse().expect("epoch")),
            ["ids", f, c] => won
                .blocks
                .push((f.parse().expect("first id"), c.parse().expect("count"))),
            _ => panic!("bad child line {line:?}"),
        }
    }
    won
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_race_on_one_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db: PathBuf = dir.path().join("shared.sqlite");
    let s = open(&db);
    let t = topic(1);
    s.create_topic(&t, &[owner(&t)]).await.expect("create");

    let child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "cross_process_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &db)
        .env(CHILD_TOPIC_ENV, t.id.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    let (child, mine) = tokio::join!(child, contend(&s, t.id, "parent"));
    let child = child.expect("run child process");
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "child failed: {}\n{stdout}\n{}",
        child.status,
        String::from_utf8_lossy(&child.stderr)
    );
    let theirs = parse_child(&stdout);
    assert_eq!(theirs.blocks.len(), ATTEMPTS, "child output:\n{stdout}");

    // Every epoch was won by exactly one process, and together they account for all of them.
    let final_epoch = s
        .get_partition_owner(t.id, 0)
        .await
        .expect("get")
        .expect("owner")
        .epoch;
    let mut epochs: Vec<i32> = mine.epochs.iter().chain(&theirs.epochs).copied().collect();
    epochs.sort_unstable();
    assert_eq!(epochs, (1..=final_epoch).collect::<Vec<_>>());
    assert!(
        !mine.epochs.is_empty() && !theirs.epochs.is_empty(),
        "both processes should win some claims (parent {}, child {})",
        mine.epochs.len(),
        theirs.epochs.len()
    );

    let mut blocks: Vec<(i64, i64)> = mine.blocks.into_iter().chain(theirs.blocks).collect();
    blocks.sort_unstable();
    for w in blocks.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "overlapping id blocks {w:?}");
    }
}
