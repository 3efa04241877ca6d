//! Object uploads: multipart above the threshold, create-only writes, keys already taken.

use std::sync::atomic::Ordering;

use object_store::path::Path as ObjectPath;

use super::tiering::{flaky, object_keys, wal_files};
use super::*;
use crate::config::MIN_PART_BYTES;
use crate::counting_objects::CountingObjectStore;
use crate::tiering::object::read_index;
use crate::tiering::put::alternative_key;

/// Multipart from the smallest part size S3 allows, so tests move only a few MiB.
pub(super) fn multipart_config(h: &Harness) -> NodeConfig {
    let mut cfg = h.config();
    cfg.multipart_part_bytes = MIN_PART_BYTES;
    cfg.multipart_threshold_bytes = MIN_PART_BYTES;
    cfg.multipart_concurrency = 2;
    cfg
}

/// A ~900 KB value unique to `i`.
pub(super) fn big_value(i: usize) -> String {
    let fill = char::from(b'a' + (i % 26) as u8);
    format!("{i:04}{}", fill.to_string().repeat(900_000))
}

/// Produces `n` batches of one big value each to partition 0.
pub(super) async fn produce_big(h: &Harness, node: &StorageNode, n: usize) {
    for i in 0..n {
        let r = h
            .produce(node, 0, batch(&[&big_value(i)], i as i64, None), LIMITS)
            .await;
        assert_eq!((r.error_code, r.base_offset), (0, i as i64));
    }
}

/// The key the next upload starts from.
pub(super) fn next_base_key(node: &StorageNode) -> String {
    let pos = node.pending.lock().published_pos.unwrap();
    format!("nodes/n1/{:020}-{:020}.obj", pos.segment, pos.offset)
}

pub(super) async fn read(h: &Harness, key: &str) -> Bytes {
    let path = ObjectPath::from(key);
    h.objects.get(&path).await.unwrap().bytes().await.unwrap()
}

