//! IAM policies per Kafka API, through the protocol: for every API the gateway serves that
//! needs an authorization, one request is allowed by exactly the actions it needs (its own and
//! their prerequisites, derived from the tenancy table and checked against the MSK action
//! table hard-coded below), and refused — with the Kafka error the client expects, never a
//! closed connection — when any one of them is missing or explicitly denied. Listing APIs
//! (Metadata for all topics, ListGroups, OffsetFetch for all topics) leave the item out
//! instead. Connect is checked at login.
//!
//! Every case gets its own gateway over a fresh SQLite store; its principals are created one
//! per variant, refused variants first, so that an effect (a topic created, deleted, altered)
//! can only come from the last, allowed, request.

mod env;
mod harness;
mod probes;

use std::collections::BTreeSet;

use fjord_tenancy::policy::{api_requirements, Action, When};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ListGroupsRequest, ListGroupsResponse,
};
use serde_json::json;

use env::PolicyEnv;
use harness::check_all;
use probes::Probe;

/// The topic every request names (created in each case's cluster, except by CreateTopics).
const TOPIC: &str = "payments";
/// The consumer group every group request names.
const GROUP: &str = "billing";
/// A second group the coordinator lists.
const OTHER_GROUP: &str = "audit";
/// The transactional id of the transactional requests.
const TXN: &str = "tx-1";

/// What the client sees for the resource a request is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// The error code where the client reads it for that resource (partition, topic, group,
    /// or the response).
    Code(i16),
    /// A listing answered without error; whether the item is listed.
    Listed(bool),
}

const OK: Seen = Seen::Code(0);
const TOPIC_DENIED: Seen = Seen::Code(29);
const GROUP_DENIED: Seen = Seen::Code(30);
const CLUSTER_DENIED: Seen = Seen::Code(31);
const TXN_DENIED: Seen = Seen::Code(53);
const HIDDEN: Seen = Seen::Listed(false);

/// One Kafka request and what it needs.
struct Case {
    api: ApiKey,
    probe: Probe,
    /// Which of the API's requirements in the tenancy table this request triggers.
    when: &'static [When],
    /// The complete action set the request needs, hard-coded from the MSK action table (the
    /// API's actions in ../shared/reference/msk-iam.md with the "Required actions" of the MSK
    /// developer guide), so that a wrong tenancy table fails here.
    expected: &'static [Action],
    /// The topic the request names.
    topic: &'static str,
    /// The answer with exactly `expected` allowed.
    allowed: Seen,
    /// The answer when an action is missing or denied…
    refused: Seen,
    /// … unless the action is listed here.
    refused_for: &'static [(Action, Seen)],
    /// Policies name the request's resources by their MSK ARNs (else `*`), and one more
    /// principal holds every action on other resources' ARNs…
    arns: bool,
    /// … and is answered this.
    refused_elsewhere: Seen,
}

impl Case {
    fn refusal(&self, missing: Action) -> Seen {
        self.refused_for
            .iter()
            .find(|(a, _)| *a == missing)
            .map_or(self.refused, |(_, s)| *s)
    }
}

use Action::*;

const ALWAYS: &[When] = &[When::Always];
const TOPIC_WRITE: &[Action] = &[Connect, WriteData, DescribeTopic];
const TOPIC_READ: &[Action] = &[Connect, ReadData, DescribeTopic, AlterGroup, DescribeGroup];
const TOPIC_DESCRIBE: &[Action] = &[Connect, DescribeTopic];
const GROUP_ALTER: &[Action] = &[Connect, AlterGroup, DescribeGroup];

/// A case with the common defaults: the API's `Always` requirements, the main topic, success
/// when allowed, `*` resources.
const fn case(api: ApiKey, probe: Probe, expected: &'static [Action], refused: Seen) -> Case {
    Case {
        api,
        probe,
        when: ALWAYS,
        expected,
        topic: TOPIC,
        allowed: OK,
        refused,
        refused_for: &[],
        arns: false,
        refused_elsewhere: refused,
    }
}

