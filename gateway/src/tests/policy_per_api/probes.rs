//! One request ("probe") per case: what the client sees for the resource the request is
//! about, and whether the request had its effect (a record written, a topic created, an offset
//! revealed, …).

use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsResource as AlterResource, AlterableConfig as AlterEntry,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncrementalResource, AlterableConfig as IncrementalEntry,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use super::super::data::produce_req;
use super::super::*;
use super::env::{gid, s, topic_name, PolicyEnv, BROKER};
use super::{Case, Seen, GROUP, TOPIC, TXN};

/// Which request a case sends.
#[derive(Clone, Copy, Debug)]
pub(super) enum Probe {
    Produce,
    ProduceIdempotent,
    Fetch,
    /// Fetch v13: the topic named by id.
    FetchById,
    ListOffsets,
    MetadataNamed,
    MetadataAll,
    MetadataAutoCreate,
    OffsetForLeaderEpoch,
    DeleteRecords,
    InitProducerIdIdempotent,
    InitProducerIdTransactional,
    OffsetCommit,
    OffsetFetch,
    OffsetFetchAll,
    /// OffsetFetch v7: one group per request, the form older clients send.
    OffsetFetchV7,
    FindCoordinatorGroup,
    FindCoordinatorTxn,
    JoinGroup,
    SyncGroup,
    Heartbeat,
    LeaveGroup,
    DescribeGroups,
    ListGroups,
    DeleteGroups,
    CreateTopics,
    DeleteTopics,
    DeleteTopicsById,
    CreatePartitions,
    DescribeConfigsTopic,
    DescribeConfigsBroker,
    AlterConfigsTopic,
    AlterConfigsBroker,
    IncrementalAlterConfigsTopic,
    IncrementalAlterConfigsBroker,
    DescribeCluster,
    DescribeAcls,
    CreateAcls,
    DeleteAcls,
}

/// What one probe observed.
pub(super) struct Obs {
    /// The answer for the resource the case is about.
    pub seen: Seen,
    /// Whether the request had its effect; `None` when the API has none to observe.
    pub effect: Option<bool>,
}

fn seen(code: i16, effect: Option<bool>) -> Obs {
    Obs {
        seen: Seen::Code(code),
        effect,
    }
}

/// Sends a request and decodes its answer, which must come (possibly throttled: the topic-admin
/// quota throttles, it does not refuse); a closed connection fails the test.
async fn ask<M: Encodable, R: Decodable>(c: &mut Client, api: ApiKey, v: i16, body: &M) -> R {
    let frame = match c.send(api, v, body).await {
        Outcome::Respond(f) | Outcome::Throttled { frame: Some(f), .. } => f,
        other => panic!("{api:?} v{v}: the gateway did not answer: {other:?}"),
    };
    let (corr, mut b) = parse_response(api, v, &frame);
    assert_eq!(corr, c.corr);
    R::decode(&mut b, v).unwrap()
}