#[tokio::test]
async fn large_objects_go_up_in_parts_and_read_back_exactly() {
    let mut h = Harness::new(1, &[]).await;
    let counting = Arc::new(CountingObjectStore::new(h.objects.clone()));
    h.objects = counting.clone();
    let mut cfg = multipart_config(&h);
    cfg.tail_cache_bytes = 0; // reads must come from the object
    let node = h.open(cfg).await;
    produce_big(&h, &node, 13).await;
    node.tier_round(&mut None).await.unwrap();

    let counts = counting.snapshot();
    assert_eq!(counts.get("put"), None, "no single PUT: {counts:?}");
    assert_eq!(counts.get("put_multipart"), Some(&1));
    // ~11.7 MB in 5 MiB parts.
    assert_eq!(counts.get("put_part"), Some(&3));
    assert_eq!(counts.get("complete_multipart"), Some(&1));

    let manifest = h.store.list_manifest(h.topic, 0).await.unwrap();
    assert_eq!(manifest.len(), 1);
    let e = &manifest[0];
    let obj = read(&h, &e.object_key).await;
    assert_eq!(read_index(&obj).unwrap().len(), 1);
    let mut fetched = BytesMut::new();
    for i in 0..13 {
        let f = h.fetch(&node, 0, i, 0, 0).await;
        assert_eq!(f.error_code, 0);
        fetched.extend_from_slice(&f.records);
        assert_eq!(decode(f.records)[0], (i, big_value(i as usize)));
    }
    let range = &obj[e.position as usize..(e.position + e.length) as usize];
    assert!(
        range == fetched.as_ref(),
        "fetched bytes differ from the object's range"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn small_objects_stay_single_conditional_puts() {
    let mut h = Harness::new(1, &[]).await;
    let counting = Arc::new(CountingObjectStore::new(h.objects.clone()));
    h.objects = counting.clone();
    let node = h.open(multipart_config(&h)).await;
    produce_big(&h, &node, 2).await;
    node.tier_round(&mut None).await.unwrap();
    let counts = counting.snapshot();
    assert_eq!(counts.get("put"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("put_multipart"), None);
    node.shutdown().await;
}

#[tokio::test]
async fn an_object_that_landed_before_is_accepted_not_rewritten() {
    let mut h = Harness::new(1, &[]).await;
    let store = flaky(&mut h);
    store.fail.store(false, Ordering::SeqCst);
    let node = h.open(h.config()).await;

    // The PUT lands but its response is lost; the retry finds our own object at the key.
    store.lose_responses.store(true, Ordering::SeqCst);
    h.produce(&node, 0, batch(&["a", "b"], 1, None), LIMITS)
        .await;
    let mut carry = None;
    assert!(node.tier_round(&mut carry).await.is_err());
    let keys = object_keys(&h).await;
    assert_eq!(keys.len(), 1);
    let etag = h
        .objects
        .head(&ObjectPath::from(keys[0].as_str()))
        .await
        .unwrap()
        .e_tag;
    assert!(h.store.list_manifest(h.topic, 0).await.unwrap().is_empty());
    store.lose_responses.store(false, Ordering::SeqCst);
    node.tier_round(&mut carry).await.unwrap();
    let manifest = h.store.list_manifest(h.topic, 0).await.unwrap();
    assert_eq!(manifest.len(), 1);
    assert_eq!(manifest[0].object_key, keys[0]);
    assert_eq!(object_keys(&h).await, keys);
    let after = h
        .objects
        .head(&ObjectPath::from(keys[0].as_str()))
        .await
        .unwrap()
        .e_tag;
    assert_eq!(after, etag, "the object was rewritten");

    // Same after a crash: the restarted node rebuilds the identical object from its WAL.
    store.lose_responses.store(true, Ordering::SeqCst);
    h.produce(&node, 0, batch(&["c"], 2, None), LIMITS).await;
    assert!(node.tier_round(&mut None).await.is_err());
    node.shutdown().await;
    store.lose_responses.store(false, Ordering::SeqCst);
    let landed: Vec<String> = object_keys(&h)
        .await
        .into_iter()
        .filter(|k| *k != keys[0])
        .collect();
    assert_eq!(landed.len(), 1);
    let node = h.open(h.config()).await;
    node.tier_round(&mut None).await.unwrap();
    let manifest = h.store.list_manifest(h.topic, 0).await.unwrap();
    assert_eq!(manifest.len(), 2);
    assert_eq!(manifest[1].object_key, landed[0]);
    assert_eq!(object_keys(&h).await.len(), 2);
    let f = h.fetch(&node, 0, 0, 0, 0).await;
    assert_eq!(decode(f.records).len(), 3);
    node.shutdown().await;
}

#[tokio::test]
async fn another_writers_object_is_left_alone_and_ours_goes_elsewhere() {
    for multipart in [false, true] {
        let h = Harness::new(1, &[]).await;
        let node = h.open(multipart_config(&h)).await;
        let batches = if multipart { 7 } else { 1 };
        produce_big(&h, &node, batches).await;
        let base = next_base_key(&node);
        let theirs = Bytes::from_static(b"another writer's object");
        h.objects
            .put(&ObjectPath::from(base.as_str()), theirs.clone().into())
            .await
            .unwrap();

        node.tier_round(&mut None).await.unwrap();
        let manifest = h.store.list_manifest(h.topic, 0).await.unwrap();
        assert_eq!(manifest.len(), 1, "multipart: {multipart}");
        assert_eq!(manifest[0].object_key, alternative_key(&base, 1));
        assert_eq!(
            read(&h, &base).await,
            theirs,
            "overwritten (multipart: {multipart})"
        );
        let f = h.fetch(&node, 0, 0, 0, 0).await;
        assert_eq!(decode(f.records)[0], (0, big_value(0)));
        node.shutdown().await;
    }
}

/// Every file under `dir`, recursively (staged multipart files included).
fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn a_failed_multipart_upload_is_aborted_and_keeps_the_wal() {
    let mut h = Harness::new(1, &[]).await;
    let store = flaky(&mut h);
    store.fail.store(false, Ordering::SeqCst);
    store.fail_parts.store(true, Ordering::SeqCst);
    let mut cfg = multipart_config(&h);
    cfg.wal.segment_bytes = 1 << 20;
    let node = h.open(cfg).await;
    produce_big(&h, &node, 7).await;
    let files = wal_files(&h);

    let mut carry = None;
    assert!(node.tier_round(&mut carry).await.is_err());
    assert!(carry.is_some());
    assert!(h.store.list_manifest(h.topic, 0).await.unwrap().is_empty());
    assert_eq!(wal_files(&h), files, "WAL trimmed after a failed upload");
    let objdir = h.dir.path().join("objects");
    assert_eq!(
        files_under(&objdir),
        Vec::<PathBuf>::new(),
        "upload not aborted"
    );

    store.fail_parts.store(false, Ordering::SeqCst);
    node.tier_round(&mut carry).await.unwrap();
    assert!(carry.is_none());
    assert_eq!(
        h.store.list_manifest(h.topic, 0).await.unwrap()[0].end_offset,
        7
    );
    assert!(wal_files(&h) < files);
    assert_eq!(files_under(&objdir).len(), 1);
    node.shutdown().await;
}