const fn with_arns(mut c: Case) -> Case {
    c.arns = true;
    c
}

/// Produce, Fetch and the other partition APIs, and InitProducerId.
///
/// Not served, so not covered: transactional Produce (answered INVALID_REQUEST before any
/// check; transactions are not supported yet), AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
/// TxnOffsetCommit, DescribeProducers, DescribeTransactions, ListTransactions (see
/// `every_served_api_that_needs_authorization_has_a_case`).
const DATA: &[Case] = &[
    with_arns(case(
        ApiKey::Produce,
        Probe::Produce,
        TOPIC_WRITE,
        TOPIC_DENIED,
    )),
    // Kafka (and MSK: WriteDataIdempotently requires WriteData) refuses an idempotent produce
    // as a whole with CLUSTER_AUTHORIZATION_FAILED; the gateway checks WriteDataIdempotently
    // with its prerequisites first, so a missing WriteData or DescribeTopic is reported there.
    Case {
        when: &[When::Always, When::Idempotent],
        ..case(
            ApiKey::Produce,
            Probe::ProduceIdempotent,
            &[Connect, WriteData, DescribeTopic, WriteDataIdempotently],
            CLUSTER_DENIED,
        )
    },
    // ReadData needs AlterGroup (and so DescribeGroup) on some group although a Fetch names
    // none: with ARNs, a Deny on the one allowed group would not count as "no group" (see
    // the report), so this case uses `*`.
    case(ApiKey::Fetch, Probe::Fetch, TOPIC_READ, TOPIC_DENIED),
    case(ApiKey::Fetch, Probe::FetchById, TOPIC_READ, TOPIC_DENIED),
    case(
        ApiKey::ListOffsets,
        Probe::ListOffsets,
        TOPIC_DESCRIBE,
        TOPIC_DENIED,
    ),
    with_arns(case(
        ApiKey::Metadata,
        Probe::MetadataNamed,
        TOPIC_DESCRIBE,
        TOPIC_DENIED,
    )),
    Case {
        allowed: Seen::Listed(true),
        ..case(ApiKey::Metadata, Probe::MetadataAll, TOPIC_DESCRIBE, HIDDEN)
    },
    // Auto-creation requested for a missing topic: Fjord never auto-creates (the When::AutoCreate
    // requirement never applies), so with DescribeTopic the topic is unknown, without it refused.
    Case {
        topic: "not-there",
        allowed: Seen::Code(3),
        ..case(
            ApiKey::Metadata,
            Probe::MetadataAutoCreate,
            TOPIC_DESCRIBE,
            TOPIC_DENIED,
        )
    },
    case(
        ApiKey::OffsetForLeaderEpoch,
        Probe::OffsetForLeaderEpoch,
        TOPIC_DESCRIBE,
        TOPIC_DENIED,
    ),
    // Kafka checks DELETE on the topic; MSK's equivalent is DeleteTopic.
    with_arns(case(
        ApiKey::DeleteRecords,
        Probe::DeleteRecords,
        &[Connect, DeleteTopic, DescribeTopic],
        TOPIC_DENIED,
    )),
    Case {
        when: &[When::Idempotent],
        ..case(
            ApiKey::InitProducerId,
            Probe::InitProducerIdIdempotent,
            &[Connect, WriteDataIdempotently, WriteData, DescribeTopic],
            CLUSTER_DENIED,
        )
    },
    // Allowed, it is still answered INVALID_REQUEST: transactions are not supported yet.
    Case {
        when: &[When::Transactional],
        allowed: Seen::Code(42),
        ..case(
            ApiKey::InitProducerId,
            Probe::InitProducerIdTransactional,
            &[
                Connect,
                AlterTransactionalId,
                DescribeTransactionalId,
                WriteData,
                DescribeTopic,
            ],
            TXN_DENIED,
        )
    },
];

