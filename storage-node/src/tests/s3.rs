//! The object-store path against a real S3 endpoint (moto's server on 127.0.0.1): multipart
//! uploads, conditional creates (If-None-Match), range reads, listing and deletes for garbage
//! collection.

use std::sync::atomic::Ordering;

use fjord_metadata::conformance::moto;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;

use super::tiering::object_keys;
use super::uploads::{big_value, multipart_config, next_base_key, produce_big, read};
use super::*;
use crate::config::SystemClock;
use crate::counting_objects::CountingObjectStore;
use crate::tiering::put::alternative_key;

#[tokio::test]
async fn uploads_reads_conditional_creates_and_gc_work_on_s3() {
    let moto = moto::start_moto();
    moto.create_bucket("fjord-node");
    let s3 = AmazonS3Builder::new()
        .with_endpoint(&moto.endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name("fjord-node")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .build()
        .unwrap();
    let counting = Arc::new(CountingObjectStore::new(Arc::new(PrefixStore::new(
        s3,
        "cluster-a",
    ))));
    let mut h = Harness::new(1, &[]).await;
    h.objects = counting.clone();
    // Objects carry the server's modification times; the test clock runs a minute ahead.
    h.clock
        .0
        .store(SystemClock.now_ms() + 60_000, Ordering::SeqCst);
    let mut cfg = multipart_config(&h);
    cfg.tail_cache_bytes = 0; // reads come from S3
    cfg.gc_grace = Duration::ZERO;
    let node = h.open(cfg).await;

    // Multipart, with another writer's object already at the key (found by the HEAD first).
    produce_big(&h, &node, 7).await;
    let base = next_base_key(&node);
    let theirs = Bytes::from_static(b"another writer's object");
    let theirs_path = ObjectPath::from(base.as_str());
    h.objects
        .put(&theirs_path, theirs.clone().into())
        .await
        .unwrap();
    node.tier_round(&mut None).await.unwrap();
    let counts = counting.snapshot();
    assert_eq!(counts.get("put_multipart"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("put_part"), Some(&2));
    let manifest = h.store.list_manifest(h.topic, 0).await.unwrap();
    assert_eq!(manifest[0].object_key, alternative_key(&base, 1));
    assert_eq!(read(&h, &base).await, theirs);
    for i in 0..7 {
        let f = h.fetch(&node, 0, i, 0, 0).await;
        assert_eq!(decode(f.records)[0], (i, big_value(i as usize)));
    }

    // A single PUT whose key is taken: S3 refuses the If-None-Match create.
    h.produce(&node, 0, batch(&["small"], 9, None), LIMITS)
        .await;
    let base2 = next_base_key(&node);
    h.objects
        .put(&ObjectPath::from(base2.as_str()), theirs.clone().into())
        .await
        .unwrap();
    node.tier_round(&mut None).await.unwrap();
    let manifest = h.store.list_manifest(h.topic, 0).await.unwrap();
    assert_eq!(manifest[1].object_key, alternative_key(&base2, 1));
    assert_eq!(read(&h, &base2).await, theirs, "overwritten on S3");
    let f = h.fetch(&node, 0, 7, 0, 0).await;
    assert_eq!(decode(f.records), vec![(7, "small".to_string())]);

    // Garbage collection lists the node's prefix and deletes what nothing references: the
    // other writer's two objects; the two committed ones stay.
    let r = node.collect_garbage().await.unwrap();
    assert_eq!((r.listed, r.deleted), (4, 2), "{r:?}");
    let mut left = object_keys(&h).await;
    left.sort();
    let mut committed: Vec<String> = manifest.iter().map(|e| e.object_key.clone()).collect();
    committed.sort();
    assert_eq!(left, committed);
    node.shutdown().await;
}
