//! A local multi-process deployment: `fjord storage-node` and `fjord gateway` as separate
//! processes sharing the SQLite metadata file and the object-store directory.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_and_storage_node_as_separate_processes() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Fjord::start_role(
        dir.path(),
        &["storage-node", "--node-id", "n1"],
        "storage node n1 running",
    );
    let mut gateway = Fjord::start_role(
        dir.path(),
        &["gateway", "--kafka-addr", "127.0.0.1:0"],
        "bootstrap: ",
    );
    create_topic(&gateway, "split", 3, &[]).await;

    let producer: FutureProducer<MskIam> = client_config(&gateway.bootstrap)
        .set("acks", "all")
        .create_with_context(MskIam(gateway.credentials()))
        .unwrap();
    let values: Vec<String> = (0..300).map(|i| format!("split-{i}")).collect();
    let sends = values.iter().map(|v| {
        producer.send(
            FutureRecord::<(), _>::to("split").payload(v),
            Duration::from_secs(10),
        )
    });
    for result in futures::future::join_all(sends).await {
        result.expect("produce through the gateway process");
    }

    let consumer: BaseConsumer<MskIam> = client_config(&gateway.bootstrap)
        .set("group.id", "split-readers")
        .create_with_context(MskIam(gateway.credentials()))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset("split", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut got = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < 300 {
        assert!(Instant::now() < deadline, "read {} of 300", got.len());
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            got.insert(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        }
    }
    assert_eq!(got, (0..300).map(|i| format!("split-{i}")).collect());

    // Close the clients first: librdkafka's destructors wait on their broker connections.
    drop(consumer);
    drop(producer);
    assert!(gateway.terminate().success(), "gateway exits 0 on SIGTERM");
    assert!(
        node.terminate().success(),
        "storage node exits 0 on SIGTERM"
    );
}
