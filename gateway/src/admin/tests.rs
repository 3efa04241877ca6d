//! Handler tests: requests are encoded and decoded with kafka-protocol as a client and the
//! connection layer would, and responses are encoded at the request's version and decoded back,
//! so every answer is checked to be valid on the wire.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use fjord_metadata::MetadataStore;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use super::*;
use crate::quota::mutations::MutationQuota;
use crate::topics::tests::{fixture, Fixture, NOW};

fn wire<T: Encodable + Decodable>(msg: &T, version: i16) -> T {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, version).unwrap();
    let mut bytes = buf.freeze();
    let out = T::decode(&mut bytes, version).unwrap();
    assert!(bytes.is_empty(), "trailing bytes after decode");
    out
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn name(v: &str) -> TopicName {
    s(v).into()
}

fn msg(m: &Option<StrBytes>) -> &str {
    m.as_ref().map(|m| m.as_str()).unwrap_or("")
}

fn creatable(topic: &str, partitions: i32, configs: &[(&str, Option<&str>)]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(3)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(s(k))
                        .with_value(v.map(s))
                })
                .collect(),
        )
}

async fn create(f: &Fixture, version: i16, topics: Vec<CreatableTopic>) -> CreateTopicsResponse {
    let req = wire(
        &CreateTopicsRequest::default()
            .with_topics(topics)
            .with_timeout_ms(30_000),
        version,
    );
    wire(
        &create_topics(
            &f.svc,
            f.cluster,
            version,
            req,
            &mut MutationQuota::unlimited(),
            NOW,
        )
        .await,
        version,
    )
}

#[tokio::test]
async fn create_topics_v7_reports_ids_counts_and_configs() {
    let f = fixture().await;
    let resp = create(
        &f,
        7,
        vec![
            creatable("ok", 3, &[("retention.ms", Some("1000"))]),
            creatable("dup", 1, &[]),
            creatable("dup", 1, &[]),
            creatable("bad", 1, &[("cleanup.policy", Some("compact"))]),
            creatable("nul", 1, &[("retention.ms", None)]),
            creatable("big", 1, &[("max.message.bytes", Some("99999999"))]),
        ],
    )
    .await;
    let r: Vec<_> = resp
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.error_code))
        .collect();
    assert_eq!(
        r,
        vec![
            ("ok", 0),
            ("dup", 42),
            ("bad", 40),
            ("nul", 40),
            ("big", 40)
        ]
    );
    let ok = &resp.topics[0];
    assert!(ok.error_message.is_none());
    assert_eq!(ok.num_partitions, 3);
    assert_eq!(ok.replication_factor, 1);
    let stored = f.store_topic("ok").await;
    assert_eq!(ok.topic_id, stored.id);
    let configs = ok.configs.as_ref().unwrap();
    let retention = configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_ref().unwrap().as_str(), "1000");
    assert_eq!(retention.config_source, 1);
    assert!(!retention.read_only);
    let segment = configs
        .iter()
        .find(|c| c.name.as_str() == "segment.bytes")
        .unwrap();
    assert!(segment.read_only);
    assert_eq!(segment.config_source, 5);

    assert!(msg(&resp.topics[1].error_message).contains("more than once"));
    assert!(msg(&resp.topics[2].error_message).contains("compaction is not supported yet"));
    assert!(msg(&resp.topics[3].error_message).contains("null value"));
    assert!(msg(&resp.topics[4].error_message).contains("exceeds the limit 33554432"));
    // Only the valid topic exists.
    assert_eq!(f.svc.list(f.cluster).await.unwrap().len(), 1);

    let again = create(&f, 7, vec![creatable("ok", 1, &[])]).await;
    assert_eq!(again.topics[0].error_code, 36);
    assert!(msg(&again.topics[0].error_message).contains("already exists"));
}

#[tokio::test]
async fn create_topics_old_version_and_validate_only() {
    let f = fixture().await;
    let resp = create(&f, 3, vec![creatable("a", -1, &[])]).await;
    assert_eq!(resp.topics[0].error_code, 0);
    assert_eq!(f.store_topic("a").await.partitions, 1);

    let req = CreateTopicsRequest::default()
        .with_topics(vec![creatable("v", 2, &[])])
        .with_validate_only(true);
    let req = wire(&req, 5);
    let resp = wire(
        &create_topics(
            &f.svc,
            f.cluster,
            5,
            req,
            &mut MutationQuota::unlimited(),
            NOW,
        )
        .await,
        5,
    );
    assert_eq!(resp.topics[0].error_code, 0);
    assert_eq!(resp.topics[0].num_partitions, 2);
    assert!(f.store.get_topic(f.cluster, "v").await.unwrap().is_none());
}

