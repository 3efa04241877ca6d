//! ListOffsets by timestamp at record granularity, from the tail cache and from object storage,
//! across compression codecs.

use super::*;
use crate::partition::codes::KAFKA_STORAGE_ERROR;

/// One batch of records with these timestamps, compressed with `compression`.
fn timed_batch(timestamps: &[i64], compression: Compression) -> Bytes {
    super::timed_batch(timestamps, compression, |i, ts| {
        (None, Bytes::from(format!("record {i} at {ts} ").repeat(20)))
    })
}

async fn at(h: &Harness, node: &StorageNode, ts: i64) -> (i16, i64, i64) {
    let r = h.list_offset(node, 0, ts).await;
    (r.error_code, r.offset, r.timestamp)
}

/// Offsets 0..4 plain, 4..8 gzip, 8..12 zstd (timestamps out of order), 12..15 snappy.
async fn produce_mixed(h: &Harness, node: &StorageNode) {
    let batches = [
        timed_batch(&[1000, 1010, 1020, 1030], Compression::None),
        timed_batch(&[2000, 2010, 2020, 2030], Compression::Gzip),
        timed_batch(&[3000, 3010, 3030, 3020], Compression::Zstd),
        timed_batch(&[2500, 2600, 2700], Compression::Snappy),
    ];
    for (b, base) in batches.into_iter().zip([0, 4, 8, 12]) {
        let r = h.produce(node, 0, b, LIMITS).await;
        assert_eq!((r.error_code, r.base_offset), (0, base));
    }
}

async fn assert_exact(h: &Harness, node: &StorageNode, source: &str) {
    let cases = [
        (0, (0, 0, 1000)),
        (1015, (0, 2, 1020)),
        (1031, (0, 4, 2000)),
        (2005, (0, 5, 2010)),
        (2030, (0, 7, 2030)),
        // Past every gzip record: the zstd batch's first record is the answer.
        (2031, (0, 8, 3000)),
        (3005, (0, 9, 3010)),
        // Inside an unordered batch: the earliest offset at or after, not the next larger time.
        (3015, (0, 10, 3030)),
        (3025, (0, 10, 3030)),
        (3031, (0, -1, -1)),
        // The record with the largest timestamp, not the last one written.
        (-3, (0, 10, 3030)),
    ];
    for (ts, want) in cases {
        assert_eq!(at(h, node, ts).await, want, "timestamp {ts} from {source}");
    }
}

#[tokio::test]
async fn by_time_answers_the_exact_record_from_cache_and_object_store() {
    let h = Harness::new(1, &[]).await;
    let mut cfg = h.config();
    cfg.tail_cache_bytes = 0; // tiered batches leave memory at once
    let node = h.open(cfg).await;
    produce_mixed(&h, &node).await;
    let key = (h.topic, 0);
    assert_eq!(node.cache.lock().first_offset(&key), Some(0));
    assert_exact(&h, &node, "the tail cache").await;

    node.tier_round(&mut None).await.unwrap();
    assert_eq!(node.cache.lock().first_offset(&key), None);
    assert!(!h.store.list_manifest(h.topic, 0).await.unwrap().is_empty());
    assert_exact(&h, &node, "object storage").await;

    // New data after the tiered range is found in the cache, past the tiered entries.
    let r = h
        .produce(
            &node,
            0,
            timed_batch(&[4000, 5000, 4500], Compression::Lz4),
            LIMITS,
        )
        .await;
    assert_eq!(r.base_offset, 15);
    assert_eq!(at(&h, &node, 4001).await, (0, 16, 5000));
    assert_eq!(at(&h, &node, -3).await, (0, 16, 5000));
    assert_eq!(at(&h, &node, 3031).await, (0, 15, 4000));
    node.shutdown().await;

    // After a restart (cache rebuilt from what is left) the answers hold.
    let node = h.open(h.config()).await;
    assert_exact_after_restart(&h, &node).await;
    node.shutdown().await;
}

async fn assert_exact_after_restart(h: &Harness, node: &StorageNode) {
    assert_eq!(at(h, node, 3015).await, (0, 10, 3030));
    assert_eq!(at(h, node, 4001).await, (0, 16, 5000));
    assert_eq!(at(h, node, 5001).await, (0, -1, -1));
    assert_eq!(at(h, node, -3).await, (0, 16, 5000));
}

#[tokio::test]
async fn log_append_time_records_all_carry_the_append_time() {
    let h = Harness::new(1, &[]).await;
    let node = h.open(h.config()).await;
    let limits = TopicLimits {
        log_append_time: true,
        ..LIMITS
    };
    h.clock.0.store(50_000, Ordering::SeqCst);
    h.produce(&node, 0, timed_batch(&[5, 6, 7], Compression::Gzip), limits)
        .await;
    h.clock.0.store(60_000, Ordering::SeqCst);
    h.produce(&node, 0, timed_batch(&[1, 2], Compression::Zstd), limits)
        .await;
    // The client's own timestamps are ignored.
    assert_eq!(at(&h, &node, 6).await, (0, 0, 50_000));
    assert_eq!(at(&h, &node, 50_001).await, (0, 3, 60_000));
    assert_eq!(at(&h, &node, -3).await, (0, 3, 60_000));
    assert_eq!(at(&h, &node, 60_001).await, (0, -1, -1));
    node.shutdown().await;
}

#[tokio::test]
async fn records_below_the_log_start_are_not_answers() {
    let h = Harness::new(1, &[]).await;
    let node = h.open(h.config()).await;
    h.produce(
        &node,
        0,
        timed_batch(&[10, 40, 20, 30], Compression::Zstd),
        LIMITS,
    )
    .await;
    let del = DeleteRecordsRequest {
        partitions: vec![DeleteRecordsPartition {
            topic_id: h.topic,
            partition: 0,
            offset: 2,
        }],
    };
    assert_eq!(
        node.delete_records(del).await.unwrap().partitions[0].error_code,
        0
    );
    assert_eq!(at(&h, &node, 0).await, (0, 2, 20));
    assert_eq!(at(&h, &node, 25).await, (0, 3, 30));
    assert_eq!(at(&h, &node, -3).await, (0, 3, 30));
    node.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_tiered_batch_is_a_storage_error() {
    let h = Harness::new(1, &[]).await;
    let mut cfg = h.config();
    cfg.tail_cache_bytes = 0;
    let node = h.open(cfg).await;
    h.produce(&node, 0, timed_batch(&[1, 2, 3], Compression::Gzip), LIMITS)
        .await;
    node.tier_round(&mut None).await.unwrap();
    let e = h.store.list_manifest(h.topic, 0).await.unwrap().remove(0);
    // Damage the last record byte of the stored batch; its header still parses.
    let path = h.dir.path().join("objects").join(&e.object_key);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = usize::try_from(e.position + e.length).unwrap() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    assert_eq!(at(&h, &node, 2).await, (KAFKA_STORAGE_ERROR, -1, -1));
    assert_eq!(at(&h, &node, -3).await, (KAFKA_STORAGE_ERROR, -1, -1));
    // Positions need no record reads and still answer.
    assert_eq!(at(&h, &node, -1).await, (0, 3, -1));
    // A time past the damaged batch never opens it.
    assert_eq!(at(&h, &node, 4).await, (0, -1, -1));
    node.shutdown().await;
}
