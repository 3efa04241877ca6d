//! End to end with librdkafka: 100,000 messages through `fjord dev` (gateway → QUIC → storage
//! node WAL) with every compression codec, consumed by a group of two.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Message, Timestamp};

const TOPIC: &str = "e2e";
const PARTITIONS: i32 = 8;
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const PER_CODEC: usize = 20_000;

/// Message `i`'s value: a few large ones (up to 1 MiB), the rest small, all self-describing.
fn value(i: usize) -> Vec<u8> {
    let size = if i.is_multiple_of(5_000) {
        1024 * 1024
    } else {
        10 + (i * 7919) % 2_000
    };
    let mut v = format!("{i}:").into_bytes();
    v.resize(size, b'a' + (i % 26) as u8);
    v
}

fn consumer(fjord: &Fjord, group: &str) -> BaseConsumer<MskIam> {
    let c: BaseConsumer<MskIam> = client_config(&fjord.bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "8388608")
        .set("session.timeout.ms", "30000")
        .create_with_context(MskIam(fjord.credentials()))
        .expect("consumer");
    c.subscribe(&[TOPIC]).expect("subscribe");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_messages_every_codec_group_of_two() {
    let dir = tempfile::tempdir().unwrap();
    let fjord = Fjord::start(dir.path(), "127.0.0.1:0", &[]);
    // 1 MiB values plus record and batch overhead exceed the 1 MiB default limit.
    create_topic(
        &fjord,
        TOPIC,
        PARTITIONS,
        &[("max.message.bytes", "2097152")],
    )
    .await;

    // Both consumers join before anything is produced, so the group is stable while consuming and
    // "exactly once" is a fair expectation.
    let consumers = [consumer(&fjord, "e2e-group"), consumer(&fjord, "e2e-group")];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for c in &consumers {
            assert!(
                c.poll(Duration::from_millis(100)).is_none(),
                "no data produced yet"
            );
        }
        let assigned: usize = consumers
            .iter()
            .map(|c| c.assignment().map(|a| a.count()).unwrap_or(0))
            .sum();
        let both = consumers
            .iter()
            .all(|c| c.assignment().map(|a| a.count() > 0).unwrap_or(false));
        if assigned == PARTITIONS as usize && both {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "group did not settle: {assigned} partitions assigned"
        );
    }

    let mut producers = Vec::new();
    for (c, codec) in CODECS.iter().enumerate() {
        let ctx = Deliveries::new(&fjord);
        let producer: ThreadedProducer<Deliveries> = client_config(&fjord.bootstrap)
            .set("compression.type", *codec)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.max.bytes", "2000000")
            .create_with_context(ctx.clone())
            .expect("producer");
        for n in 0..PER_CODEC {
            let i = c * PER_CODEC + n;
            let key = format!("key-{}", i % 1000);
            let v = value(i);
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "i",
                    value: Some(i.to_string().as_bytes()),
                })
                .insert(Header {
                    key: "codec",
                    value: Some(codec.as_bytes()),
                });
            let record = BaseRecord::with_opaque_to(TOPIC, Box::new(i))
                .key(&key)
                .payload(&v)
                .headers(headers)
                .timestamp(1_700_000_000_000 + i as i64);
            send_waiting(&producer, record);
        }
        producers.push((producer, ctx));
    }
    for (p, ctx) in &producers {
        p.flush(Duration::from_secs(120)).expect("flush");
        assert_eq!(ctx.failed_count(), 0, "no delivery may fail");
        assert_eq!(ctx.acked_count(), PER_CODEC, "every message acked");
    }

    let total = CODECS.len() * PER_CODEC;
    let mut seen: HashMap<usize, (i32, i64)> = HashMap::with_capacity(total);
    let mut last_offset: BTreeMap<i32, i64> = BTreeMap::new();
    let mut per_consumer = [0usize; 2];
    let deadline = Instant::now() + Duration::from_secs(300);
    while seen.len() < total {
        assert!(
            Instant::now() < deadline,
            "consumed only {} of {total}",
            seen.len()
        );
        for (ci, c) in consumers.iter().enumerate() {
            let Some(msg) = c.poll(Duration::from_millis(50)) else {
                continue;
            };
            let msg = msg.expect("consume");
            let headers = msg.headers().expect("headers intact");
            let i: usize = std::str::from_utf8(headers.get(0).value.unwrap())
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(headers.get(1).key, "codec");
            assert_eq!(msg.payload().unwrap(), value(i).as_slice(), "value of {i}");
            assert_eq!(
                msg.key().unwrap(),
                format!("key-{}", i % 1000).as_bytes(),
                "key of {i}"
            );
            assert_eq!(
                msg.timestamp(),
                Timestamp::CreateTime(1_700_000_000_000 + i as i64)
            );
            let prev = last_offset.insert(msg.partition(), msg.offset());
            assert!(
                prev.is_none_or(|p| p < msg.offset()),
                "offsets increase per partition"
            );
            assert!(
                seen.insert(i, (msg.partition(), msg.offset())).is_none(),
                "message {i} twice"
            );
            per_consumer[ci] += 1;
        }
    }
    assert!(
        per_consumer.iter().all(|&n| n > 0),
        "both consumers got data: {per_consumer:?}"
    );
    // Order per partition: within a partition and one key, messages arrive in send order.
    let mut by_key: HashMap<(i32, usize), i64> = HashMap::new();
    let mut ids: Vec<_> = seen.iter().collect();
    ids.sort_by_key(|(i, _)| **i);
    for (i, (p, off)) in ids {
        let codec_and_key = (*p, (i / PER_CODEC) * 1000 + i % 1000);
        if let Some(prev) = by_key.insert(codec_and_key, *off) {
            assert!(
                prev < *off,
                "message {i} overtook an earlier message of its producer and key"
            );
        }
    }
}