#[tokio::test]
async fn create_topics_with_manual_assignment() {
    let f = fixture().await;
    let assignment = |p: i32| {
        CreatableReplicaAssignment::default()
            .with_partition_index(p)
            .with_broker_ids(vec![BrokerId(1)])
    };
    let manual = CreatableTopic::default()
        .with_name(name("m"))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(vec![assignment(1), assignment(0)]);
    let mixed = CreatableTopic::default()
        .with_name(name("x"))
        .with_num_partitions(2)
        .with_replication_factor(-1)
        .with_assignments(vec![assignment(0)]);
    let gap = CreatableTopic::default()
        .with_name(name("g"))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(vec![assignment(0), assignment(2)]);
    let resp = create(&f, 6, vec![manual, mixed, gap]).await;
    let codes: Vec<_> = resp.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![0, 42, 39]);
    assert_eq!(resp.topics[0].num_partitions, 2);
}

#[tokio::test]
async fn delete_topics_by_name_and_id() {
    let f = fixture().await;
    create(&f, 7, vec![creatable("a", 1, &[]), creatable("b", 1, &[])]).await;
    let b_id = f.store_topic("b").await.id;

    let req = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default().with_name(Some(name("a"))),
        DeleteTopicState::default().with_topic_id(b_id),
        DeleteTopicState::default().with_topic_id(Uuid::from_u128(5)),
        DeleteTopicState::default().with_name(Some(name("zzz"))),
        DeleteTopicState::default()
            .with_name(Some(name("a")))
            .with_topic_id(b_id),
    ]);
    let req = wire(&req, 6);
    let resp = wire(
        &delete_topics(
            &f.svc,
            f.cluster,
            6,
            req,
            &mut MutationQuota::unlimited(),
            NOW,
        )
        .await,
        6,
    );
    let r: Vec<_> = resp
        .responses
        .iter()
        .map(|r| (r.name.as_ref().map(|n| n.to_string()), r.error_code))
        .collect();
    assert_eq!(
        r,
        vec![
            (Some("a".into()), 0),
            (Some("b".into()), 0),
            (None, 100),
            (Some("zzz".into()), 3),
            (Some("a".into()), 42),
        ]
    );
    assert_eq!(resp.responses[1].topic_id, b_id);
    assert!(msg(&resp.responses[2].error_message).contains("does not exist"));
    assert!(msg(&resp.responses[4].error_message).contains("not both"));
    assert!(f.svc.list(f.cluster).await.unwrap().is_empty());

    // v3: names only, no error messages on the wire.
    let req = wire(
        &DeleteTopicsRequest::default().with_topic_names(vec![name("gone")]),
        3,
    );
    let resp = wire(
        &delete_topics(
            &f.svc,
            f.cluster,
            3,
            req,
            &mut MutationQuota::unlimited(),
            NOW,
        )
        .await,
        3,
    );
    assert_eq!(resp.responses[0].error_code, 3);
    assert!(resp.responses[0].error_message.is_none());
}

