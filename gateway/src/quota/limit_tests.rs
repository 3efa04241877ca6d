//! MSK Serverless limits through the protocol harness: the partition mutation quota (KIP-599,
//! strict and permissive versions of CreateTopics, CreatePartitions and DeleteTopics) and the
//! fetch response size cap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;

use crate::request::MAX_THROTTLE;
use crate::tests::{parse_response, Client, Env};
use crate::transport::tests::set_limits;
use crate::Outcome;

const THROTTLED: i16 = 89;

fn name(n: &str) -> TopicName {
    TopicName(StrBytes::from_string(n.into()))
}

fn create(topics: &[(&str, i32)], validate_only: bool) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|(n, p)| {
                    CreatableTopic::default()
                        .with_name(name(n))
                        .with_num_partitions(*p)
                        .with_replication_factor(-1)
                })
                .collect(),
        )
        .with_timeout_ms(1000)
        .with_validate_only(validate_only)
}

/// The response of `out` and how long the connection is muted after it.
fn answer<R: Decodable>(out: Outcome, api: ApiKey, v: i16) -> (R, Duration) {
    let (frame, mute) = match out {
        Outcome::Respond(frame) => (frame, Duration::ZERO),
        Outcome::Throttled {
            frame: Some(frame),
            mute,
            ..
        } => (frame, mute),
        other => panic!("expected a response, got {other:?}"),
    };
    let (_, mut b) = parse_response(api, v, &frame);
    (R::decode(&mut b, v).unwrap(), mute)
}

/// A gateway whose clusters may create or delete 4 partitions per 4096 ms (one per 1024 ms,
/// exact in floating point), with enough topic-admin requests not to be throttled for those.
async fn env() -> (Env, Client) {
    let env = Env::new(&["n1"]).await;
    set_limits(
        &*env.store,
        env.tenant.cluster.id,
        &[
            ("partition-mutations-per-window", 4),
            ("partition-mutation-window-ms", 4096),
            ("topic-admin-requests-per-sec", 1000),
        ],
    )
    .await;
    let c = env.authed().await;
    (env, c)
}

#[tokio::test]
async fn strict_versions_refuse_topics_while_the_quota_is_in_debt() {
    let (_env, mut c) = env().await;
    // Validate-only requests charge nothing.
    let r: CreateTopicsResponse = c
        .call(ApiKey::CreateTopics, 7, &create(&[("v", 4)], true))
        .await;
    assert_eq!(r.topics[0].error_code, 0);
    // 3 of 4, then 3 more: admitted while not in debt, which leaves a debt of 2 partitions
    // (2048 ms). The request that incurs it is not throttled (KIP-599 strict mode).
    let out = c
        .send(
            ApiKey::CreateTopics,
            7,
            &create(&[("a", 3), ("b", 3)], false),
        )
        .await;
    let (r, mute): (CreateTopicsResponse, _) = answer(out, ApiKey::CreateTopics, 7);
    assert_eq!(
        r.topics.iter().map(|t| t.error_code).collect::<Vec<_>>(),
        [0, 0]
    );
    assert_eq!((r.throttle_time_ms, mute), (0, Duration::ZERO));

    // In debt: every topic is refused with the time until the debt is paid.
    let out = c
        .send(
            ApiKey::CreateTopics,
            7,
            &create(&[("c", 1), ("d", 1)], false),
        )
        .await;
    let (r, mute): (CreateTopicsResponse, _) = answer(out, ApiKey::CreateTopics, 7);
    assert_eq!(
        r.topics.iter().map(|t| t.error_code).collect::<Vec<_>>(),
        [THROTTLED, THROTTLED]
    );
    assert_eq!(
        ResponseError::try_from_code(THROTTLED),
        Some(ResponseError::ThrottlingQuotaExceeded)
    );
    let message = r.topics[0].error_message.as_deref().unwrap();
    assert!(
        message.contains("partition mutation quota of 4 partitions created or deleted per 4096 ms"),
        "{message}"
    );
    assert_eq!(r.throttle_time_ms, 2048);
    assert_eq!(
        mute,
        Duration::from_millis(2048),
        "the connection is muted too"
    );

    let grow = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(name("a"))
            .with_count(5)
            .with_assignments(None)])
        .with_timeout_ms(1000);
    let out = c.send(ApiKey::CreatePartitions, 3, &grow).await;
    let (r, _): (CreatePartitionsResponse, _) = answer(out, ApiKey::CreatePartitions, 3);
    assert_eq!(r.results[0].error_code, THROTTLED);
    assert_eq!(r.throttle_time_ms, 2048);

    let delete = DeleteTopicsRequest::default()
        .with_topic_names(vec![name("a")])
        .with_timeout_ms(1000);
    let out = c.send(ApiKey::DeleteTopics, 5, &delete).await;
    let (r, _): (DeleteTopicsResponse, _) = answer(out, ApiKey::DeleteTopics, 5);
    assert_eq!(r.responses[0].error_code, THROTTLED);

    // 1024 ms later the debt is 1024 ms; 2048 ms later it is paid: deleting `a` (3
    // partitions) goes through and leaves a new debt, so growing `b` right after is refused.
    c.now_ms += 1024;
    let out = c.send(ApiKey::DeleteTopics, 5, &delete).await;
    let (r, _): (DeleteTopicsResponse, _) = answer(out, ApiKey::DeleteTopics, 5);
    assert_eq!(r.responses[0].error_code, THROTTLED);
    assert_eq!(r.throttle_time_ms, 1024);
    c.now_ms += 1024;
    let out = c.send(ApiKey::DeleteTopics, 5, &delete).await;
    let (r, mute): (DeleteTopicsResponse, _) = answer(out, ApiKey::DeleteTopics, 5);
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!((r.throttle_time_ms, mute), (0, Duration::ZERO));
    let grow_b = grow
        .clone()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(name("b"))
            .with_count(4)
            .with_assignments(None)]);
    let out = c.send(ApiKey::CreatePartitions, 3, &grow_b).await;
    let (r, _): (CreatePartitionsResponse, _) = answer(out, ApiKey::CreatePartitions, 3);
    assert_eq!(r.results[0].error_code, THROTTLED);
    assert_eq!(r.throttle_time_ms, 3072);
    // Paid again: the growth is charged its one partition. (Times stay within the storage
    // node's heartbeat lifetime, so placing the new partition works.)
    c.now_ms += 3072;
    let out = c.send(ApiKey::CreatePartitions, 3, &grow_b).await;
    let (r, _): (CreatePartitionsResponse, _) = answer(out, ApiKey::CreatePartitions, 3);
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(r.throttle_time_ms, 0);
}

