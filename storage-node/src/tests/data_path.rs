//! Produce, fetch, ListOffsets, DeleteRecords, idempotence, recovery, ownership.

use std::time::{Duration, Instant};

use kafka_protocol::records::{RecordBatchDecoder, TimestampType};

use super::*;
use crate::partition::batch::parse_header;
use crate::partition::cache::CachedBatch;
use crate::partition::codes::*;

#[tokio::test]
async fn produce_fetch_round_trip_assigns_offsets() {
    let h = Harness::new(1, &[]).await;
    let node = h.open(h.config()).await;
    let r1 = h
        .produce(&node, 0, batch(&["a", "b", "c"], 10, None), LIMITS)
        .await;
    assert_eq!((r1.error_code, r1.base_offset), (0, 0));
    let r2 = h
        .produce(&node, 0, batch(&["d", "e"], 20, None), LIMITS)
        .await;
    assert_eq!(
        (r2.error_code, r2.base_offset, r2.log_start_offset),
        (0, 3, 0)
    );

    let f = h.fetch(&node, 0, 0, 0, 0).await;
    assert_eq!(
        (f.error_code, f.high_watermark, f.log_start_offset),
        (0, 5, 0)
    );
    let got = decode(f.records.clone());
    let want: Vec<(i64, String)> = ["a", "b", "c", "d", "e"]
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64, v.to_string()))
        .collect();
    assert_eq!(got, want);
    // Leader epoch is stamped into the header.
    assert_eq!(parse_header(&f.records).unwrap().leader_epoch, 3);

    // A fetch inside the second batch starts with that whole batch.
    let f = h.fetch(&node, 0, 4, 0, 0).await;
    assert_eq!(decode(f.records).first().map(|x| x.0), Some(3));
    // At the high watermark: empty; beyond: out of range.
    assert!(h.fetch(&node, 0, 5, 0, 0).await.records.is_empty());
    assert_eq!(
        h.fetch(&node, 0, 6, 0, 0).await.error_code,
        OFFSET_OUT_OF_RANGE
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_fetch_returns_nothing_beyond_the_high_watermark_it_reports() {
    let h = Harness::new(1, &[]).await;
    let node = h.open(h.config()).await;
    h.produce(&node, 0, batch(&["a"], 1, None), LIMITS).await;
    let alone = h.fetch(&node, 0, 0, 0, 0).await;
    assert_eq!(alone.high_watermark, 1);
    // A durable batch already in the tail cache whose high-watermark move has not happened yet
    // (the publisher is preempted between the two): a reader must not get it, or its next fetch
    // is beyond the watermark and out of range (librdkafka then resets to the earliest offset).
    let pending = CachedBatch {
        last_offset: 1,
        max_timestamp: 1,
        bytes: batch(&["b"], 1, None),
    };
    node.cache.lock().insert(1_000, (h.topic, 0), 1, pending);
    let f = h.fetch(&node, 0, 0, 0, 0).await;
    assert_eq!((f.high_watermark, &f.records), (1, &alone.records));
    let next = h.fetch(&node, 0, 1, 0, 0).await;
    assert_eq!((next.error_code, next.records.len()), (NO_ERROR, 0));
    node.shutdown().await;
}

#[tokio::test]
async fn log_append_time_rewrites_timestamp_and_crc() {
    let h = Harness::new(1, &[]).await;
    let node = h.open(h.config()).await;
    let limits = TopicLimits {
        log_append_time: true,
        ..LIMITS
    };
    let r = h
        .produce(&node, 0, batch(&["x", "y"], 5, None), limits)
        .await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.log_append_time_ms, 1_000_000);
    let f = h.fetch(&node, 0, 0, 0, 0).await;
    let hdr = parse_header(&f.records).unwrap();
    assert_eq!(hdr.max_timestamp, 1_000_000);
    assert_eq!(hdr.attributes & 0x08, 0x08);
    // The decoder checks the CRC and reports the timestamp type.
    let mut b = f.records.clone();
    let sets = RecordBatchDecoder::decode_all(&mut b).unwrap();
    assert!(sets[0]
        .records
        .iter()
        .all(|r| r.timestamp_type == TimestampType::LogAppend));
    node.shutdown().await;
}

