//! The production backends on real endpoints (moto's server): `fjord dev` with DynamoDB metadata
//! and `--object-store s3://bucket/prefix?endpoint=…` tiers to S3 and reads back from it after a
//! restart, with group offsets kept in DynamoDB; and the
//! conditional create (If-None-Match) that racing writers rely on lets exactly one win.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fjord_metadata::conformance::moto;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::Offset;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_and_s3_acked_data_and_group_offsets_survive_a_restart() {
    let moto = moto::start_moto();
    moto.create_bucket("fjord-data");
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let store = format!(
        "s3://fjord-data/cluster-a?region=us-east-1&endpoint={}",
        moto.endpoint
    );
    let metadata = format!(
        "dynamodb://fjord-e2e?region=us-east-1&endpoint={}",
        moto.endpoint
    );
    Fjord::start_role(
        dir.path(),
        &["admin", "init-metadata", "--metadata", &metadata],
        "metadata ready",
    );
    let flags = [
        "--metadata",
        metadata.as_str(),
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
    assert!(
        !dir.path().join("metadata.sqlite").exists(),
        "no local metadata file"
    );
    commit_offset(&fjord, "s3-group", "s3-tiered", 1, 1234);

    // A restart empties the tail cache: the trimmed part must come back from S3.
    assert!(fjord.terminate().success(), "clean exit");
    let fjord = Fjord::start(dir.path(), &addr, &flags);
    let got = read_all(&fjord, "s3-tiered", 2, n);
    assert_eq!(got.len(), n, "no duplicates");
    let expected: HashSet<String> = (0..n).map(value).collect();
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), expected);
    assert_eq!(
        committed_offset(&fjord, "s3-group", "s3-tiered", 1),
        Offset::Offset(1234),
        "the committed offset lives in DynamoDB"
    );
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
