//! S3 object storage on a real S3 endpoint (moto's server): `fjord dev --object-store
//! s3://bucket/prefix?endpoint=…` tiers to S3 and reads back from it after a restart, and the
//! conditional create (If-None-Match) that racing writers rely on lets exactly one win.

#![allow(clippy::unwrap_used)]

mod common;
mod moto;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

fn read_all(fjord: &Fjord, topic: &str, partitions: i32, expect: usize) -> Vec<String> {
    let c: BaseConsumer<MskIam> = client_config(&fjord.bootstrap)
        .set("group.id", "s3-reader")
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
            None if out.len() >= expect && idle_since.elapsed() > Duration::from_secs(2) => break,
            None => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_data_lives_in_s3_and_comes_back_after_restart() {
    let moto = moto::start_moto();
    moto.create_bucket("fjord-data");
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let store = format!(
        "s3://fjord-data/cluster-a?region=us-east-1&endpoint={}",
        moto.endpoint
    );
    let flags = [
        "--object-store",
        store.as_str(),
        "--upload-bytes",
        "65536",
        "--upload-interval-ms",
        "100",
        "--tail-cache-bytes",
        "65536",
        "--wal-segment-bytes",
        "262144",
    ];
    let mut fjord = Fjord::start(dir.path(), &addr, &flags);
    create_topic(&fjord, "s3-tiered", 2, &[]).await;
    let ctx = Deliveries::new(&fjord);
    let producer: ThreadedProducer<Deliveries> = client_config(&fjord.bootstrap)
        .set("acks", "all")
        .set("linger.ms", "2")
        .create_with_context(ctx.clone())
        .unwrap();
    let n = 2_000;
    let value = |i: usize| format!("s3-{i}-{}", "x".repeat(500));
    for i in 0..n {
        let v = value(i);
        send_waiting(
            &producer,
            BaseRecord::<(), _, _>::with_opaque_to("s3-tiered", Box::new(i)).payload(&v),
        );
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(ctx.acked_count(), n);

    // Uploaded to the bucket under the prefix, not to a local directory.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let bytes: u64 = moto
            .list_objects("fjord-data", "cluster-a/")
            .iter()
            .map(|(_, size)| size)
            .sum();
        if bytes > 1_000_000 {
            break;
        }
        assert!(Instant::now() < deadline, "only {bytes} B in S3");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !dir.path().join("objects").exists(),
        "nothing tiered locally"
    );

    // A restart empties the tail cache: the trimmed part must come back from S3.
    assert!(fjord.terminate().success(), "clean exit");
    let fjord = Fjord::start(dir.path(), &addr, &flags);
    let got = read_all(&fjord, "s3-tiered", 2, n);
    assert_eq!(got.len(), n, "no duplicates");
    let expected: HashSet<String> = (0..n).map(value).collect();
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_create_lets_one_of_racing_writers_win() {
    let moto = moto::start_moto();
    moto.create_bucket("race");
    let s3: Arc<dyn ObjectStore> = Arc::new(
        AmazonS3Builder::new()
            .with_bucket_name("race")
            .with_region("us-east-1")
            .with_endpoint(&moto.endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .build()
            .unwrap(),
    );
    for round in 0..5 {
        let key = ObjectPath::from(format!("objects/{round}"));
        let writers = (0..4).map(|w| {
            let (s3, key) = (Arc::clone(&s3), key.clone());
            tokio::spawn(async move {
                let opts = PutOptions::from(PutMode::Create);
                let body = PutPayload::from(format!("writer {w}"));
                (w, s3.put_opts(&key, body, opts).await)
            })
        });
        let mut winners = Vec::new();
        for w in writers {
            let (w, result) = w.await.unwrap();
            match result {
                Ok(_) => winners.push(w),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => panic!("writer {w}: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let stored = s3.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(stored, format!("writer {}", winners[0]).as_bytes());
    }
}
