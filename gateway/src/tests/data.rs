//! Metadata, Produce, Fetch, ListOffsets, OffsetForLeaderEpoch, DeleteRecords, InitProducerId
//! and DescribeCluster, routed over two in-memory nodes.

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;

use super::*;
use crate::error::ConnectionError;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// A produce of `parts` (partition, records) to `topic`.
pub(crate) fn produce_req(topic: &str, parts: &[(i32, Bytes)], acks: i16) -> ProduceRequest {
    let data = parts
        .iter()
        .map(|(p, r)| {
            PartitionProduceData::default()
                .with_index(*p)
                .with_records(Some(r.clone()))
        })
        .collect();
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(data)])
}

fn fetch_req(v: i16, topic: &str, id: Uuid, parts: &[(i32, i64)]) -> FetchRequest {
    let partitions = parts
        .iter()
        .map(|(p, o)| {
            FetchPartition::default()
                .with_partition(*p)
                .with_fetch_offset(*o)
                .with_partition_max_bytes(1 << 20)
        })
        .collect();
    let t = FetchTopic::default().with_partitions(partitions);
    let t = if v >= 13 {
        t.with_topic_id(id)
    } else {
        t.with_topic(name(topic))
    };
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 24)
        .with_topics(vec![t])
}

#[tokio::test]
async fn metadata_at_every_version() {
    let env = Env::new(&["n1", "n2"]).await;
    let id = env.create_topic("orders", 3).await;
    let owners = env.store.list_partition_owners(id).await.unwrap();
    let mut c = env.authed().await;
    for v in 0..=12 {
        // All topics (v0: empty list; v1+: null).
        let all = if v == 0 {
            MetadataRequest::default().with_topics(Some(vec![]))
        } else {
            MetadataRequest::default().with_topics(None)
        };
        let resp: MetadataResponse = c.call(ApiKey::Metadata, v, &all).await;
        assert_eq!(resp.brokers.len(), 1);
        assert_eq!(resp.brokers[0].node_id.0, 7);
        assert_eq!(resp.brokers[0].host.as_str(), "gw.us-east-1.fjord.test");
        assert_eq!(resp.brokers[0].port, 9092);
        assert_eq!(resp.topics.len(), 1, "v{v}");
        let t = &resp.topics[0];
        assert_eq!(t.error_code, 0, "v{v}");
        assert_eq!(t.name.as_ref().unwrap().as_str(), "orders");
        assert_eq!(t.partitions.len(), 3);
        for (p, o) in t.partitions.iter().zip(&owners) {
            assert_eq!(p.leader_id.0, 7);
            assert_eq!(p.replica_nodes, vec![BrokerId(7)]);
            if v >= 7 {
                assert_eq!(p.leader_epoch, o.epoch);
            }
        }
        if v >= 10 {
            assert_eq!(t.topic_id, id);
        }
        if v >= 2 {
            assert_eq!(
                resp.cluster_id.as_deref(),
                Some(crate::handlers::cluster::kafka_cluster_id(env.tenant.cluster.id).as_str())
            );
        }
        // A named unknown topic is reported, never created.
        if v >= 1 {
            let req = MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("nope"))),
            ]));
            let resp: MetadataResponse = c.call(ApiKey::Metadata, v, &req).await;
            assert_eq!(resp.topics[0].error_code, 3);
        }
    }
    assert!(env
        .store
        .get_topic(env.tenant.cluster.id, "nope")
        .await
        .unwrap()
        .is_none());
    // By id (v10+).
    let req = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(None)
        .with_topic_id(id)]));
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &req).await;
    assert_eq!(resp.topics[0].name.as_ref().unwrap().as_str(), "orders");
}

#[tokio::test]
async fn produce_routes_each_partition_to_its_owner_and_fetch_reads_back() {
    let env = Env::new(&["n1", "n2"]).await;
    let id = env.create_topic("events", 4).await;
    let owners = env.store.list_partition_owners(id).await.unwrap();
    let mut c = env.authed().await;
    let parts: Vec<(i32, Bytes)> = (0..4).map(|p| (p, batch(p as usize + 1))).collect();
    for v in [3, 7, 9, 11] {
        let resp: ProduceResponse = c
            .call(ApiKey::Produce, v, &produce_req("events", &parts, -1))
            .await;
        for pr in &resp.responses[0].partition_responses {
            assert_eq!(pr.error_code, 0, "v{v} p{}", pr.index);
        }
    }
    // Each node saw exactly the partitions it owns.
    for (node_id, node) in &env.nodes {
        let mine: Vec<i32> = owners
            .iter()
            .filter(|o| &o.node_id == node_id)
            .map(|o| o.partition)
            .collect();
        for (_, seen) in node.seen.lock().iter() {
            let mut got: Vec<i32> = seen.iter().map(|(_, p)| *p).collect();
            got.sort();
            assert_eq!(got, mine, "node {node_id}");
        }
    }
    // Partition 3 holds 4 produces of 4 records: offsets 0, 4, 8, 12.
    let resp: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_req("events", &[(3, batch(4))], -1),
        )
        .await;
    assert_eq!(resp.responses[0].partition_responses[0].base_offset, 16);

    for v in [4, 11, 12, 13, 16] {
        let resp: FetchResponse = c
            .call(
                ApiKey::Fetch,
                v,
                &fetch_req(v, "events", id, &[(3, 0), (1, 0)]),
            )
            .await;
        assert_eq!(resp.error_code, 0);
        assert_eq!(resp.session_id, 0);
        let t = &resp.responses[0];
        if v >= 13 {
            assert_eq!(t.topic_id, id);
        } else {
            assert_eq!(t.topic.as_str(), "events");
        }
        let p3 = &t.partitions[0];
        assert_eq!(
            (p3.partition_index, p3.error_code, p3.high_watermark),
            (3, 0, 20),
            "v{v}"
        );
        let mut records = p3.records.clone().unwrap();
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut records).unwrap();
        assert_eq!(sets.iter().map(|s| s.records.len()).sum::<usize>(), 20);
        assert_eq!(t.partitions[1].high_watermark, 8);
    }
}

