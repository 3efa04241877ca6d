//! Durability and tiering through `fjord dev` as a child process.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::Offset;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acked_message_and_keeps_group_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut fjord = Fjord::start(dir.path(), &addr, &[]);
    create_topic(&fjord, "durable", 4, &[]).await;

    // A committed group offset before the crash.
    let group = "durable-group";
    commit_offset(&fjord, group, "durable", 2, 42);

    let ctx = Deliveries::new(&fjord);
    let producer: ThreadedProducer<Deliveries> = client_config(&fjord.bootstrap)
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "10000")
        .create_with_context(ctx.clone())
        .unwrap();
    let mut sent = 0usize;
    // Keep producing until a good number are acked, then kill -9 while more are in flight.
    while ctx.acked_count() < 3_000 {
        let v = format!("m-{sent}");
        send_waiting(
            &producer,
            BaseRecord::<(), _, _>::with_opaque_to("durable", Box::new(sent)).payload(&v),
        );
        sent += 1;
    }
    fjord.kill9();
    let acked: HashSet<String> = ctx
        .acked
        .lock()
        .unwrap()
        .iter()
        .map(|i| format!("m-{i}"))
        .collect();
    drop(producer);
    assert!(acked.len() >= 3_000);

    let fjord = Fjord::start(dir.path(), &addr, &[]);
    let got: HashSet<String> = read_all(&fjord, "durable", 4, acked.len())
        .into_iter()
        .collect();
    let missing: Vec<_> = acked.difference(&got).take(5).collect();
    assert!(
        missing.is_empty(),
        "acked messages lost after kill -9: {missing:?}"
    );

    assert_eq!(
        committed_offset(&fjord, group, "durable", 2),
        Offset::Offset(42),
        "committed offset survived the crash"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimmed_wal_data_comes_back_from_the_object_store() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let small = [
        "--upload-bytes",
        "65536",
        "--upload-interval-ms",
        "100",
        "--tail-cache-bytes",
        "65536",
        "--wal-segment-bytes",
        "262144",
    ];
    let mut fjord = Fjord::start(dir.path(), &addr, &small);
    create_topic(&fjord, "tiered", 2, &[]).await;
    let ctx = Deliveries::new(&fjord);
    let producer: ThreadedProducer<Deliveries> = client_config(&fjord.bootstrap)
        .set("acks", "all")
        .set("linger.ms", "2")
        .create_with_context(ctx.clone())
        .unwrap();
    let n = 4_000;
    for i in 0..n {
        let v = format!("tiered-{i}-{}", "x".repeat(500));
        send_waiting(
            &producer,
            BaseRecord::<(), _, _>::with_opaque_to("tiered", Box::new(i)).payload(&v),
        );
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(ctx.acked_count(), n);

    // Wait until the node has uploaded and trimmed: objects exist and the WAL's live segments
    // hold less than what was produced (2 MB). Trimmed segments kept for reuse (`*.free`) are
    // not live.
    let objects = dir.path().join("objects");
    let wal = dir.path().join("nodes").join("node-1").join("wal");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let object_bytes = dir_size(&objects);
        let wal_bytes = live_wal_bytes(&wal);
        if object_bytes > 2_000_000 && wal_bytes < 1_000_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not tiered: objects {object_bytes} B, wal {wal_bytes} B"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A restart empties the tail cache: everything must come from the object store.
    assert!(fjord.terminate().success(), "clean exit");
    let fjord = Fjord::start(dir.path(), &addr, &small);
    let got = read_all(&fjord, "tiered", 2, n);
    let expected: HashSet<String> = (0..n)
        .map(|i| format!("tiered-{i}-{}", "x".repeat(500)))
        .collect();
    let got_set: HashSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), n, "no duplicates");
    assert_eq!(got_set, expected, "every message back intact");
}

/// Bytes in the WAL segments of `wal` (`*.wal`), not counting kept free segments.
fn live_wal_bytes(wal: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(wal) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "wal"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
