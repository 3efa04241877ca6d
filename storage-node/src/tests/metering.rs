//! Storage metering on a real node: owned partitions measured from memory while loaded and from
//! the stored manifest otherwise, and the usage records the metering task writes.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::metering::{Metering, StorageSampler};

const HOUR: i64 = 3_600_000;

#[tokio::test]
async fn owned_partitions_are_metered_from_memory_or_the_manifest_and_recorded() {
    // Partitions 0 and 2 belong to n1, partition 1 to n2.
    let h = Harness::new(3, &[]).await;
    let cluster = h
        .store
        .get_topic_by_id(h.topic)
        .await
        .unwrap()
        .unwrap()
        .cluster_id;
    let node = h.open(h.config()).await;
    let (b0, b2) = (
        batch(&["a", "bb", "ccc"], 1, None),
        batch(&["dddd"], 2, None),
    );
    assert_eq!(h.produce(&node, 0, b0.clone(), LIMITS).await.error_code, 0);
    assert_eq!(h.produce(&node, 2, b2.clone(), LIMITS).await.error_code, 0);
    let produced = (b0.len() + b2.len()) as u64;

    // Durable but not yet uploaded: counted from the pending list.
    let mut sampler = StorageSampler::default();
    let stored = node.stored_bytes_by_cluster(&mut sampler).await.unwrap();
    assert_eq!(stored, BTreeMap::from([(cluster, produced)]));

    // Uploaded: counted from the manifest, the same bytes.
    node.tier_round(&mut None).await.unwrap();
    let mut tiered = 0;
    for p in [0, 2] {
        let manifest = h.store.list_manifest(h.topic, p).await.unwrap();
        assert_eq!(manifest.len(), 1, "partition {p} uploaded");
        tiered += manifest.iter().map(|e| e.length).sum::<u64>();
    }
    assert_eq!(tiered, produced, "manifest ranges hold the batches as sent");
    let stored = node.stored_bytes_by_cluster(&mut sampler).await.unwrap();
    assert_eq!(stored, BTreeMap::from([(cluster, produced)]));
    node.shutdown().await;

    // A node that has loaded nothing yet (a fresh WAL volume: everything was tiered) measures
    // its owned partitions from the stored manifest.
    let mut cfg = h.config();
    cfg.wal_dir = h.dir.path().join("fresh-wal");
    let node = h.open(cfg).await;
    assert!(node.loaded_partitions().is_empty(), "nothing replayed");
    let mut sampler = StorageSampler::default();
    let stored = node.stored_bytes_by_cluster(&mut sampler).await.unwrap();
    assert_eq!(stored, BTreeMap::from([(cluster, produced)]));

    // The metering task's ticks: a checkpoint of the open period, then the closed period.
    let t0 = 10 * HOUR;
    let period = Duration::from_secs(3600);
    let mut m = Metering::new(t0);
    assert_eq!(m.tick(&node, t0, period).await, 0, "no time has passed");
    assert_eq!(m.tick(&node, t0 + HOUR / 2, period).await, 1);
    let usage = |to| h.store.list_usage(cluster, 0, to);
    let records = usage(t0 + 2 * HOUR).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].source, "storage-node/n1");
    assert_eq!(records[0].period_start_ms, t0);
    assert!((records[0].storage_byte_hours - produced as f64 / 2.0).abs() < 1e-6);
    assert_eq!((records[0].bytes_in, records[0].partition_hours), (0, 0.0));

    // The period closes at t0 + 1 h: its record (same key) replaces the checkpoint.
    m.tick(&node, t0 + HOUR, period).await;
    let records = usage(t0 + 2 * HOUR).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].period_end_ms, t0 + HOUR);
    assert!((records[0].storage_byte_hours - produced as f64).abs() < 1e-6);
    // The next period starts where it ended.
    m.tick(&node, t0 + HOUR + HOUR / 4, period).await;
    let records = usage(t0 + 2 * HOUR).await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].period_start_ms, t0 + HOUR);
    assert!((records[1].storage_byte_hours - produced as f64 / 4.0).abs() < 1e-6);
    node.shutdown().await;
}
