//! Upload, manifest commit, WAL trim, reads from object storage, retention, fencing.

use futures::TryStreamExt;

use super::*;
use crate::partition::codes::*;

pub(super) async fn object_keys(h: &Harness) -> Vec<String> {
    let list: Vec<_> = h.objects.list(None).try_collect().await.unwrap();
    list.into_iter().map(|m| m.location.to_string()).collect()
}

/// Live WAL segments (trimmed ones kept for reuse, `*.free`, are not counted).
pub(super) fn wal_files(h: &Harness) -> usize {
    std::fs::read_dir(h.wal_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "wal")
        })
        .count()
}

#[tokio::test]
async fn tiered_data_is_read_back_from_object_storage_after_trim() {
    let h = Harness::new(2, &[]).await;
    let mut cfg = h.config();
    cfg.tail_cache_bytes = 0; // every tiered batch leaves memory at once
    cfg.wal.segment_bytes = 4096;
    let node = h.open(cfg).await;
    let big = "v".repeat(1500);
    for i in 0..10 {
        let r = h
            .produce(&node, 0, batch(&[&big, &format!("m{i}")], i, None), LIMITS)
            .await;
        assert_eq!(r.base_offset, i * 2);
    }
    let before = wal_files(&h);
    node.tier_round(&mut None).await.unwrap();
    let manifest = h.store.list_manifest(h.topic, 0).await.unwrap();
    assert_eq!(manifest.len(), 1);
    assert_eq!((manifest[0].base_offset, manifest[0].end_offset), (0, 20));
    assert_eq!(object_keys(&h).await.len(), 1);
    assert!(
        wal_files(&h) < before,
        "WAL not trimmed: {before} files before, {} after",
        wal_files(&h)
    );

    // Read back from the object store (the cache is empty).
    let f = h.fetch(&node, 0, 7, 0, 0).await;
    let got = decode(f.records);
    assert_eq!(got.first().map(|x| x.0), Some(6));
    assert_eq!(got.last().map(|x| x.1.clone()), Some("m9".to_string()));
    assert_eq!(got.len(), 14);
    // ListOffsets by time reads the object to find the record (batch 3 holds times 3 and 4).
    let r = h.list_offset(&node, 0, 4).await;
    assert_eq!((r.offset, r.timestamp), (7, 4));
    node.shutdown().await;

    // After a restart nothing is replayed twice and the data is still there.
    let node = h.open(h.config()).await;
    let f = h.fetch(&node, 0, 0, 0, 0).await;
    assert_eq!(f.high_watermark, 20);
    assert_eq!(decode(f.records).len(), 20);
    assert_eq!(
        h.produce(&node, 0, batch(&["next"], 99, None), LIMITS)
            .await
            .base_offset,
        20
    );
    node.tier_round(&mut None).await.unwrap();
    assert_eq!(h.store.list_manifest(h.topic, 0).await.unwrap().len(), 2);
    node.shutdown().await;
}

#[tokio::test]
async fn producer_state_survives_tiering_and_restart() {
    let h = Harness::new(1, &[]).await;
    let last = batch(
        &["b"],
        1,
        Some(Producer {
            id: 4,
            epoch: 2,
            seq: 1,
        }),
    );
    {
        let node = h.open(h.config()).await;
        h.produce(
            &node,
            0,
            batch(
                &["a"],
                1,
                Some(Producer {
                    id: 4,
                    epoch: 2,
                    seq: 0,
                }),
            ),
            LIMITS,
        )
        .await;
        h.produce(&node, 0, last.clone(), LIMITS).await;
        node.tier_round(&mut None).await.unwrap();
        node.shutdown().await;
    }
    let snaps = h.store.producer_snapshots(h.topic, 0).await.unwrap();
    assert_eq!(
        (
            snaps[0].producer_id,
            snaps[0].last_sequence,
            snaps[0].last_offset
        ),
        (4, 1, 1)
    );
    let node = h.open(h.config()).await;
    let dup = h.produce(&node, 0, last, LIMITS).await;
    assert_eq!((dup.error_code, dup.base_offset), (0, 1));
    let gap = h
        .produce(
            &node,
            0,
            batch(
                &["x"],
                1,
                Some(Producer {
                    id: 4,
                    epoch: 2,
                    seq: 5,
                }),
            ),
            LIMITS,
        )
        .await;
    assert_eq!(gap.error_code, OUT_OF_ORDER_SEQUENCE_NUMBER);
    node.shutdown().await;
}

#[tokio::test]
async fn background_upload_runs_when_threshold_reached() {
    let h = Harness::new(1, &[]).await;
    let mut cfg = h.config();
    cfg.upload_bytes = 1;
    let node = h.open(cfg).await;
    // The uploader signals `pending_drained` after each committed upload.
    let drained = node.pending_drained.notified();
    tokio::pin!(drained);
    drained.as_mut().enable();
    h.produce(&node, 0, batch(&["a"], 1, None), LIMITS).await;
    tokio::time::timeout(std::time::Duration::from_secs(10), drained)
        .await
        .unwrap();
    assert_eq!(h.store.list_manifest(h.topic, 0).await.unwrap().len(), 1);
    node.shutdown().await;
}

