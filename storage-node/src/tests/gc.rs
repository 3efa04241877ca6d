//! Garbage collection of objects no manifest references.

use object_store::path::Path as ObjectPath;
use object_store::PutPayload;

use super::tiering::object_keys;
use super::*;
use crate::config::SystemClock;
use crate::tiering::object::ObjectBuilder;

const HOUR_MS: i64 = 3_600_000;

/// A well-formed object that nothing in metadata references (an upload whose commit never
/// happened).
async fn put_orphan(h: &Harness, key: &str) -> u64 {
    let mut b = ObjectBuilder::new();
    b.add(h.topic, 0, 100, 101, 5, [batch(&["lost"], 5, None)]);
    let (parts, _) = b.finish();
    let size = parts.iter().map(|p| p.len() as u64).sum();
    h.objects
        .put(&ObjectPath::from(key), PutPayload::from_iter(parts))
        .await
        .unwrap();
    size
}

/// A harness whose clock runs a minute ahead of real time (objects carry real modification
/// times, so the objects a test writes are a minute old).
async fn harness(partitions: i32) -> Harness {
    let h = Harness::new(partitions, &[]).await;
    h.clock
        .0
        .store(SystemClock.now_ms() + 60_000, Ordering::SeqCst);
    h
}

/// An object key of node n1 at this WAL position.
fn key(segment: u64, offset: u64) -> String {
    format!("nodes/n1/{segment:020}-{offset:020}.obj")
}

#[tokio::test]
async fn orphans_go_and_referenced_objects_stay() {
    let h = harness(1).await;
    let mut cfg = h.config();
    cfg.gc_grace = Duration::ZERO;
    let node = h.open(cfg).await;
    h.produce(&node, 0, batch(&["a"], 1, None), LIMITS).await;
    node.tier_round(&mut None).await.unwrap();
    let committed = h.store.list_manifest(h.topic, 0).await.unwrap()[0]
        .object_key
        .clone();
    let orphan = key(u64::MAX / 2, 0);
    let size = put_orphan(&h, &orphan).await;
    // Another node's objects are never this node's to collect.
    put_orphan(&h, "nodes/n2/00000000000000000000-00000000000000000001.obj").await;

    let report = node.collect_garbage().await.unwrap();
    assert_eq!(report.listed, 2);
    assert_eq!((report.orphans, report.orphan_bytes), (1, size));
    assert_eq!((report.deleted, report.deleted_bytes), (1, size));
    let mut left = object_keys(&h).await;
    left.sort();
    assert_eq!(
        left,
        vec![
            committed.clone(),
            "nodes/n2/00000000000000000000-00000000000000000001.obj".to_string()
        ]
    );
    node.shutdown().await;

    // The partition moved to n2: n1 no longer holds its manifest, but the object under n1's
    // prefix is still n2's data, and metadata says so.
    h.store.claim_partition(h.topic, 0, "n2", 3).await.unwrap();
    let mut cfg = h.config();
    cfg.gc_grace = Duration::ZERO;
    let node = h.open(cfg).await;
    let report = node.collect_garbage().await.unwrap();
    assert_eq!((report.checked, report.orphans, report.deleted), (1, 0, 0));
    assert!(object_keys(&h).await.contains(&committed));
    node.shutdown().await;
}

#[tokio::test]
async fn recent_orphans_wait_for_the_grace_period_unless_already_settled() {
    let h = harness(1).await;
    let node = h.open(h.config()).await; // grace 1 h
    let early = key(0, 0); // sorts before every upload of this node
    put_orphan(&h, &early).await;
    let late = key(u64::MAX / 2, 0); // after the last settled upload: a commit may still come
    put_orphan(&h, &late).await;

    // Nothing settled yet in this process: only the grace period can clear them.
    let r = node.collect_garbage().await.unwrap();
    assert_eq!((r.recent, r.deleted), (2, 0));

    h.produce(&node, 0, batch(&["a"], 1, None), LIMITS).await;
    node.tier_round(&mut None).await.unwrap();
    let r = node.collect_garbage().await.unwrap();
    assert_eq!((r.recent, r.deleted), (1, 1), "{r:?}");
    assert!(!object_keys(&h).await.contains(&early));
    assert!(object_keys(&h).await.contains(&late));

    // The upload in flight is never collected, however old.
    h.clock.0.fetch_add(2 * HOUR_MS, Ordering::SeqCst);
    node.claim_key(&late).unwrap();
    let r = node.collect_garbage().await.unwrap();
    assert_eq!(r.deleted, 0);
    node.settle_key(&late);
    let r = node.collect_garbage().await.unwrap();
    assert_eq!(r.deleted, 1);
    assert_eq!(object_keys(&h).await.len(), 1, "the committed object stays");
    node.shutdown().await;
}

#[tokio::test]
async fn each_run_does_bounded_work_and_the_next_continues() {
    let h = harness(2).await;
    // Objects under n1's prefix that partition 1 (owned by n2, never loaded here) references:
    // each run must check them against metadata, and keep them.
    for n in 1..=4u64 {
        put_orphan(&h, &key(0, n)).await;
        let entry = fjord_metadata::ManifestEntry {
            topic_id: h.topic,
            partition: 1,
            base_offset: n as i64 * 10,
            end_offset: n as i64 * 10 + 1,
            max_timestamp_ms: 5,
            object_key: key(0, n),
            position: 8,
            length: 10,
        };
        let commit = fjord_metadata::store::PartitionCommit {
            topic_id: h.topic,
            partition: 1,
            epoch: 3,
            entries: vec![entry],
            producers: vec![],
        };
        h.store.commit_manifest("n2", &[commit]).await.unwrap();
    }
    let orphan = key(0, 5);
    put_orphan(&h, &orphan).await;
    let mut cfg = h.config();
    cfg.gc_grace = Duration::ZERO;
    cfg.gc_max_objects_per_run = 2;
    let node = h.open(cfg).await;

    let mut runs = Vec::new();
    for _ in 0..3 {
        let r = node.collect_garbage().await.unwrap();
        assert!(r.more, "{r:?}");
        runs.push((r.checked, r.deleted));
    }
    // Without the cursor every run would check keys 1 and 2 again and never reach the orphan.
    assert_eq!(runs, vec![(2, 0), (2, 0), (2, 1)]);
    let left = object_keys(&h).await;
    assert_eq!(left.len(), 4);
    assert!(!left.contains(&orphan));
    node.shutdown().await;
}