#[tokio::test]
async fn produce_errors_are_per_partition() {
    let env = Env::new(&["n1", "n2"]).await;
    let id = env.create_topic("t", 2).await;
    let owners = env.store.list_partition_owners(id).await.unwrap();
    let mut c = env.authed().await;

    let resp: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_req("missing", &[(0, batch(1))], -1),
        )
        .await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 3);
    let resp: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_req("t", &[(5, batch(1)), (-1, batch(1))], -1),
        )
        .await;
    assert!(resp.responses[0]
        .partition_responses
        .iter()
        .all(|p| p.error_code == 3));

    // Transactions: refused with a message.
    let txn = produce_req("t", &[(0, batch(1))], -1)
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))));
    let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &txn).await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 42);
    assert!(p.error_message.as_deref().unwrap().contains("transactions"));

    // The owner of partition 0 is down: partition 0 is retriable NOT_LEADER, partition 1 lands
    // (if it lives elsewhere).
    let down = &owners[0].node_id;
    *env.nodes[down].down.lock() = true;
    let resp: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_req("t", &[(0, batch(1)), (1, batch(1))], -1),
        )
        .await;
    let prs = &resp.responses[0].partition_responses;
    assert_eq!(prs[0].error_code, 6);
    let expect_p1 = if &owners[1].node_id == down { 6 } else { 0 };
    assert_eq!(prs[1].error_code, expect_p1);
}

#[tokio::test]
async fn acks_zero_writes_without_answering() {
    let env = Env::new(&["n1"]).await;
    env.create_topic("quiet", 1).await;
    let mut c = env.authed().await;
    let out = c
        .send(
            ApiKey::Produce,
            9,
            &produce_req("quiet", &[(0, batch(3))], 0),
        )
        .await;
    assert!(matches!(out, Outcome::Silent), "{out:?}");
    let resp: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_req("quiet", &[(0, batch(1))], 1),
        )
        .await;
    assert_eq!(resp.responses[0].partition_responses[0].base_offset, 3);
}

#[tokio::test]
async fn a_failed_acks_zero_produce_closes_the_connection() {
    // The client expects no answer, so only a closed connection tells it (as Kafka does).
    let env = Env::new(&["n1"]).await;
    let mut c = env.authed().await;
    let out = c
        .send(
            ApiKey::Produce,
            9,
            &produce_req("no-such-topic", &[(0, batch(1))], 0),
        )
        .await;
    match out {
        Outcome::Close {
            frame: None,
            reason: ConnectionError::AcksZeroProduceFailed(why),
            ..
        } => assert!(why.starts_with("no-such-topic-0: "), "{why}"),
        other => panic!("expected the connection closed, got {other:?}"),
    }
}

#[tokio::test]
async fn fetch_unknown_topic_and_stale_epoch() {
    let env = Env::new(&["n1"]).await;
    let id = env.create_topic("f", 1).await;
    let mut c = env.authed().await;
    let resp: FetchResponse = c
        .call(
            ApiKey::Fetch,
            13,
            &fetch_req(13, "", uuid::Uuid::from_u128(99), &[(0, 0)]),
        )
        .await;
    assert_eq!(resp.responses[0].partitions[0].error_code, 100);
    let resp: FetchResponse = c
        .call(ApiKey::Fetch, 12, &fetch_req(12, "nope", id, &[(0, 0)]))
        .await;
    assert_eq!(resp.responses[0].partitions[0].error_code, 3);
    let mut req = fetch_req(12, "f", id, &[(0, 0)]);
    req.topics[0].partitions[0].current_leader_epoch = 5;
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
    assert_eq!(resp.responses[0].partitions[0].error_code, 75);
    let resp: FetchResponse = c
        .call(
            ApiKey::Fetch,
            12,
            &fetch_req(12, "f", id, &[(0, 0)]).with_session_id(12),
        )
        .await;
    assert_eq!(resp.error_code, 70);
}

