//! The topic cache through the Kafka protocol: steady-state produce and fetch read no
//! metadata, and a node's answer that the gateway's view is stale costs one re-read.

use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;

use super::data::produce_req;
use super::*;
use crate::topics::TopicReadCounts;

fn fetch_by_id(id: Uuid) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(id)
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20)])])
}

async fn produce_code(c: &mut Client, topic: &str) -> i16 {
    let resp: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_req(topic, &[(0, batch(1))], -1),
        )
        .await;
    resp.responses[0].partition_responses[0].error_code
}

/// The owner of partition 0 and another node.
async fn owner_and_other(env: &Env, id: Uuid) -> (String, String, i32) {
    let owner = env.store.list_partition_owners(id).await.unwrap()[0].clone();
    let other = env
        .nodes
        .keys()
        .find(|n| **n != owner.node_id)
        .unwrap()
        .clone();
    (owner.node_id, other, owner.epoch)
}

fn produces_seen(node: &MemNode) -> usize {
    node.seen
        .lock()
        .iter()
        .filter(|(k, _)| *k == "produce")
        .count()
}

#[tokio::test]
async fn a_moved_partition_costs_one_reread_and_steady_state_none() {
    let env = Env::new(&["n1", "n2"]).await;
    let id = env.create_topic("m", 1).await;
    let (from, to, epoch) = owner_and_other(&env, id).await;
    let mut c = env.authed().await;

    // Steady state: produce and fetch, many times, without a metadata read.
    for _ in 0..50 {
        assert_eq!(produce_code(&mut c, "m").await, 0);
        let resp: FetchResponse = c.call(ApiKey::Fetch, 13, &fetch_by_id(id)).await;
        assert_eq!(resp.responses[0].partitions[0].error_code, 0);
    }
    assert_eq!(env.topics.read_counts(), TopicReadCounts::default());

    // The partition moves; the old owner now refuses it.
    env.store.claim_partition(id, 0, &to, epoch).await.unwrap();
    *env.nodes[&from].refuse.lock() = Some(6);
    assert_eq!(produce_code(&mut c, "m").await, 6);
    let counts = env.topics.read_counts();
    assert_eq!((counts.invalidations, counts.request_path_reads), (1, 0));

    // The retry re-reads the topic once and lands on the new owner; then no reads again.
    for _ in 0..20 {
        assert_eq!(produce_code(&mut c, "m").await, 0);
    }
    assert_eq!(produces_seen(&env.nodes[&to]), 20);
    let counts = env.topics.read_counts();
    assert_eq!((counts.invalidations, counts.request_path_reads), (1, 2));
}

#[tokio::test]
async fn a_topic_gone_from_under_the_cache_is_dropped_on_the_nodes_word() {
    let env = Env::new(&["n1"]).await;
    let id = env.create_topic("gone", 1).await;
    let mut c = env.authed().await;
    let resp: FetchResponse = c.call(ApiKey::Fetch, 13, &fetch_by_id(id)).await;
    assert_eq!(resp.responses[0].partitions[0].error_code, 0);

    // Deleted by another gateway: only the node knows.
    env.store.delete_topic(id).await.unwrap();
    *env.nodes["n1"].refuse.lock() = Some(100);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 13, &fetch_by_id(id)).await;
    assert_eq!(resp.responses[0].partitions[0].error_code, 100);
    let fetches = env.nodes["n1"].seen.lock().len();

    // The next fetch reads the store once, finds nothing, and does not bother the node.
    let resp: FetchResponse = c.call(ApiKey::Fetch, 13, &fetch_by_id(id)).await;
    assert_eq!(resp.responses[0].partitions[0].error_code, 100);
    assert_eq!(env.nodes["n1"].seen.lock().len(), fetches);
    let counts = env.topics.read_counts();
    assert_eq!((counts.invalidations, counts.request_path_reads), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_owner_rereads_at_most_once_per_interval() {
    let env = Env::new(&["n1"]).await;
    env.create_topic("d", 1).await;
    let mut c = env.authed().await;
    *env.nodes["n1"].down.lock() = true;

    // The view was read just now: no re-read for the first failures.
    for _ in 0..10 {
        assert_eq!(produce_code(&mut c, "d").await, 6);
    }
    let counts = env.topics.read_counts();
    assert_eq!(counts.request_path_reads, 0);
    assert_eq!(counts.rate_limited_rereads, 10);

    // After the interval one failure drops the view, the next request re-reads it (the node
    // still owns the partition), and then the interval applies again.
    tokio::time::advance(Duration::from_secs(1)).await;
    for _ in 0..10 {
        assert_eq!(produce_code(&mut c, "d").await, 6);
    }
    let counts = env.topics.read_counts();
    assert_eq!(counts.invalidations, 1);
    assert_eq!(counts.request_path_reads, 2);
    assert_eq!(counts.rate_limited_rereads, 19);
}