/// The consumer-group APIs and FindCoordinator.
///
/// Not served: OffsetDelete, ConsumerGroupHeartbeat, ConsumerGroupDescribe (KIP-848).
const GROUPS: &[Case] = &[
    with_arns(Case {
        refused_for: &[(ReadData, TOPIC_DENIED), (DescribeTopic, TOPIC_DENIED)],
        ..case(
            ApiKey::OffsetCommit,
            Probe::OffsetCommit,
            &[Connect, AlterGroup, DescribeGroup, ReadData, DescribeTopic],
            GROUP_DENIED,
        )
    }),
    with_arns(Case {
        refused_for: &[(DescribeTopic, TOPIC_DENIED)],
        ..case(
            ApiKey::OffsetFetch,
            Probe::OffsetFetch,
            &[Connect, DescribeGroup, DescribeTopic],
            GROUP_DENIED,
        )
    }),
    with_arns(Case {
        refused_for: &[(DescribeTopic, TOPIC_DENIED)],
        ..case(
            ApiKey::OffsetFetch,
            Probe::OffsetFetchV7,
            &[Connect, DescribeGroup, DescribeTopic],
            GROUP_DENIED,
        )
    }),
    Case {
        allowed: Seen::Listed(true),
        refused_for: &[(DescribeTopic, HIDDEN)],
        ..case(
            ApiKey::OffsetFetch,
            Probe::OffsetFetchAll,
            &[Connect, DescribeGroup, DescribeTopic],
            GROUP_DENIED,
        )
    },
    with_arns(Case {
        when: &[When::GroupKey],
        ..case(
            ApiKey::FindCoordinator,
            Probe::FindCoordinatorGroup,
            &[Connect, DescribeGroup],
            GROUP_DENIED,
        )
    }),
    // Allowed, it is still answered INVALID_REQUEST: transactions are not supported yet.
    with_arns(Case {
        when: &[When::TransactionKey],
        allowed: Seen::Code(42),
        ..case(
            ApiKey::FindCoordinator,
            Probe::FindCoordinatorTxn,
            &[Connect, DescribeTransactionalId],
            TXN_DENIED,
        )
    }),
    with_arns(case(
        ApiKey::JoinGroup,
        Probe::JoinGroup,
        GROUP_ALTER,
        GROUP_DENIED,
    )),
    case(
        ApiKey::SyncGroup,
        Probe::SyncGroup,
        GROUP_ALTER,
        GROUP_DENIED,
    ),
    case(
        ApiKey::Heartbeat,
        Probe::Heartbeat,
        GROUP_ALTER,
        GROUP_DENIED,
    ),
    with_arns(case(
        ApiKey::LeaveGroup,
        Probe::LeaveGroup,
        GROUP_ALTER,
        GROUP_DENIED,
    )),
    with_arns(case(
        ApiKey::DescribeGroups,
        Probe::DescribeGroups,
        &[Connect, DescribeGroup],
        GROUP_DENIED,
    )),
    // Without DescribeCluster the list is filtered to the groups the principal may describe:
    // here none (see also `list_groups_without_describe_cluster_lists_describable_groups`).
    with_arns(Case {
        when: &[When::ElseFilter],
        allowed: Seen::Listed(true),
        ..case(
            ApiKey::ListGroups,
            Probe::ListGroups,
            &[Connect, DescribeCluster],
            HIDDEN,
        )
    }),
    with_arns(case(
        ApiKey::DeleteGroups,
        Probe::DeleteGroups,
        &[Connect, DeleteGroup, DescribeGroup],
        GROUP_DENIED,
    )),
];