#[tokio::test]
async fn create_partitions_codes_and_messages() {
    let f = fixture().await;
    create(&f, 7, vec![creatable("t", 2, &[])]).await;
    let topic = |n: &str, count: i32| {
        CreatePartitionsTopic::default()
            .with_name(name(n))
            .with_count(count)
            .with_assignments(None)
    };
    let req =
        CreatePartitionsRequest::default().with_topics(vec![topic("t", 4), topic("missing", 4)]);
    let resp = wire(
        &create_partitions(
            &f.svc,
            f.cluster,
            3,
            wire(&req, 3),
            &mut MutationQuota::unlimited(),
            NOW,
        )
        .await,
        3,
    );
    let codes: Vec<_> = resp.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![0, 3]);
    assert!(resp.results[0].error_message.is_none());
    assert_eq!(f.store_topic("t").await.partitions, 4);

    let with_bad_assignment = topic("t", 6).with_assignments(Some(vec![
        CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(1)]),
    ]));
    let req =
        CreatePartitionsRequest::default().with_topics(vec![topic("t", 3), with_bad_assignment]);
    let resp = wire(
        &create_partitions(
            &f.svc,
            f.cluster,
            2,
            wire(&req, 2),
            &mut MutationQuota::unlimited(),
            NOW,
        )
        .await,
        2,
    );
    // Both entries name the same topic: refused as duplicates.
    assert!(resp.results.iter().all(|r| r.error_code == 42));

    let req = CreatePartitionsRequest::default().with_topics(vec![topic("t", 3)]);
    let resp = wire(
        &create_partitions(
            &f.svc,
            f.cluster,
            1,
            wire(&req, 1),
            &mut MutationQuota::unlimited(),
            NOW,
        )
        .await,
        1,
    );
    assert_eq!(resp.results[0].error_code, 37);
    assert!(msg(&resp.results[0].error_message).contains("partitions can only be added"));

    let bad = topic("t", 6).with_assignments(Some(vec![
        CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(1)])
    ]));
    let req = CreatePartitionsRequest::default().with_topics(vec![bad]);
    let resp = wire(
        &create_partitions(
            &f.svc,
            f.cluster,
            0,
            wire(&req, 0),
            &mut MutationQuota::unlimited(),
            NOW,
        )
        .await,
        0,
    );
    assert_eq!(resp.results[0].error_code, 39);
    assert_eq!(f.store_topic("t").await.partitions, 4);
}

fn describe_req(resources: Vec<DescribeConfigsResource>) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default()
        .with_resources(resources)
        .with_include_synonyms(true)
        .with_include_documentation(true)
}

fn resource(kind: i8, n: &str, keys: Option<&[&str]>) -> DescribeConfigsResource {
    DescribeConfigsResource::default()
        .with_resource_type(kind)
        .with_resource_name(s(n))
        .with_configuration_keys(keys.map(|k| k.iter().map(|k| s(k)).collect()))
}

#[tokio::test]
async fn describe_configs_topics_brokers_and_errors() {
    let f = fixture().await;
    create(
        &f,
        7,
        vec![creatable("t", 1, &[("retention.ms", Some("10"))])],
    )
    .await;
    let req = describe_req(vec![
        resource(resource_type::TOPIC, "t", None),
        resource(
            resource_type::TOPIC,
            "t",
            Some(&["retention.ms", "max.message.bytes", "no.such"]),
        ),
        resource(resource_type::TOPIC, "missing", None),
        resource(
            resource_type::BROKER,
            "1",
            Some(&["auto.create.topics.enable"]),
        ),
        resource(resource_type::BROKER_LOGGER, "1", None),
        resource(32, "g", None),
    ]);
    let resp = wire(
        &describe_configs(&f.svc, f.cluster, 4, wire(&req, 4), NOW).await,
        4,
    );
    let codes: Vec<_> = resp.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![0, 0, 3, 0, 0, 42]);

    let all = &resp.results[0].configs;
    assert!(all.len() >= 7);
    let retention = all
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_ref().unwrap().as_str(), "10");
    assert_eq!(retention.config_source, 1);
    assert_eq!(retention.config_type, 5);
    assert_eq!(retention.synonyms.len(), 2);
    assert_eq!(retention.synonyms[1].name.as_str(), "log.retention.ms");
    assert!(!msg(&retention.documentation).is_empty());

    let picked: Vec<_> = resp.results[1]
        .configs
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(picked, vec!["max.message.bytes", "retention.ms"]);
    assert!(msg(&resp.results[2].error_message).contains("'missing' does not exist"));
    let broker = &resp.results[3].configs;
    assert_eq!(broker.len(), 1);
    assert_eq!(broker[0].value.as_ref().unwrap().as_str(), "false");
    assert!(broker[0].read_only);
    assert!(resp.results[4].configs.is_empty());
    assert!(msg(&resp.results[5].error_message).contains("not supported"));

    // v1 has no documentation or types on the wire; synonyms are there.
    let req = describe_req(vec![resource(resource_type::TOPIC, "t", None)])
        .with_include_documentation(false);
    let resp = wire(
        &describe_configs(&f.svc, f.cluster, 1, wire(&req, 1), NOW).await,
        1,
    );
    assert_eq!(resp.results[0].error_code, 0);
    assert!(!resp.results[0].configs[0].synonyms.is_empty());
}

