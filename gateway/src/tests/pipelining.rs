//! Produce requests of one connection run side by side (see `crate::pipeline`): over a real
//! connection shell, with a node that holds chosen partitions' produces until released.

use std::time::Duration;

use kafka_protocol::messages::*;
use tokio::io::DuplexStream;
use tokio::sync::{watch, Semaphore};

use super::framing::{open, read_frame, write_frame};
use super::*;

/// Logs the connection in with the dev tenant's PLAIN credentials.
async fn login(env: &Env, conn: &mut DuplexStream) {
    let hs = request_frame(
        ApiKey::SaslHandshake,
        1,
        1,
        &SaslHandshakeRequest::default().with_mechanism("PLAIN".into()),
    );
    write_frame(conn, &hs).await;
    read_frame(conn).await.unwrap();
    write_frame(
        conn,
        &request_frame(ApiKey::SaslAuthenticate, 2, 2, &plain(&env.tenant)),
    )
    .await;
    let (_, mut b) = parse_response(
        ApiKey::SaslAuthenticate,
        2,
        &reframe(&read_frame(conn).await.unwrap()),
    );
    let resp = SaslAuthenticateResponse::decode(&mut b, 2).unwrap();
    assert_eq!(resp.error_code, 0);
}

async fn send_produce(conn: &mut DuplexStream, corr: i32, partition: i32) {
    let req = data::produce_req("t", &[(partition, batch(1))], -1);
    write_frame(conn, &request_frame(ApiKey::Produce, 9, corr, &req)).await;
}

/// The next response's correlation id and the error code of its single partition.
async fn next_produce_answer(conn: &mut DuplexStream) -> (i32, i16) {
    let frame = read_frame(conn).await.expect("a produce response");
    let (corr, mut b) = parse_response(ApiKey::Produce, 9, &reframe(&frame));
    let resp = ProduceResponse::decode(&mut b, 9).unwrap();
    (corr, resp.responses[0].partition_responses[0].error_code)
}

/// Waits until the node has received `n` produces (each arrival is recorded before its gate).
async fn arrivals(node: &MemNode, n: usize) -> Vec<Vec<(Uuid, i32)>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen: Vec<_> = node
            .seen
            .lock()
            .iter()
            .filter(|(kind, _)| *kind == "produce")
            .map(|(_, parts)| parts.clone())
            .collect();
        if seen.len() >= n {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} produces reached the node: {seen:?}",
            seen.len()
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produces_to_other_partitions_run_together_and_answer_in_order() {
    let env = Env::new(&["n1"]).await;
    let topic = env.create_topic("t", 2).await;
    let node = env.nodes["n1"].clone();
    let (p0, p1) = (Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0)));
    node.gates.lock().insert(0, p0.clone());
    node.gates.lock().insert(1, p1.clone());
    let (_stop_tx, stop) = watch::channel(false);
    let (mut conn, _task) = open(&env, &stop);
    login(&env, &mut conn).await;

    // A (partition 0), B (partition 1), C (partition 0 again), without waiting for answers.
    send_produce(&mut conn, 10, 0).await;
    send_produce(&mut conn, 11, 1).await;
    send_produce(&mut conn, 12, 0).await;

    // A and B are both at the node while A is still held: B did not wait for A.
    let seen = arrivals(&node, 2).await;
    assert_eq!(seen, [vec![(topic, 0)], vec![(topic, 1)]]);

    // B is applied first, but its answer waits for A's: answers keep request order.
    p1.add_permits(1);
    let answer = tokio::time::timeout(Duration::from_millis(300), read_frame(&mut conn)).await;
    assert!(answer.is_err(), "an answer overtook A's: {answer:?}");
    assert_eq!(*node.applied.lock(), [vec![(topic, 1)]]);
    // C, on A's partition, has not reached the node while A is unanswered.
    assert_eq!(arrivals(&node, 2).await.len(), 2);

    p0.add_permits(2);
    assert_eq!(next_produce_answer(&mut conn).await, (10, 0));
    assert_eq!(next_produce_answer(&mut conn).await, (11, 0));
    assert_eq!(next_produce_answer(&mut conn).await, (12, 0));
    assert_eq!(
        *node.applied.lock(),
        [vec![(topic, 1)], vec![(topic, 0)], vec![(topic, 0)]],
        "C was applied after A"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_other_than_produce_waits_for_the_produces_before_it() {
    let env = Env::new(&["n1"]).await;
    let topic = env.create_topic("t", 1).await;
    let node = env.nodes["n1"].clone();
    let gate = Arc::new(Semaphore::new(0));
    node.gates.lock().insert(0, gate.clone());
    let (_stop_tx, stop) = watch::channel(false);
    let (mut conn, _task) = open(&env, &stop);
    login(&env, &mut conn).await;

    send_produce(&mut conn, 20, 0).await;
    let list = ListOffsetsRequest::default().with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)]),
    ]);
    write_frame(&mut conn, &request_frame(ApiKey::ListOffsets, 5, 21, &list)).await;
    arrivals(&node, 1).await;
    let answer = tokio::time::timeout(Duration::from_millis(300), read_frame(&mut conn)).await;
    assert!(answer.is_err(), "answered before the produce: {answer:?}");
    assert!(
        !node
            .seen
            .lock()
            .iter()
            .any(|(kind, _)| *kind == "list_offsets"),
        "ListOffsets ran while the produce before it was in flight"
    );

    gate.add_permits(1);
    assert_eq!(next_produce_answer(&mut conn).await, (20, 0));
    let frame = read_frame(&mut conn).await.unwrap();
    let (corr, mut b) = parse_response(ApiKey::ListOffsets, 5, &reframe(&frame));
    assert_eq!(corr, 21);
    let resp = ListOffsetsResponse::decode(&mut b, 5).unwrap();
    // The barrier saw the produce: the log end is after its record.
    assert_eq!(resp.topics[0].partitions[0].offset, 1);
    assert_eq!(*node.applied.lock(), [vec![(topic, 0)]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produce_ordered_by_the_node_lets_the_next_one_on_its_partition_start() {
    let env = Env::new(&["n1"]).await;
    let topic = env.create_topic("t", 1).await;
    let node = env.nodes["n1"].clone();
    *node.early_order.lock() = true;
    let gate = Arc::new(Semaphore::new(0));
    node.gates.lock().insert(0, gate.clone());
    let (_stop_tx, stop) = watch::channel(false);
    let (mut conn, _task) = open(&env, &stop);
    login(&env, &mut conn).await;

    // Both reach the node while the first is still held: the node had ordered the first, so
    // the second did not wait for its answer (they share the fsync on a real node).
    send_produce(&mut conn, 30, 0).await;
    send_produce(&mut conn, 31, 0).await;
    assert_eq!(
        arrivals(&node, 2).await,
        [vec![(topic, 0)], vec![(topic, 0)]]
    );
    assert!(node.applied.lock().is_empty());

    gate.add_permits(2);
    assert_eq!(next_produce_answer(&mut conn).await, (30, 0));
    assert_eq!(next_produce_answer(&mut conn).await, (31, 0));
}