/// Topic administration and configs.
const ADMIN: &[Case] = &[
    with_arns(Case {
        topic: "fresh",
        ..case(
            ApiKey::CreateTopics,
            Probe::CreateTopics,
            &[Connect, CreateTopic],
            TOPIC_DENIED,
        )
    }),
    with_arns(case(
        ApiKey::DeleteTopics,
        Probe::DeleteTopics,
        &[Connect, DeleteTopic, DescribeTopic],
        TOPIC_DENIED,
    )),
    // By id, a topic the principal may not describe is answered as an unknown id (Kafka's
    // answer), so that its existence is not revealed.
    with_arns(Case {
        refused_for: &[(DescribeTopic, Seen::Code(100))],
        refused_elsewhere: Seen::Code(100),
        ..case(
            ApiKey::DeleteTopics,
            Probe::DeleteTopicsById,
            &[Connect, DeleteTopic, DescribeTopic],
            TOPIC_DENIED,
        )
    }),
    with_arns(case(
        ApiKey::CreatePartitions,
        Probe::CreatePartitions,
        &[Connect, AlterTopic, DescribeTopic],
        TOPIC_DENIED,
    )),
    Case {
        when: &[When::TopicConfig],
        ..case(
            ApiKey::DescribeConfigs,
            Probe::DescribeConfigsTopic,
            &[Connect, DescribeTopicDynamicConfiguration],
            TOPIC_DENIED,
        )
    },
    with_arns(Case {
        when: &[When::BrokerConfig],
        ..case(
            ApiKey::DescribeConfigs,
            Probe::DescribeConfigsBroker,
            &[Connect, DescribeClusterDynamicConfiguration],
            CLUSTER_DENIED,
        )
    }),
    with_arns(Case {
        when: &[When::TopicConfig],
        ..case(
            ApiKey::AlterConfigs,
            Probe::AlterConfigsTopic,
            &[
                Connect,
                AlterTopicDynamicConfiguration,
                DescribeTopicDynamicConfiguration,
            ],
            TOPIC_DENIED,
        )
    }),
    // Allowed, broker configs are still read-only: POLICY_VIOLATION.
    Case {
        when: &[When::BrokerConfig],
        allowed: Seen::Code(44),
        ..case(
            ApiKey::AlterConfigs,
            Probe::AlterConfigsBroker,
            &[
                Connect,
                AlterClusterDynamicConfiguration,
                DescribeClusterDynamicConfiguration,
            ],
            CLUSTER_DENIED,
        )
    },
    Case {
        when: &[When::TopicConfig],
        ..case(
            ApiKey::IncrementalAlterConfigs,
            Probe::IncrementalAlterConfigsTopic,
            &[
                Connect,
                AlterTopicDynamicConfiguration,
                DescribeTopicDynamicConfiguration,
            ],
            TOPIC_DENIED,
        )
    },
    with_arns(Case {
        when: &[When::BrokerConfig],
        allowed: Seen::Code(44),
        ..case(
            ApiKey::IncrementalAlterConfigs,
            Probe::IncrementalAlterConfigsBroker,
            &[
                Connect,
                AlterClusterDynamicConfiguration,
                DescribeClusterDynamicConfiguration,
            ],
            CLUSTER_DENIED,
        )
    }),
];

/// DescribeCluster and the ACL APIs (for IAM principals, as MSK maps them to cluster actions).
const CLUSTER: &[Case] = &[
    with_arns(case(
        ApiKey::DescribeCluster,
        Probe::DescribeCluster,
        &[Connect, DescribeCluster],
        CLUSTER_DENIED,
    )),
    case(
        ApiKey::DescribeAcls,
        Probe::DescribeAcls,
        &[Connect, DescribeCluster],
        CLUSTER_DENIED,
    ),
    with_arns(case(
        ApiKey::CreateAcls,
        Probe::CreateAcls,
        &[Connect, AlterCluster, DescribeCluster],
        CLUSTER_DENIED,
    )),
    case(
        ApiKey::DeleteAcls,
        Probe::DeleteAcls,
        &[Connect, AlterCluster, DescribeCluster],
        CLUSTER_DENIED,
    ),
];

#[tokio::test]
async fn data_apis_need_exactly_their_actions() {
    check_all(DATA).await;
}

#[tokio::test]
async fn group_apis_need_exactly_their_actions() {
    check_all(GROUPS).await;
}

#[tokio::test]
async fn admin_apis_need_exactly_their_actions() {
    check_all(ADMIN).await;
}

#[tokio::test]
async fn cluster_apis_need_exactly_their_actions() {
    check_all(CLUSTER).await;
}