#[tokio::test]
async fn bad_batches_are_refused_with_kafka_codes() {
    let h = Harness::new(1, &[]).await;
    let node = h.open(h.config()).await;
    let good = batch(&["hello", "world"], 1, None);

    let small = TopicLimits {
        max_message_bytes: 40,
        log_append_time: false,
    };
    let r = h.produce(&node, 0, good.clone(), small).await;
    assert_eq!(r.error_code, MESSAGE_TOO_LARGE);
    assert!(r.error_message.unwrap().contains("max.message.bytes=40"));

    let mut flipped = good.to_vec();
    let n = flipped.len();
    flipped[n - 2] ^= 0xff;
    assert_eq!(
        h.produce(&node, 0, flipped.into(), LIMITS).await.error_code,
        CORRUPT_MESSAGE
    );
    assert_eq!(
        h.produce(&node, 0, good.slice(..good.len() - 3), LIMITS)
            .await
            .error_code,
        CORRUPT_MESSAGE
    );
    assert_eq!(
        h.produce(&node, 0, Bytes::from_static(b"garbage"), LIMITS)
            .await
            .error_code,
        CORRUPT_MESSAGE
    );
    let mut old = good.to_vec();
    old[16] = 1;
    assert_eq!(
        h.produce(&node, 0, old.into(), LIMITS).await.error_code,
        UNSUPPORTED_FOR_MESSAGE_FORMAT
    );

    // Nothing was appended.
    assert_eq!(h.fetch(&node, 0, 0, 0, 0).await.high_watermark, 0);
    assert_eq!(h.produce(&node, 0, good, LIMITS).await.base_offset, 0);
    node.shutdown().await;
}