#[tokio::test]
async fn older_versions_are_let_through_and_throttled() {
    let (_env, mut c) = env().await;
    // CreateTopics v5 predates THROTTLING_QUOTA_EXCEEDED: 6 partitions of 4 are created, and
    // the answer carries (and the connection waits out) the 2-partition debt.
    let out = c
        .send(
            ApiKey::CreateTopics,
            5,
            &create(&[("a", 3), ("b", 3)], false),
        )
        .await;
    let (r, mute): (CreateTopicsResponse, _) = answer(out, ApiKey::CreateTopics, 5);
    assert_eq!(
        r.topics.iter().map(|t| t.error_code).collect::<Vec<_>>(),
        [0, 0]
    );
    assert_eq!(r.throttle_time_ms, 2048);
    assert_eq!(mute, Duration::from_millis(2048));
    // DeleteTopics v4 likewise: deleted, with the larger debt.
    let delete = DeleteTopicsRequest::default()
        .with_topic_names(vec![name("a")])
        .with_timeout_ms(1000);
    let out = c.send(ApiKey::DeleteTopics, 4, &delete).await;
    let (r, _): (DeleteTopicsResponse, _) = answer(out, ApiKey::DeleteTopics, 4);
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(r.throttle_time_ms, 5 * 1024);
}

#[tokio::test]
async fn long_debts_mute_the_connection_up_to_the_cap() {
    let (env, mut c) = env().await;
    // 40 partitions at 1 per 1024 ms: the answer says the whole 37 s, the connection is
    // muted for at most MAX_THROTTLE (the rest is paid by the next refusals).
    let out = c
        .send(ApiKey::CreateTopics, 7, &create(&[("big", 40)], false))
        .await;
    let (r, _): (CreateTopicsResponse, _) = answer(out, ApiKey::CreateTopics, 7);
    assert_eq!(
        r.topics[0].error_code, 0,
        "one topic over the allowance still goes through"
    );
    let out = c
        .send(ApiKey::CreateTopics, 7, &create(&[("next", 1)], false))
        .await;
    let (r, mute): (CreateTopicsResponse, _) = answer(out, ApiKey::CreateTopics, 7);
    assert_eq!(r.topics[0].error_code, THROTTLED);
    assert_eq!(r.throttle_time_ms, 36 * 1024);
    assert_eq!(mute, MAX_THROTTLE);
    assert!(env.topics.get(env.tenant.cluster.id, "next").await.is_err());
}

fn fetch(topic: &str, max_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(max_bytes)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(i32::MAX)])])
}

#[tokio::test]
async fn fetches_ask_nodes_for_at_most_the_cluster_limit() {
    let env = Env::new(&["n1"]).await;
    set_limits(
        &*env.store,
        env.tenant.cluster.id,
        &[("max-fetch-bytes", 4096)],
    )
    .await;
    env.create_topic("t", 1).await;
    let mut c = env.authed().await;
    for (v, asked, sent) in [(12, i32::MAX, 4096), (12, 1000, 1000), (4, 0, 4096)] {
        let r: FetchResponse = c.call(ApiKey::Fetch, v, &fetch("t", asked)).await;
        assert_eq!(r.responses[0].partitions[0].error_code, 0);
        let budgets = env.nodes["n1"].fetch_budgets.lock().clone();
        assert_eq!(budgets.last(), Some(&sent), "v{v} asking {asked}");
    }
}
