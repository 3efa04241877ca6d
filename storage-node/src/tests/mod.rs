//! Node tests on real files: a tempdir WAL, SQLite metadata and a local-directory object store.
#![allow(clippy::unwrap_used)]

mod data_path;
mod flaky;
mod gc;
mod list_offsets;
mod metering;
mod ordering;
mod s3;
mod tiering;
mod uploads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fjord_metadata::{MetadataStore, PartitionOwner, SqliteStore, Topic};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use uuid::Uuid;

use crate::api::*;
use crate::config::{Clock, NodeConfig};
use crate::StorageNode;

/// A clock the test moves.
pub(crate) struct TestClock(pub AtomicI64);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub(crate) struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn MetadataStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub clock: Arc<TestClock>,
    pub topic: Uuid,
}

pub(crate) const LIMITS: TopicLimits = TopicLimits {
    max_message_bytes: 1 << 20,
    log_append_time: false,
};

impl Harness {
    /// A topic with `partitions` partitions owned by node "n1" (partition 1 by "n2" when it
    /// exists, for ownership tests).
    pub async fn new(partitions: i32, configs: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MetadataStore> =
            Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
        let objdir = dir.path().join("objects");
        std::fs::create_dir_all(&objdir).unwrap();
        let objects: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(&objdir).unwrap());
        let topic = Uuid::new_v4();
        let t = Topic {
            id: topic,
            cluster_id: Uuid::new_v4(),
            name: "t".into(),
            partitions,
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            version: 0,
            created_ms: 0,
        };
        let owners: Vec<_> = (0..partitions)
            .map(|p| PartitionOwner {
                topic_id: topic,
                partition: p,
                node_id: if p == 1 { "n2".into() } else { "n1".into() },
                epoch: 3,
                log_start_offset: 0,
            })
            .collect();
        store.create_topic(&t, &owners).await.unwrap();
        Self {
            dir,
            store,
            objects,
            clock: Arc::new(TestClock(AtomicI64::new(1_000_000))),
            topic,
        }
    }

    pub fn config(&self) -> NodeConfig {
        let mut c = NodeConfig::new("n1", self.wal_dir());
        c.upload_interval = Duration::from_secs(3600);
        c.retention_interval = Duration::from_secs(3600);
        c
    }

    pub fn wal_dir(&self) -> PathBuf {
        self.dir.path().join("wal")
    }

    pub async fn open(&self, config: NodeConfig) -> Arc<StorageNode> {
        StorageNode::open_with_clock(
            config,
            self.store.clone(),
            self.objects.clone(),
            self.clock.clone(),
        )
        .await
        .unwrap()
    }

    pub async fn produce(
        &self,
        node: &StorageNode,
        partition: i32,
        records: Bytes,
        limits: TopicLimits,
    ) -> ProducePartitionResult {
        let req = ProduceRequest {
            cluster_id: Uuid::nil(),
            partitions: vec![ProducePartition {
                topic_id: self.topic,
                partition,
                limits,
                records,
            }],
        };
        let mut r = node.produce(req).await.unwrap();
        r.partitions.remove(0)
    }

    pub async fn fetch(
        &self,
        node: &StorageNode,
        partition: i32,
        offset: i64,
        wait_ms: u32,
        min_bytes: u32,
    ) -> FetchPartitionResult {
        let req = FetchRequest {
            max_wait_ms: wait_ms,
            min_bytes,
            max_bytes: 1 << 20,
            partitions: vec![FetchPartition {
                topic_id: self.topic,
                partition,
                fetch_offset: offset,
                max_bytes: 1 << 20,
            }],
        };
        let mut r = node.fetch(req).await.unwrap();
        r.partitions.remove(0)
    }

    pub async fn list_offset(
        &self,
        node: &StorageNode,
        partition: i32,
        ts: i64,
    ) -> ListOffsetsPartitionResult {
        let req = ListOffsetsRequest {
            partitions: vec![ListOffsetsPartition {
                topic_id: self.topic,
                partition,
                timestamp: ts,
            }],
        };
        node.list_offsets(req).await.unwrap().partitions.remove(0)
    }
}

/// Options of a test batch.
#[derive(Clone, Copy)]
pub(crate) struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub seq: i32,
}

/// Encodes one v2 batch of `values` with kafka-protocol's client encoder.
pub(crate) fn batch(values: &[&str], timestamp: i64, producer: Option<Producer>) -> Bytes {
    let p = producer.unwrap_or(Producer {
        id: -1,
        epoch: -1,
        seq: -1,
    });
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: p.id,
            producer_epoch: p.epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch when offset - sequence changes; base sequence -1
            // marks a non-idempotent batch.
            sequence: if p.id >= 0 {
                p.seq + i as i32
            } else {
                -1 + i as i32
            },
            timestamp: timestamp + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Decodes fetched bytes into (offset, value) pairs, checking every CRC on the way.
pub(crate) fn decode(mut bytes: Bytes) -> Vec<(i64, String)> {
    crate::partition::batch::validate(&bytes, u32::MAX).unwrap();
    let mut out = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
        for r in set.records {
            out.push((
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            ));
        }
    }
    out
}

/// One batch (offsets from 0) of records with these timestamps, compressed with `compression`;
/// `record(i, timestamp)` gives each record's key and value.
pub(crate) fn timed_batch(
    timestamps: &[i64],
    compression: Compression,
    record: impl Fn(usize, i64) -> (Option<Bytes>, Bytes),
) -> Bytes {
    let records: Vec<Record> = timestamps
        .iter()
        .enumerate()
        .map(|(i, &ts)| {
            let (key, value) = record(i, ts);
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: -1 + i as i32,
                timestamp: ts,
                key,
                value: Some(value),
                headers: Default::default(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}