#[tokio::test]
async fn idempotent_duplicates_and_sequence_errors() {
    let h = Harness::new(1, &[]).await;
    let node = h.open(h.config()).await;
    let p = |seq| {
        Some(Producer {
            id: 7,
            epoch: 0,
            seq,
        })
    };
    let first = batch(&["a", "b", "c"], 1, p(0));
    assert_eq!(
        h.produce(&node, 0, first.clone(), LIMITS).await.base_offset,
        0
    );
    // Retry: success with the original offset, nothing appended.
    let dup = h.produce(&node, 0, first, LIMITS).await;
    assert_eq!((dup.error_code, dup.base_offset), (0, 0));
    assert_eq!(h.fetch(&node, 0, 0, 0, 0).await.high_watermark, 3);
    // Gap.
    let gap = h.produce(&node, 0, batch(&["z"], 1, p(5)), LIMITS).await;
    assert_eq!(gap.error_code, OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_eq!(
        h.produce(&node, 0, batch(&["d"], 1, p(3)), LIMITS)
            .await
            .base_offset,
        3
    );
    // New epoch must start at 0; then the old epoch is fenced.
    let e1 = |seq| {
        Some(Producer {
            id: 7,
            epoch: 1,
            seq,
        })
    };
    assert_eq!(
        h.produce(&node, 0, batch(&["e"], 1, e1(4)), LIMITS)
            .await
            .error_code,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        h.produce(&node, 0, batch(&["e"], 1, e1(0)), LIMITS)
            .await
            .base_offset,
        4
    );
    assert_eq!(
        h.produce(&node, 0, batch(&["f"], 1, p(4)), LIMITS)
            .await
            .error_code,
        INVALID_PRODUCER_EPOCH
    );
    node.shutdown().await;
}

#[tokio::test]
async fn restart_recovers_data_and_producer_state() {
    let h = Harness::new(1, &[]).await;
    let last = batch(
        &["c"],
        3,
        Some(Producer {
            id: 9,
            epoch: 0,
            seq: 2,
        }),
    );
    {
        let node = h.open(h.config()).await;
        h.produce(
            &node,
            0,
            batch(
                &["a", "b"],
                1,
                Some(Producer {
                    id: 9,
                    epoch: 0,
                    seq: 0,
                }),
            ),
            LIMITS,
        )
        .await;
        assert_eq!(
            h.produce(&node, 0, last.clone(), LIMITS).await.base_offset,
            2
        );
        node.shutdown().await;
    }
    let node = h.open(h.config()).await;
    let f = h.fetch(&node, 0, 0, 0, 0).await;
    assert_eq!(f.high_watermark, 3);
    assert_eq!(
        decode(f.records)
            .into_iter()
            .map(|x| x.1)
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    // The retried batch is still recognised, and the sequence continues.
    assert_eq!(h.produce(&node, 0, last, LIMITS).await.base_offset, 2);
    let next = h
        .produce(
            &node,
            0,
            batch(
                &["d"],
                4,
                Some(Producer {
                    id: 9,
                    epoch: 0,
                    seq: 3,
                }),
            ),
            LIMITS,
        )
        .await;
    assert_eq!((next.error_code, next.base_offset), (0, 3));
    node.shutdown().await;
}

#[tokio::test]
async fn long_poll_wakes_on_produce() {
    let h = Arc::new(Harness::new(1, &[]).await);
    let node = h.open(h.config()).await;
    // Nothing arrives: answered empty after the wait.
    let t = Instant::now();
    let f = h.fetch(&node, 0, 0, 50, 1).await;
    assert!(f.records.is_empty() && t.elapsed() >= Duration::from_millis(50));

    let (h2, n2) = (h.clone(), node.clone());
    let waiter = tokio::spawn(async move {
        let t = Instant::now();
        let f = h2.fetch(&n2, 0, 0, 30_000, 1).await;
        (f, t.elapsed())
    });
    tokio::task::yield_now().await;
    h.produce(&node, 0, batch(&["wake"], 1, None), LIMITS).await;
    let (f, elapsed) = waiter.await.unwrap();
    assert_eq!(decode(f.records), vec![(0, "wake".to_string())]);
    assert!(
        elapsed < Duration::from_secs(10),
        "long poll waited {elapsed:?}"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn list_offsets_by_position_and_time() {
    let h = Harness::new(1, &[]).await;
    let node = h.open(h.config()).await;
    h.produce(&node, 0, batch(&["a", "b"], 1000, None), LIMITS)
        .await;
    h.produce(&node, 0, batch(&["c", "d"], 2000, None), LIMITS)
        .await;
    h.produce(&node, 0, batch(&["e"], 3000, None), LIMITS).await;
    assert_eq!(h.list_offset(&node, 0, -2).await.offset, 0);
    assert_eq!(h.list_offset(&node, 0, -1).await.offset, 5);
    let r = h.list_offset(&node, 0, 1500).await;
    // Record granularity: the first record at or after the time, with its own timestamp.
    assert_eq!((r.offset, r.timestamp, r.leader_epoch), (2, 2000, 3));
    let r = h.list_offset(&node, 0, 1001).await;
    assert_eq!((r.offset, r.timestamp), (1, 1001));
    assert_eq!(h.list_offset(&node, 0, 9999).await.offset, -1);
    let max = h.list_offset(&node, 0, -3).await;
    assert_eq!((max.offset, max.timestamp), (4, 3000));
    node.shutdown().await;
}

#[tokio::test]
async fn delete_records_raises_log_start() {
    let h = Harness::new(1, &[]).await;
    let node = h.open(h.config()).await;
    h.produce(&node, 0, batch(&["a", "b", "c"], 1, None), LIMITS)
        .await;
    h.produce(&node, 0, batch(&["d", "e"], 1, None), LIMITS)
        .await;
    let del = |offset| DeleteRecordsRequest {
        partitions: vec![DeleteRecordsPartition {
            topic_id: h.topic,
            partition: 0,
            offset,
        }],
    };
    let r = node
        .delete_records(del(3))
        .await
        .unwrap()
        .partitions
        .remove(0);
    assert_eq!((r.error_code, r.low_watermark), (0, 3));
    assert_eq!(
        h.fetch(&node, 0, 1, 0, 0).await.error_code,
        OFFSET_OUT_OF_RANGE
    );
    assert_eq!(h.list_offset(&node, 0, -2).await.offset, 3);
    assert_eq!(
        node.delete_records(del(6)).await.unwrap().partitions[0].error_code,
        OFFSET_OUT_OF_RANGE
    );
    let r = node
        .delete_records(del(-1))
        .await
        .unwrap()
        .partitions
        .remove(0);
    assert_eq!((r.error_code, r.low_watermark), (0, 5));
    let owner = h
        .store
        .get_partition_owner(h.topic, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.log_start_offset, 5);
    node.shutdown().await;
}

#[tokio::test]
async fn partitions_of_other_nodes_are_refused() {
    let h = Harness::new(2, &[]).await;
    let node = h.open(h.config()).await;
    let r = h.produce(&node, 1, batch(&["a"], 1, None), LIMITS).await;
    assert_eq!(r.error_code, NOT_LEADER_OR_FOLLOWER);
    assert!(r.error_message.unwrap().contains("n2"));
    assert_eq!(
        h.fetch(&node, 1, 0, 0, 0).await.error_code,
        NOT_LEADER_OR_FOLLOWER
    );
    assert_eq!(
        h.produce(&node, 7, batch(&["a"], 1, None), LIMITS)
            .await
            .error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        h.list_offset(&node, 7, -1).await.error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    node.shutdown().await;
}

#[tokio::test]
async fn concurrent_producers_get_contiguous_offsets() {
    let h = Arc::new(Harness::new(3, &[]).await);
    let node = h.open(h.config()).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (h, node) = (h.clone(), node.clone());
        tasks.push(tokio::spawn(async move {
            let mut bases = Vec::new();
            for i in 0..20 {
                // Two partitions in one request: 0 and 2 (1 belongs to another node).
                let v = format!("{t}-{i}");
                let req = ProduceRequest {
                    cluster_id: Uuid::nil(),
                    partitions: [0, 2]
                        .iter()
                        .map(|p| ProducePartition {
                            topic_id: h.topic,
                            partition: *p,
                            limits: LIMITS,
                            records: batch(&[&v, &v], 1, None),
                        })
                        .collect(),
                };
                let r = node.produce(req).await.unwrap();
                assert!(r.partitions.iter().all(|p| p.error_code == 0));
                bases.push(r.partitions[0].base_offset);
            }
            bases
        }));
    }
    let mut bases: Vec<i64> = Vec::new();
    for t in tasks {
        bases.extend(t.await.unwrap());
    }
    bases.sort_unstable();
    assert_eq!(bases, (0..160).map(|i| i * 2).collect::<Vec<_>>());
    for p in [0, 2] {
        let f = h.fetch(&node, p, 0, 0, 0).await;
        assert_eq!(f.high_watermark, 320);
        let offsets: Vec<i64> = decode(f.records).into_iter().map(|x| x.0).collect();
        assert_eq!(offsets, (0..320).collect::<Vec<_>>());
    }
    node.shutdown().await;
}

#[tokio::test]
async fn multi_batch_idempotent_produce_is_all_or_nothing() {
    let h = Harness::new(1, &[]).await;
    let node = h.open(h.config()).await;
    let p = |seq| {
        Some(Producer {
            id: 5,
            epoch: 0,
            seq,
        })
    };
    let mut two = batch(&["a", "b"], 1, p(0)).to_vec();
    two.extend_from_slice(&batch(&["c"], 1, p(2)));
    assert_eq!(h.produce(&node, 0, two.into(), LIMITS).await.base_offset, 0);
    // Second batch out of order: nothing of the request is appended.
    let mut bad = batch(&["d"], 1, p(3)).to_vec();
    bad.extend_from_slice(&batch(&["e"], 1, p(9)));
    assert_eq!(
        h.produce(&node, 0, bad.into(), LIMITS).await.error_code,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(h.fetch(&node, 0, 0, 0, 0).await.high_watermark, 3);
    assert_eq!(
        h.produce(&node, 0, batch(&["d"], 1, p(3)), LIMITS)
            .await
            .base_offset,
        3
    );
    node.shutdown().await;
}
