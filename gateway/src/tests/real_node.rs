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

/// A gateway in front of one real node, with the dev tenant and a 2-partition topic `real`.
struct RealNode {
    _dir: tempfile::TempDir,
    gw: Arc<Gateway>,
    tenant: DevTenant,
}

impl RealNode {
    async fn start() -> RealNode {
        let (dir, store, tenant, auth) = super::tenant_env().await;
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
            topics,
            Arc::new(One(node)),
        )
        .unwrap();
        RealNode {
            _dir: dir,
            gw: Arc::new(gw),
            tenant,
        }
    }

    /// A connection on `session`, authenticated with PLAIN as the dev key.
    async fn authed(&self, session: Session) -> Client {
        let mut c = Client {
            gw: self.gw.clone(),
            session,
            corr: 0,
            now_ms: NOW,
        };
        let _: SaslHandshakeResponse = c
            .call(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default().with_mechanism("PLAIN".into()),
            )
            .await;
        let auth: SaslAuthenticateResponse = c
            .call(ApiKey::SaslAuthenticate, 2, &plain(&self.tenant))
            .await;
        assert_eq!(auth.error_code, 0);
        c
    }
}

#[tokio::test]
async fn produce_fetch_and_group_offsets_through_a_real_storage_node() {
    let real = RealNode::start().await;
    let mut c = real.authed(Session::new(Uuid::from_u128(5))).await;

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

// Paused clock: the coordinator's initial rebalance delay (3 s) passes as soon as the runtime
// is idle instead of in real time.
#[tokio::test(start_paused = true)]
async fn describe_groups_shows_client_id_and_host_of_a_member_joined_through_the_gateway() {
    let real = RealNode::start().await;
    let peer: std::net::SocketAddr = "10.1.2.3:40000".parse().unwrap();
    let mut c = real
        .authed(Session::new(Uuid::from_u128(6)).with_peer(peer))
        .await;
    let group = || GroupId(StrBytes::from_static_str("watchers"));
    let join = JoinGroupRequest::default()
        .with_group_id(group())
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"subscription")),
        ]);
    // v3 assigns the member id in the first JoinGroup (no MEMBER_ID_REQUIRED round trip).
    let joined: JoinGroupResponse = c.call(ApiKey::JoinGroup, 3, &join).await;
    assert_eq!(joined.error_code, 0);
    // Member ids start with the request header's client id (`test`, see `request_frame`).
    assert!(
        joined.member_id.starts_with("test-"),
        "{:?}",
        joined.member_id
    );

    let describe = DescribeGroupsRequest::default().with_groups(vec![group()]);
    let resp: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, 5, &describe).await;
    let [described] = resp.groups.as_slice() else {
        panic!("one group expected: {resp:?}");
    };
    assert_eq!(described.error_code, 0);
    let [member] = described.members.as_slice() else {
        panic!("one member expected: {described:?}");
    };
    assert_eq!(member.member_id, joined.member_id);
    assert_eq!(member.client_id.as_str(), "test");
    assert_eq!(member.client_host.as_str(), "/10.1.2.3");
}
