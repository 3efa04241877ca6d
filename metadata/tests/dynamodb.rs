//! The DynamoDB backend against the conformance suite, on a real moto server (PyPI
//! `moto[server]`, installed by `./scripts/test`) that each test starts on 127.0.0.1 and stops at
//! its end. Every case gets its own table.

use std::sync::Arc;

use fjord_metadata::conformance::moto::{start_moto, Moto};
use fjord_metadata::conformance::{self, Store};
use fjord_metadata::dynamodb::{Credentials, DynamoConfig, DynamoStore};
use fjord_metadata::store::PartitionCommit;
use fjord_metadata::{ManifestEntry, MetadataError, MetadataStore, PartitionOwner, Topic};
use uuid::Uuid;

fn config(moto: &Moto, prefix: &str) -> DynamoConfig {
    let mut c = DynamoConfig::from_url(&format!(
        "dynamodb://{prefix}?region=us-east-1&endpoint={}",
        moto.endpoint
    ))
    .expect("url");
    c.credentials = Some(Credentials::new("test", "test", None, None, "test"));
    c
}

/// A store on a fresh table.
async fn fresh(moto: &Moto) -> DynamoStore {
    let prefix = format!("t{}", Uuid::new_v4().simple());
    let s = DynamoStore::from_config(config(moto, &prefix)).expect("client");
    s.create_tables().await.expect("create table");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_single_store() {
    let moto = start_moto();
    conformance::run_all(|| {
        let moto = &moto;
        async move { Arc::new(fresh(moto).await) as Store }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_two_clients_on_one_table() {
    let moto = start_moto();
    conformance::run_shared(|| {
        let moto = &moto;
        async move {
            let a = fresh(moto).await;
            // A second, independent client (own connection pool) on the same table, as a
            // gateway and a storage node would have.
            let b = DynamoStore::from_config(config(
                moto,
                a.table_name().trim_end_matches("-metadata"),
            ))
            .expect("client");
            (Arc::new(a) as Store, Arc::new(b) as Store)
        }
    })
    .await;
}

fn topic(partitions: i32) -> Topic {
    Topic {
        id: Uuid::new_v4(),
        cluster_id: Uuid::new_v4(),
        name: "big".to_string(),
        partitions,
        configs: Default::default(),
        version: 0,
        created_ms: 0,
    }
}

fn owners(t: &Topic) -> Vec<PartitionOwner> {
    (0..t.partitions)
        .map(|p| PartitionOwner {
            topic_id: t.id,
            partition: p,
            node_id: "n1".to_string(),
            epoch: 0,
            log_start_offset: 0,
        })
        .collect()
}

/// Topics and commits larger than one DynamoDB transaction (100 actions) still work whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_one_transaction() {
    let moto = start_moto();
    let s = fresh(&moto).await;
    let t = topic(250);
    s.create_topic(&t, &owners(&t)).await.expect("create");
    assert_eq!(
        s.list_partition_owners(t.id).await.expect("owners").len(),
        250
    );
    assert_eq!(
        s.list_partitions_of_node("n1")
            .await
            .expect("of node")
            .len(),
        250
    );

    let commits: Vec<PartitionCommit> = (0..t.partitions)
        .map(|p| PartitionCommit {
            topic_id: t.id,
            partition: p,
            epoch: 0,
            entries: vec![ManifestEntry {
                topic_id: t.id,
                partition: p,
                base_offset: 0,
                end_offset: 10,
                max_timestamp_ms: 1,
                object_key: "obj".to_string(),
                position: u64::try_from(p).expect("non-negative") * 100,
                length: 100,
            }],
            producers: vec![],
        })
        .collect();
    s.commit_manifest("n1", &commits).await.expect("commit");
    // A retry of the whole call after it landed is accepted and changes nothing.
    s.commit_manifest("n1", &commits).await.expect("retry");
    assert_eq!(s.manifest_references("obj").await.expect("refs"), 250);

    let removed = s.delete_topic(t.id).await.expect("delete");
    assert_eq!(removed.len(), 250);
    assert_eq!(s.manifest_references("obj").await.expect("refs"), 0);
    assert!(s
        .list_partition_owners(t.id)
        .await
        .expect("owners")
        .is_empty());
}

#[tokio::test]
async fn missing_table_names_the_fix_and_create_is_idempotent() {
    let moto = start_moto();
    let s = DynamoStore::from_config(config(&moto, "absent")).expect("client");
    match s.get_account("123456789012").await {
        Err(MetadataError::Backend(msg)) => assert!(msg.contains("init-metadata"), "{msg}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    s.create_tables().await.expect("create");
    s.create_tables().await.expect("create again");
    assert_eq!(s.get_account("123456789012").await.expect("get"), None);
}

#[test]
fn connect_parses_the_url() {
    let s = DynamoStore::connect("dynamodb://fjord?region=eu-west-1&endpoint=http://127.0.0.1:1")
        .expect("connect");
    assert_eq!(s.table_name(), "fjord-metadata");
    assert!(matches!(
        DynamoStore::connect("dynamodb://fjord?bogus=1"),
        Err(MetadataError::InvalidArgument(_))
    ));
}

/// The cost this layout exists for: a commit writes two items (the node's fence and the object)
/// however many partitions it covers, and every 32 commits a fold writes one chunk per
/// partition plus the fence. Counted from the requests the store really sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_writes_do_not_grow_with_partitions() {
    const PARTITIONS: i32 = 8;
    const COMMITS: i64 = 64;
    let moto = start_moto();
    let s = fresh(&moto).await;
    let t = topic(PARTITIONS);
    s.create_topic(&t, &owners(&t)).await.expect("create");
    let range = |p: i32, i: i64| ManifestEntry {
        topic_id: t.id,
        partition: p,
        base_offset: i * 100,
        end_offset: i * 100 + 100,
        max_timestamp_ms: i,
        object_key: format!("nodes/n1/{i:020}.obj"),
        position: u64::try_from(p).expect("non-negative") * 1000,
        length: 1000,
    };
    let before = s.request_counts();
    for i in 0..COMMITS {
        let commits: Vec<PartitionCommit> = (0..PARTITIONS)
            .map(|p| PartitionCommit {
                topic_id: t.id,
                partition: p,
                epoch: 0,
                entries: vec![range(p, i)],
                producers: vec![],
            })
            .collect();
        s.commit_manifest("n1", &commits).await.expect("commit");
    }
    let after = s.request_counts();
    let folds = COMMITS / 32;
    assert_eq!(
        after.items_written - before.items_written,
        u64::try_from(COMMITS * 2 + folds * (i64::from(PARTITIONS) + 1)).expect("positive"),
        "2 items per commit, partitions + 1 per fold"
    );
    assert_eq!(
        after.write_requests - before.write_requests,
        u64::try_from(COMMITS + folds).expect("positive")
    );
    for p in 0..PARTITIONS {
        assert_eq!(
            s.list_manifest(t.id, p).await.expect("manifest"),
            (0..COMMITS).map(|i| range(p, i)).collect::<Vec<_>>()
        );
    }
}