#[tokio::test]
async fn alter_configs_replaces_and_refuses_brokers() {
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let f = fixture().await;
    create(
        &f,
        7,
        vec![creatable("t", 1, &[("retention.ms", Some("10"))])],
    )
    .await;
    let res = |kind: i8, n: &str, configs: &[(&str, Option<&str>)]| {
        AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(s(n))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        AlterableConfig::default()
                            .with_name(s(k))
                            .with_value(v.map(s))
                    })
                    .collect(),
            )
    };
    let req = AlterConfigsRequest::default().with_resources(vec![
        res(
            resource_type::TOPIC,
            "t",
            &[("compression.type", Some("gzip"))],
        ),
        res(resource_type::BROKER, "1", &[("num.partitions", Some("3"))]),
        res(resource_type::TOPIC, "missing", &[]),
    ]);
    let resp = wire(
        &alter_configs(&f.svc, f.cluster, 2, wire(&req, 2), NOW).await,
        2,
    );
    let codes: Vec<_> = resp.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![0, 44, 3]);
    assert!(msg(&resp.responses[1].error_message).contains("managed by Fjord"));
    assert_eq!(resp.responses[0].resource_name.as_str(), "t");
    let stored = f.store_topic("t").await;
    assert_eq!(stored.configs.len(), 1);
    assert_eq!(stored.configs["compression.type"], "gzip");

    let req = AlterConfigsRequest::default().with_resources(vec![res(
        resource_type::TOPIC,
        "t",
        &[("retention.ms", None)],
    )]);
    let resp = wire(
        &alter_configs(&f.svc, f.cluster, 0, wire(&req, 0), NOW).await,
        0,
    );
    assert_eq!(resp.responses[0].error_code, 42);
}

#[tokio::test]
async fn incremental_alter_configs_ops() {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let f = fixture().await;
    create(
        &f,
        7,
        vec![creatable("t", 1, &[("retention.ms", Some("10"))])],
    )
    .await;
    let op = |k: &str, code: i8, v: Option<&str>| {
        AlterableConfig::default()
            .with_name(s(k))
            .with_config_operation(code)
            .with_value(v.map(s))
    };
    let res = |n: &str, ops: Vec<AlterableConfig>| {
        AlterConfigsResource::default()
            .with_resource_type(resource_type::TOPIC)
            .with_resource_name(s(n))
            .with_configs(ops)
    };
    let call = |req: IncrementalAlterConfigsRequest| {
        let f = &f;
        async move {
            let req = wire(&req, 1);
            wire(
                &incremental_alter_configs(&f.svc, f.cluster, 1, req, NOW).await,
                1,
            )
        }
    };
    let resp = call(
        IncrementalAlterConfigsRequest::default().with_resources(vec![res(
            "t",
            vec![
                op("retention.ms", 1, None),
                op("max.message.bytes", 0, Some("2048")),
            ],
        )]),
    )
    .await;
    assert_eq!(resp.responses[0].error_code, 0);
    let stored = f.store_topic("t").await;
    assert_eq!(stored.configs.len(), 1);
    assert_eq!(stored.configs["max.message.bytes"], "2048");
    assert_eq!(
        f.svc
            .lookup(f.cluster, "t")
            .await
            .unwrap()
            .unwrap()
            .limits
            .max_message_bytes,
        2048
    );

    let resp = call(
        IncrementalAlterConfigsRequest::default().with_resources(vec![res(
            "t",
            vec![op("cleanup.policy", 2, Some("compact"))],
        )]),
    )
    .await;
    assert_eq!(resp.responses[0].error_code, 40);
    assert!(msg(&resp.responses[0].error_message).contains("compaction is not supported yet"));

    let resp = call(
        IncrementalAlterConfigsRequest::default()
            .with_resources(vec![res("t", vec![op("retention.ms", 9, Some("1"))])]),
    )
    .await;
    assert_eq!(resp.responses[0].error_code, 42);
    assert!(msg(&resp.responses[0].error_message).contains("unknown config operation 9"));

    let resp = call(
        IncrementalAlterConfigsRequest::default()
            .with_validate_only(true)
            .with_resources(vec![res("t", vec![op("retention.ms", 0, Some("5"))])]),
    )
    .await;
    assert_eq!(resp.responses[0].error_code, 0);
    assert!(!f
        .store_topic("t")
        .await
        .configs
        .contains_key("retention.ms"));
}

impl Fixture {
    async fn store_topic(&self, n: &str) -> fjord_metadata::Topic {
        self.store
            .get_topic(self.cluster, n)
            .await
            .unwrap()
            .unwrap()
    }
}