/// A v2 batch of one record from idempotent producer 9, epoch 0, sequence 0.
fn idempotent_batch() -> Bytes {
    use kafka_protocol::records::*;
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: 9,
        producer_epoch: 0,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: NOW,
        key: None,
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// The error code of `name`'s first partition in an OffsetCommit answer.
fn commit_code(resp: &OffsetCommitResponse, name: &str) -> i16 {
    resp.topics
        .iter()
        .find(|t| t.name.as_str() == name)
        .and_then(|t| t.partitions.first())
        .map_or(-1, |p| p.error_code)
}

/// Whether the coordinator received a request of `api` whose decoded form satisfies `names`,
/// after the first `since` group requests.
fn received<R: Decodable>(
    env: &PolicyEnv,
    since: usize,
    api: ApiKey,
    v: i16,
    names: impl Fn(&R) -> bool,
) -> bool {
    env.node
        .received(api, since)
        .iter()
        .any(|b| names(&R::decode(&mut b.clone(), v).unwrap()))
}

fn create_acl() -> AclCreation {
    AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(s(TOPIC))
        .with_resource_pattern_type(3)
        .with_principal(s("User:alice"))
        .with_host(s("*"))
        .with_operation(4)
        .with_permission_type(3)
}

/// Sends `case`'s request on `c`.
pub(super) async fn run(env: &PolicyEnv, c: &mut Client, case: &Case) -> Obs {
    let topic = case.topic;
    let group = || gid(GROUP);
    // Group requests the coordinator had before this probe.
    let since = env.node.groups.lock().len();
    match case.probe {
        Probe::Produce | Probe::ProduceIdempotent => {
            let records = match case.probe {
                Probe::Produce => batch(1),
                _ => idempotent_batch(),
            };
            let before = env.node.data.applied.lock().len();
            let r: ProduceResponse = ask(
                c,
                ApiKey::Produce,
                9,
                &produce_req(topic, &[(0, records)], -1),
            )
            .await;
            let written = env.node.data.applied.lock().len() > before;
            seen(
                r.responses[0].partition_responses[0].error_code,
                Some(written),
            )
        }
        Probe::Fetch => {
            let before = env.node.data_calls("fetch");
            let req = FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20)])]);
            let r: FetchResponse = ask(c, ApiKey::Fetch, 12, &req).await;
            assert_eq!(r.error_code, 0, "a Fetch is refused per partition");
            let read = env.node.data_calls("fetch") > before;
            seen(r.responses[0].partitions[0].error_code, Some(read))
        }
        Probe::FetchById => {
            let id = env.topic(topic).await.expect("the topic exists").id;
            let before = env.node.data_calls("fetch");
            let req = FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_topics(vec![FetchTopic::default()
                    .with_topic_id(id)
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20)])]);
            let r: FetchResponse = ask(c, ApiKey::Fetch, 13, &req).await;
            assert_eq!(r.error_code, 0, "a Fetch is refused per partition");
            assert_eq!(r.responses[0].topic_id, id);
            let read = env.node.data_calls("fetch") > before;
            seen(r.responses[0].partitions[0].error_code, Some(read))
        }
        Probe::ListOffsets => {
            let before = env.node.data_calls("list_offsets");
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_current_leader_epoch(-1)
                        .with_timestamp(-1)])]);
            let r: ListOffsetsResponse = ask(c, ApiKey::ListOffsets, 7, &req).await;
            let listed = env.node.data_calls("list_offsets") > before;
            seen(r.topics[0].partitions[0].error_code, Some(listed))
        }
        Probe::OffsetForLeaderEpoch => {
            let before = env.node.data_calls("list_offsets");
            let req = OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![OffsetForLeaderTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(vec![OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(-1)
                        .with_leader_epoch(0)])]);
            let r: OffsetForLeaderEpochResponse =
                ask(c, ApiKey::OffsetForLeaderEpoch, 4, &req).await;
            let asked = env.node.data_calls("list_offsets") > before;
            seen(r.topics[0].partitions[0].error_code, Some(asked))
        }
        Probe::MetadataNamed | Probe::MetadataAutoCreate => {
            let auto = matches!(case.probe, Probe::MetadataAutoCreate);
            let req = MetadataRequest::default()
                .with_allow_auto_topic_creation(auto)
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
                ]));
            let r: MetadataResponse = ask(c, ApiKey::Metadata, 12, &req).await;
            let t = &r.topics[0];
            if auto {
                // Fjord never auto-creates (MSK Serverless has auto.create.topics.enable off).
                assert!(env.topic(topic).await.is_none(), "Metadata created {topic}");
                return seen(t.error_code, None);
            }
            // Partitions and the topic id are revealed only to who may describe the topic.
            let revealed = !t.partitions.is_empty() || !t.topic_id.is_nil();
            seen(t.error_code, Some(revealed))
        }
        Probe::MetadataAll => {
            let req = MetadataRequest::default()
                .with_allow_auto_topic_creation(false)
                .with_topics(None);
            let r: MetadataResponse = ask(c, ApiKey::Metadata, 12, &req).await;
            let names: Vec<String> = r
                .topics
                .iter()
                .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
                .collect();
            assert!(r.topics.iter().all(|t| t.error_code == 0), "{:?}", r.topics);
            Obs {
                seen: Seen::Listed(names.iter().any(|n| n == topic)),
                effect: None,
            }
        }
        Probe::DeleteRecords => {
            let before = env.node.data_calls("delete_records");
            let req = DeleteRecordsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![DeleteRecordsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(0)])]);
            let r: DeleteRecordsResponse = ask(c, ApiKey::DeleteRecords, 2, &req).await;
            let deleted = env.node.data_calls("delete_records") > before;
            seen(r.topics[0].partitions[0].error_code, Some(deleted))
        }
        Probe::InitProducerIdIdempotent | Probe::InitProducerIdTransactional => {
            let txn = matches!(case.probe, Probe::InitProducerIdTransactional);
            let req = InitProducerIdRequest::default()
                .with_transactional_id(txn.then(|| TransactionalId(s(TXN))))
                .with_transaction_timeout_ms(if txn { 60_000 } else { -1 })
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let r: InitProducerIdResponse = ask(c, ApiKey::InitProducerId, 4, &req).await;
            let effect = (!txn).then_some(r.producer_id.0 >= 0);
            seen(r.error_code, effect)
        }
        Probe::OffsetCommit => {
            let req = OffsetCommitRequest::default()
                .with_group_id(group())
                .with_generation_id_or_member_epoch(-1)
                .with_member_id(s(""))
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5)
                        .with_committed_leader_epoch(-1)])]);
            let r: OffsetCommitResponse = ask(c, ApiKey::OffsetCommit, 8, &req).await;
            let committed = received(
                env,
                since,
                ApiKey::OffsetCommit,
                8,
                |r: &OffsetCommitRequest| r.topics.iter().any(|t| t.name.as_str() == topic),
            );
            seen(commit_code(&r, topic), Some(committed))
        }
        Probe::OffsetFetch | Probe::OffsetFetchAll => {
            let all = matches!(case.probe, Probe::OffsetFetchAll);
            let topics = (!all).then(|| {
                vec![OffsetFetchRequestTopics::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(vec![0])]
            });
            let req =
                OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(group())
                    .with_topics(topics)]);
            let r: OffsetFetchResponse = ask(c, ApiKey::OffsetFetch, 8, &req).await;
            let g = &r.groups[0];
            assert_eq!(g.group_id.as_str(), GROUP);
            if g.error_code != 0 {
                assert!(g.topics.is_empty(), "a refused group reveals no offsets");
                return seen(g.error_code, None);
            }
            let t = g.topics.iter().find(|t| t.name.as_str() == topic);
            if all {
                return Obs {
                    seen: Seen::Listed(t.is_some()),
                    effect: None,
                };
            }
            let p = &t.expect("a named topic is always answered").partitions[0];
            seen(p.error_code, Some(p.committed_offset == 5))
        }
        Probe::OffsetFetchV7 => {
            let req = OffsetFetchRequest::default()
                .with_group_id(group())
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(vec![0])]));
            let r: OffsetFetchResponse = ask(c, ApiKey::OffsetFetch, 7, &req).await;
            let p = &r.topics[0].partitions[0];
            // A refused group is reported in the response and in every partition.
            if r.error_code != 0 {
                assert_eq!(p.error_code, r.error_code);
                assert_eq!(p.committed_offset, -1);
                return seen(r.error_code, None);
            }
            seen(p.error_code, Some(p.committed_offset == 5))
        }
        Probe::FindCoordinatorGroup | Probe::FindCoordinatorTxn => {
            let (key_type, key) = match case.probe {
                Probe::FindCoordinatorGroup => (0, GROUP),
                _ => (1, TXN),
            };
            let req = FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![s(key)]);
            let r: FindCoordinatorResponse = ask(c, ApiKey::FindCoordinator, 4, &req).await;
            // Transaction coordinators do not exist yet: none is found even when allowed.
            let found = (key_type == 0).then_some(r.coordinators[0].node_id.0 == BROKER);
            seen(r.coordinators[0].error_code, found)
        }
        Probe::JoinGroup => {
            let req = JoinGroupRequest::default()
                .with_group_id(group())
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(s(""))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::new())]);
            let r: JoinGroupResponse = ask(c, ApiKey::JoinGroup, 7, &req).await;
            let joined = !env.node.received(ApiKey::JoinGroup, since).is_empty();
            seen(r.error_code, Some(joined))
        }
        Probe::SyncGroup => {
            let req = SyncGroupRequest::default()
                .with_group_id(group())
                .with_generation_id(1)
                .with_member_id(s("m-1"))
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")));
            let r: SyncGroupResponse = ask(c, ApiKey::SyncGroup, 5, &req).await;
            let synced = !env.node.received(ApiKey::SyncGroup, since).is_empty();
            seen(r.error_code, Some(synced))
        }
        Probe::Heartbeat => {
            let req = HeartbeatRequest::default()
                .with_group_id(group())
                .with_generation_id(1)
                .with_member_id(s("m-1"));
            let r: HeartbeatResponse = ask(c, ApiKey::Heartbeat, 4, &req).await;
            let beat = !env.node.received(ApiKey::Heartbeat, since).is_empty();
            seen(r.error_code, Some(beat))
        }
        Probe::LeaveGroup => {
            let req = LeaveGroupRequest::default()
                .with_group_id(group())
                .with_members(vec![MemberIdentity::default().with_member_id(s("m-1"))]);
            let r: LeaveGroupResponse = ask(c, ApiKey::LeaveGroup, 4, &req).await;
            let left = !env.node.received(ApiKey::LeaveGroup, since).is_empty();
            seen(r.error_code, Some(left))
        }
        Probe::DescribeGroups => {
            let req = DescribeGroupsRequest::default().with_groups(vec![group()]);
            let r: DescribeGroupsResponse = ask(c, ApiKey::DescribeGroups, 5, &req).await;
            assert_eq!(r.groups.len(), 1, "{:?}", r.groups);
            let g = &r.groups[0];
            assert_eq!(g.group_id.as_str(), GROUP);
            seen(g.error_code, Some(g.group_state.as_str() == "Stable"))
        }
        Probe::ListGroups => {
            let r: ListGroupsResponse =
                ask(c, ApiKey::ListGroups, 4, &ListGroupsRequest::default()).await;
            assert_eq!(r.error_code, 0, "ListGroups filters, it does not refuse");
            Obs {
                seen: Seen::Listed(r.groups.iter().any(|g| g.group_id.as_str() == GROUP)),
                effect: None,
            }
        }
        Probe::DeleteGroups => {
            let req = DeleteGroupsRequest::default().with_groups_names(vec![group()]);
            let r: DeleteGroupsResponse = ask(c, ApiKey::DeleteGroups, 2, &req).await;
            assert_eq!(r.results.len(), 1, "{:?}", r.results);
            let deleted = received(
                env,
                since,
                ApiKey::DeleteGroups,
                2,
                |r: &DeleteGroupsRequest| r.groups_names.iter().any(|g| g.as_str() == GROUP),
            );
            seen(r.results[0].error_code, Some(deleted))
        }
        Probe::CreateTopics => {
            let req = CreateTopicsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![CreatableTopic::default()
                    .with_name(topic_name(topic))
                    .with_num_partitions(1)
                    .with_replication_factor(-1)]);
            let r: CreateTopicsResponse = ask(c, ApiKey::CreateTopics, 7, &req).await;
            let created = env.topic(topic).await.is_some();
            seen(r.topics[0].error_code, Some(created))
        }
        Probe::DeleteTopics => {
            let req = DeleteTopicsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![
                    DeleteTopicState::default().with_name(Some(topic_name(topic)))
                ]);
            let r: DeleteTopicsResponse = ask(c, ApiKey::DeleteTopics, 6, &req).await;
            let deleted = env.topic(topic).await.is_none();
            seen(r.responses[0].error_code, Some(deleted))
        }
        Probe::DeleteTopicsById => {
            let id = env
                .topic(topic)
                .await
                .expect("the topic exists until deleted")
                .id;
            let req = DeleteTopicsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![DeleteTopicState::default()
                    .with_name(None)
                    .with_topic_id(id)]);
            let r: DeleteTopicsResponse = ask(c, ApiKey::DeleteTopics, 6, &req).await;
            let t = &r.responses[0];
            assert_eq!(t.topic_id, id);
            if t.error_code != 0 {
                assert_eq!(t.name, None, "a refusal by id does not name the topic");
            }
            let deleted = env.topic(topic).await.is_none();
            seen(t.error_code, Some(deleted))
        }
        Probe::CreatePartitions => {
            let req = CreatePartitionsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(topic_name(topic))
                    .with_count(2)
                    .with_assignments(None)]);
            let r: CreatePartitionsResponse = ask(c, ApiKey::CreatePartitions, 3, &req).await;
            let grown = env.topic(topic).await.is_some_and(|t| t.partitions == 2);
            seen(r.results[0].error_code, Some(grown))
        }
        Probe::DescribeConfigsTopic | Probe::DescribeConfigsBroker => {
            let (kind, name) = match case.probe {
                Probe::DescribeConfigsTopic => (2, topic.to_owned()),
                _ => (4, BROKER.to_string()),
            };
            let req = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(kind)
                    .with_resource_name(s(&name))
                    .with_configuration_keys(None),
            ]);
            let r: DescribeConfigsResponse = ask(c, ApiKey::DescribeConfigs, 4, &req).await;
            let revealed = !r.results[0].configs.is_empty();
            seen(r.results[0].error_code, Some(revealed))
        }
        Probe::AlterConfigsTopic | Probe::AlterConfigsBroker => {
            let broker = matches!(case.probe, Probe::AlterConfigsBroker);
            let (kind, name, key) = if broker {
                (4, BROKER.to_string(), "log.retention.ms")
            } else {
                (2, topic.to_owned(), "retention.ms")
            };
            let req = AlterConfigsRequest::default().with_resources(vec![AlterResource::default()
                .with_resource_type(kind)
                .with_resource_name(s(&name))
                .with_configs(vec![AlterEntry::default()
                    .with_name(s(key))
                    .with_value(Some(s("3600000")))])]);
            let r: AlterConfigsResponse = ask(c, ApiKey::AlterConfigs, 2, &req).await;
            let effect = match broker {
                true => None,
                false => Some(retention_set(env, topic).await),
            };
            seen(r.responses[0].error_code, effect)
        }
        Probe::IncrementalAlterConfigsTopic | Probe::IncrementalAlterConfigsBroker => {
            let broker = matches!(case.probe, Probe::IncrementalAlterConfigsBroker);
            let (kind, name, key) = if broker {
                (4, BROKER.to_string(), "log.retention.ms")
            } else {
                (2, topic.to_owned(), "retention.ms")
            };
            let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
                IncrementalResource::default()
                    .with_resource_type(kind)
                    .with_resource_name(s(&name))
                    .with_configs(vec![IncrementalEntry::default()
                        .with_name(s(key))
                        .with_config_operation(0)
                        .with_value(Some(s("3600000")))]),
            ]);
            let r: IncrementalAlterConfigsResponse =
                ask(c, ApiKey::IncrementalAlterConfigs, 1, &req).await;
            let effect = match broker {
                true => None,
                false => Some(retention_set(env, topic).await),
            };
            seen(r.responses[0].error_code, effect)
        }
        Probe::DescribeCluster => {
            let r: DescribeClusterResponse = ask(
                c,
                ApiKey::DescribeCluster,
                1,
                &DescribeClusterRequest::default(),
            )
            .await;
            seen(r.error_code, Some(!r.brokers.is_empty()))
        }
        Probe::DescribeAcls => {
            let req = DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_resource_name_filter(None)
                .with_pattern_type_filter(1)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1);
            let r: DescribeAclsResponse = ask(c, ApiKey::DescribeAcls, 3, &req).await;
            seen(r.error_code, None)
        }
        Probe::CreateAcls => {
            let req = CreateAclsRequest::default().with_creations(vec![create_acl()]);
            let r: CreateAclsResponse = ask(c, ApiKey::CreateAcls, 3, &req).await;
            let stored = !env
                .store
                .list_acls(env.tenant.cluster.id)
                .await
                .unwrap()
                .is_empty();
            seen(r.results[0].error_code, Some(stored))
        }
        Probe::DeleteAcls => {
            let req = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some(s(TOPIC)))
                .with_pattern_type_filter(1)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1)]);
            let r: DeleteAclsResponse = ask(c, ApiKey::DeleteAcls, 3, &req).await;
            seen(r.filter_results[0].error_code, None)
        }
    }
}

async fn retention_set(env: &PolicyEnv, topic: &str) -> bool {
    env.topic(topic)
        .await
        .is_some_and(|t| t.configs.get("retention.ms").map(String::as_str) == Some("3600000"))
}