/// What ApiVersions advertises and the tenancy table are the source of the case list: an API
/// that is served and needs an action has a case here, and the APIs with requirements that
/// have none are exactly those not served.
#[tokio::test]
async fn every_served_api_that_needs_authorization_has_a_case() {
    let env = PolicyEnv::new().await;
    let mut c = env.client();
    let advertised: ApiVersionsResponse = c
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    let covered: BTreeSet<i16> = [DATA, GROUPS, ADMIN, CLUSTER]
        .iter()
        .flat_map(|cases| cases.iter().map(|c| c.api as i16))
        .collect();
    let mut needing = BTreeSet::new();
    for a in &advertised.api_keys {
        match api_requirements(a.api_key) {
            None => panic!("api {} is advertised but refused by the table", a.api_key),
            Some([]) => {}
            Some(_) => {
                needing.insert(a.api_key);
            }
        }
    }
    assert_eq!(
        needing, covered,
        "advertised APIs needing an action vs cases"
    );
    // Not served (so not covered), although the table knows them: transactions, OffsetDelete,
    // DescribeProducers, the cluster-admin APIs MSK Serverless lacks, and KIP-848's APIs.
    let unserved: BTreeSet<i16> = (0..=100)
        .filter(|k| api_requirements(*k).is_some_and(|r| !r.is_empty()))
        .filter(|k| !advertised.api_keys.iter().any(|a| a.api_key == *k))
        .collect();
    let known: BTreeSet<i16> = [
        24, 25, 26, 28, 34, 35, 43, 45, 46, 47, 48, 49, 50, 51, 57, 61, 65, 66, 68, 69, 75,
    ]
    .into();
    assert_eq!(unserved, known);
}

/// ListGroups without DescribeCluster: exactly the groups the principal may describe, by ARN.
#[tokio::test]
async fn list_groups_without_describe_cluster_lists_describable_groups() {
    let env = PolicyEnv::new().await;
    let doc = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kafka-cluster:Connect", "Resource": env.cluster.cluster_arn()},
        {"Effect": "Allow", "Action": "kafka-cluster:DescribeGroup", "Resource": env.cluster.group_arn(GROUP)},
    ]});
    let key = env.principal(0, &doc.to_string()).await;
    let (mut c, auth) = env.login(&key).await;
    assert_eq!(auth.error_code, 0, "{:?}", auth.error_message);
    let r: ListGroupsResponse = c
        .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    assert_eq!(r.error_code, 0);
    let listed: Vec<&str> = r.groups.iter().map(|g| g.group_id.as_str()).collect();
    assert_eq!(listed, vec![GROUP], "{OTHER_GROUP} is filtered out");
}

/// CreateTopics (v5+) answers a created topic's configs only to who may describe them
/// (KIP-525): with CreateTopic alone the topic is created and its configs withheld.
#[tokio::test]
async fn created_topic_configs_are_shown_only_to_who_may_describe_them() {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let env = PolicyEnv::new().await;
    let cases: [(&[Action], i16); 2] = [
        (&[Connect, CreateTopic], 29),
        (
            &[Connect, CreateTopic, DescribeTopicDynamicConfiguration],
            0,
        ),
    ];
    for (i, (actions, config_code)) in cases.into_iter().enumerate() {
        let names: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": names, "Resource": "*"},
        ]});
        let key = env.principal(i, &doc.to_string()).await;
        let (mut c, auth) = env.login(&key).await;
        assert_eq!(auth.error_code, 0, "{:?}", auth.error_message);
        let name = format!("created-{i}");
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(1000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.clone())))
                .with_num_partitions(1)
                .with_replication_factor(-1)]);
        let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req).await;
        let t = &r.topics[0];
        assert_eq!(t.error_code, 0, "{actions:?}: {:?}", t.error_message);
        assert_eq!(t.topic_config_error_code, config_code, "{actions:?}");
        assert_eq!(
            t.configs.as_ref().is_some_and(|c| !c.is_empty()),
            config_code == 0,
            "{actions:?}: {:?}",
            t.configs
        );
        assert!(
            env.store
                .get_topic(env.tenant.cluster.id, &name)
                .await
                .unwrap()
                .is_some(),
            "{name} was created"
        );
    }
}