#[tokio::test]
async fn list_offsets_leader_epoch_and_delete_records() {
    let env = Env::new(&["n1", "n2"]).await;
    let id = env.create_topic("l", 2).await;
    let epoch = env.store.list_partition_owners(id).await.unwrap()[1].epoch;
    let mut c = env.authed().await;
    let _: ProduceResponse = c
        .call(ApiKey::Produce, 9, &produce_req("l", &[(1, batch(5))], -1))
        .await;
    for v in 1..=7 {
        let parts = vec![
            ListOffsetsPartition::default()
                .with_partition_index(1)
                .with_timestamp(-1),
            ListOffsetsPartition::default()
                .with_partition_index(1)
                .with_timestamp(-2),
            ListOffsetsPartition::default()
                .with_partition_index(9)
                .with_timestamp(-1),
        ];
        let req = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
            .with_name(name("l"))
            .with_partitions(parts)]);
        let resp: ListOffsetsResponse = c.call(ApiKey::ListOffsets, v, &req).await;
        let ps = &resp.topics[0].partitions;
        assert_eq!((ps[0].error_code, ps[0].offset), (0, 5), "v{v}");
        assert_eq!(ps[1].offset, 0);
        assert_eq!(ps[2].error_code, 3);
    }
    for v in 2..=4 {
        let parts = vec![
            OffsetForLeaderPartition::default()
                .with_partition(1)
                .with_leader_epoch(epoch)
                .with_current_leader_epoch(-1),
            OffsetForLeaderPartition::default()
                .with_partition(1)
                .with_leader_epoch(epoch + 1)
                .with_current_leader_epoch(-1),
        ];
        let req = OffsetForLeaderEpochRequest::default().with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(name("l"))
                .with_partitions(parts),
        ]);
        let resp: OffsetForLeaderEpochResponse =
            c.call(ApiKey::OffsetForLeaderEpoch, v, &req).await;
        let ps = &resp.topics[0].partitions;
        assert_eq!(
            (ps[0].error_code, ps[0].leader_epoch, ps[0].end_offset),
            (0, epoch, 5)
        );
        assert_eq!(ps[1].error_code, 74);
    }
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    let req = DeleteRecordsRequest::default().with_topics(vec![DeleteRecordsTopic::default()
        .with_name(name("l"))
        .with_partitions(vec![DeleteRecordsPartition::default()
            .with_partition_index(1)
            .with_offset(3)])]);
    let resp: DeleteRecordsResponse = c.call(ApiKey::DeleteRecords, 2, &req).await;
    assert_eq!(
        (
            resp.topics[0].partitions[0].error_code,
            resp.topics[0].partitions[0].low_watermark
        ),
        (0, 3)
    );
}

#[tokio::test]
async fn init_producer_id_hands_out_distinct_ids_and_refuses_transactions() {
    let env = Env::new(&["n1"]).await;
    let mut c = env.authed().await;
    let mut ids = std::collections::HashSet::new();
    for v in 0..=4 {
        let resp: InitProducerIdResponse = c
            .call(
                ApiKey::InitProducerId,
                v,
                &InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(60_000),
            )
            .await;
        assert_eq!((resp.error_code, resp.producer_epoch), (0, 0));
        assert!(ids.insert(resp.producer_id.0));
    }
    let txn = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))));
    let resp: InitProducerIdResponse = c.call(ApiKey::InitProducerId, 4, &txn).await;
    assert_eq!(resp.error_code, 42);
}

#[tokio::test]
async fn describe_cluster_and_find_coordinator_name_this_gateway() {
    let env = Env::new(&["n1"]).await;
    let mut c = env.authed().await;
    for v in 0..=1 {
        let resp: DescribeClusterResponse = c
            .call(
                ApiKey::DescribeCluster,
                v,
                &DescribeClusterRequest::default(),
            )
            .await;
        assert_eq!(
            (
                resp.controller_id.0,
                resp.brokers.len(),
                resp.brokers[0].port
            ),
            (7, 1, 9092)
        );
    }
    for v in 0..=3 {
        let req = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"));
        let resp: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, v, &req).await;
        assert_eq!((resp.error_code, resp.node_id.0, resp.port), (0, 7, 9092));
    }
    for v in 4..=6 {
        let req = FindCoordinatorRequest::default().with_coordinator_keys(vec![
            StrBytes::from_static_str("g1"),
            StrBytes::from_static_str("g2"),
        ]);
        let resp: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, v, &req).await;
        assert_eq!(resp.coordinators.len(), 2);
        assert!(resp
            .coordinators
            .iter()
            .all(|k| k.node_id.0 == 7 && k.error_code == 0));
    }
    let txn = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_key(StrBytes::from_static_str("tx"));
    let resp: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 3, &txn).await;
    assert_eq!(resp.error_code, 42);
    assert!(resp
        .error_message
        .unwrap()
        .contains("transactions are not supported yet"));
}
