//! The gateway in front of a real [`StorageNode`] (tempdir WAL, SQLite metadata, local object
//! store): produce, fetch, list offsets and group offsets through the Kafka protocol.

use std::sync::Arc;

use fjord_storage_node::{NodeConfig, StorageNode};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::records::RecordBatchDecoder;
use object_store::local::LocalFileSystem;

use super::*;

struct One(Arc<StorageNode>);

#[async_trait]
impl NodeDirectory for One {
    async fn node(&self, node_id: &str) -> Result<Arc<dyn NodeApi>, NodeError> {
        if node_id == self.0.node_id() {
            Ok(self.0.clone())
        } else {
            Err(NodeError::Unreachable(format!("no node {node_id}")))
        }
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

#[tokio::test]
async fn produce_fetch_and_group_offsets_through_a_real_storage_node() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetadataStore> =
        Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
    let sealer = SecretSealer::from_key([3; 32]);
    let tenant = ensure_dev_tenant(&*store, &sealer, dir.path(), "us-east-1", NOW)
        .await
        .unwrap();
    let auth = Arc::new(Authenticator::new(
        store.clone(),
        sealer,
        AuthConfig {
            region: "us-east-1".into(),
            default_cluster: tenant.cluster.id,
            max_clock_skew_ms: 300_000,
        },
    ));
    store
        .register_node(&NodeInfo {
            id: "n1".into(),
            rpc_addr: "127.0.0.1:1".into(),
            cert_der: vec![],
            heartbeat_ms: NOW,
        })
        .await
        .unwrap();
    let objdir = dir.path().join("objects");
    std::fs::create_dir_all(&objdir).unwrap();
    let objects = Arc::new(LocalFileSystem::new_with_prefix(&objdir).unwrap());
    let node = StorageNode::open(
        NodeConfig::new("n1", dir.path().join("wal")),
        store.clone(),
        objects,
    )
    .await
    .unwrap();
    let topics = Arc::new(TopicService::new(store.clone()));
    topics
        .create_topic(tenant.cluster.id, "real", 2, BTreeMap::new(), false, NOW)
        .await
        .unwrap();
    let gw = Gateway::new(
        GatewayConfig::new("localhost", 9092),
        store.clone(),
        auth,
        topics.clone(),
        Arc::new(One(node)),
    )
    .unwrap();
    let env_like = Client {
        gw: Arc::new(gw),
        session: Session::new(Uuid::from_u128(5)),
        corr: 0,
        now_ms: NOW,
    };
    let mut c = env_like;
    let _: SaslHandshakeResponse = c
        .call(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism("PLAIN".into()),
        )
        .await;
    let auth: SaslAuthenticateResponse = c.call(ApiKey::SaslAuthenticate, 2, &plain(&tenant)).await;
    assert_eq!(auth.error_code, 0);

    // Three produces to partition 1: offsets 0, 3, 5.
    let mut bases = Vec::new();
    for n in [3, 2, 4] {
        let req = super::data::produce_req("real", &[(1, batch(n))], -1);
        let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "{:?}", p.error_message);
        bases.push(p.base_offset);
    }
    assert_eq!(bases, [0, 3, 5]);

    let fetch = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name("real"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(1)
                .with_fetch_offset(3)
                .with_partition_max_bytes(1 << 20)])]);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch).await;
    let p = &resp.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 9));
    let mut records = p.records.clone().unwrap();
    let values: Vec<(i64, Bytes)> = RecordBatchDecoder::decode_all(&mut records)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| (r.offset, r.value.unwrap()))
        .collect();
    // Whole batches from the one containing offset 3.
    assert_eq!(
        values.first().unwrap(),
        &(3, Bytes::from_static(b"value-0"))
    );
    assert_eq!(values.last().unwrap(), &(8, Bytes::from_static(b"value-3")));

    let list = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
        .with_name(name("real"))
        .with_partitions(vec![ListOffsetsPartition::default()
            .with_partition_index(1)
            .with_timestamp(-1)])]);
    let resp: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 6, &list).await;
    assert_eq!(resp.topics[0].partitions[0].offset, 9);

    // Group offsets, committed the way a standalone consumer does (no generation).
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("readers")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(name("real"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(1)
                .with_committed_offset(7)])]);
    let resp: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 7, &commit).await;
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("readers")))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(name("real"))
            .with_partition_indexes(vec![1])]));
    let resp: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 7, &fetch).await;
    assert_eq!(resp.topics[0].partitions[0].committed_offset, 7);
}