#[tokio::test]
async fn retention_drops_expired_ranges_and_objects() {
    let h = Harness::new(1, &[("retention.ms", "60000")]).await;
    let node = h.open(h.config()).await;
    h.produce(&node, 0, batch(&["old"], 1_000_000, None), LIMITS)
        .await;
    node.tier_round(&mut None).await.unwrap();
    h.clock.0.store(1_000_000 + 30_000, Ordering::SeqCst);
    h.produce(&node, 0, batch(&["new"], 1_030_000, None), LIMITS)
        .await;
    node.tier_round(&mut None).await.unwrap();
    assert_eq!(object_keys(&h).await.len(), 2);

    node.run_retention().await;
    assert_eq!(
        h.list_offset(&node, 0, -2).await.offset,
        0,
        "nothing expired yet"
    );
    h.clock.0.store(1_000_000 + 61_000, Ordering::SeqCst);
    node.run_retention().await;
    assert_eq!(h.list_offset(&node, 0, -2).await.offset, 1);
    assert_eq!(
        h.fetch(&node, 0, 0, 0, 0).await.error_code,
        OFFSET_OUT_OF_RANGE
    );
    assert_eq!(
        decode(h.fetch(&node, 0, 1, 0, 0).await.records),
        vec![(1, "new".to_string())]
    );
    assert_eq!(object_keys(&h).await.len(), 1);
    node.shutdown().await;
}

#[tokio::test]
async fn lost_ownership_fences_the_partition() {
    let h = Harness::new(1, &[]).await;
    let node = h.open(h.config()).await;
    h.produce(&node, 0, batch(&["a"], 1, None), LIMITS).await;
    h.store.claim_partition(h.topic, 0, "n2", 3).await.unwrap();
    node.tier_round(&mut None).await.unwrap();
    assert!(h.store.list_manifest(h.topic, 0).await.unwrap().is_empty());
    let r = h.produce(&node, 0, batch(&["b"], 1, None), LIMITS).await;
    assert_eq!(r.error_code, NOT_LEADER_OR_FOLLOWER);
    node.shutdown().await;
}

pub(super) fn flaky(h: &mut Harness) -> Arc<flaky::FlakyStore> {
    let f = Arc::new(flaky::FlakyStore::new(h.objects.clone()));
    f.fail.store(true, Ordering::SeqCst);
    h.objects = f.clone();
    f
}

#[tokio::test]
async fn failed_upload_keeps_the_wal_and_is_retried() {
    let mut h = Harness::new(1, &[]).await;
    let store = flaky(&mut h);
    let mut cfg = h.config();
    cfg.wal.segment_bytes = 4096;
    let node = h.open(cfg).await;
    let big = "v".repeat(3000);
    for i in 0..4 {
        h.produce(&node, 0, batch(&[&big], i, None), LIMITS).await;
    }
    let files = wal_files(&h);
    let mut carry = None;
    assert!(node.tier_round(&mut carry).await.is_err());
    assert!(carry.is_some(), "the failed upload is kept for a retry");
    assert!(h.store.list_manifest(h.topic, 0).await.unwrap().is_empty());
    assert_eq!(
        wal_files(&h),
        files,
        "nothing trimmed after a failed upload"
    );
    // Still readable from memory meanwhile.
    assert_eq!(decode(h.fetch(&node, 0, 0, 0, 0).await.records).len(), 4);

    store.fail.store(false, Ordering::SeqCst);
    node.tier_round(&mut carry).await.unwrap();
    assert!(carry.is_none());
    assert_eq!(
        h.store.list_manifest(h.topic, 0).await.unwrap()[0].end_offset,
        4
    );
    assert!(wal_files(&h) < files);
    node.shutdown().await;
}

#[tokio::test]
async fn produce_waits_while_uploads_fail_then_resumes() {
    let mut h = Harness::new(1, &[]).await;
    let store = flaky(&mut h);
    let mut cfg = h.config();
    cfg.upload_bytes = 64; // produces wait beyond 256 pending bytes
    let node = h.open(cfg).await;
    let big = "v".repeat(1000);
    assert_eq!(
        h.produce(&node, 0, batch(&[&big], 1, None), LIMITS)
            .await
            .error_code,
        0
    );

    let h = Arc::new(h);
    let (h2, n2) = (h.clone(), node.clone());
    let mut second =
        tokio::spawn(async move { h2.produce(&n2, 0, batch(&["more"], 2, None), LIMITS).await });
    let blocked = tokio::time::timeout(std::time::Duration::from_millis(300), &mut second).await;
    assert!(
        blocked.is_err(),
        "produce went through although uploads fail"
    );

    store.fail.store(false, Ordering::SeqCst);
    let r = tokio::time::timeout(std::time::Duration::from_secs(20), second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.error_code, r.base_offset), (0, 1));
    node.shutdown().await;
}
