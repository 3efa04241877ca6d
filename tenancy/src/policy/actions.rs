//! The `kafka-cluster:*` actions, their prerequisites, and which actions each Kafka API needs.
//!
//! MSK describes every action as the equivalent of one Kafka ACL (operation, resource type):
//! `DescribeTopic` = DESCRIBE TOPIC, `AlterGroup` = READ GROUP, `DeleteTopic` = DELETE TOPIC,
//! `AlterCluster` = ALTER CLUSTER, and so on. For the Kafka APIs the reference table does not list,
//! [`api_requirements`] therefore takes the ACL Kafka's own authorizer checks for that API and maps
//! it to the equivalent action (e.g. DeleteRecords checks DELETE TOPIC, hence `DeleteTopic`).

use super::arn::ResourceKind;

/// An MSK IAM action (`kafka-cluster:<Name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Connect and authenticate to the cluster.
    Connect,
    /// Alter the cluster (Kafka ALTER CLUSTER): ACLs, reassignments, leader elections.
    AlterCluster,
    /// Describe the cluster (Kafka DESCRIBE CLUSTER): ACLs, groups list, log dirs.
    DescribeCluster,
    /// Alter broker/cluster dynamic configuration (Kafka ALTER_CONFIGS CLUSTER).
    AlterClusterDynamicConfiguration,
    /// Describe broker/cluster dynamic configuration (Kafka DESCRIBE_CONFIGS CLUSTER).
    DescribeClusterDynamicConfiguration,
    /// Produce to a topic (Kafka WRITE TOPIC).
    WriteData,
    /// Produce idempotently (Kafka IDEMPOTENT_WRITE CLUSTER).
    WriteDataIdempotently,
    /// Consume from a topic (Kafka READ TOPIC).
    ReadData,
    /// Create a topic (Kafka CREATE TOPIC/CLUSTER).
    CreateTopic,
    /// Describe a topic (Kafka DESCRIBE TOPIC).
    DescribeTopic,
    /// Alter a topic, e.g. add partitions (Kafka ALTER TOPIC).
    AlterTopic,
    /// Delete a topic or its records (Kafka DELETE TOPIC).
    DeleteTopic,
    /// Describe a topic's dynamic configuration (Kafka DESCRIBE_CONFIGS TOPIC).
    DescribeTopicDynamicConfiguration,
    /// Alter a topic's dynamic configuration (Kafka ALTER_CONFIGS TOPIC).
    AlterTopicDynamicConfiguration,
    /// Join, sync, heartbeat, leave and commit in a group (Kafka READ GROUP).
    AlterGroup,
    /// Describe a group, find its coordinator, fetch its offsets (Kafka DESCRIBE GROUP).
    DescribeGroup,
    /// Delete a group or its offsets (Kafka DELETE GROUP).
    DeleteGroup,
    /// Describe a transactional id (Kafka DESCRIBE TRANSACTIONAL_ID).
    DescribeTransactionalId,
    /// Use a transactional id (Kafka WRITE TRANSACTIONAL_ID).
    AlterTransactionalId,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 19] = [
        Self::Connect,
        Self::AlterCluster,
        Self::DescribeCluster,
        Self::AlterClusterDynamicConfiguration,
        Self::DescribeClusterDynamicConfiguration,
        Self::WriteData,
        Self::WriteDataIdempotently,
        Self::ReadData,
        Self::CreateTopic,
        Self::DescribeTopic,
        Self::AlterTopic,
        Self::DeleteTopic,
        Self::DescribeTopicDynamicConfiguration,
        Self::AlterTopicDynamicConfiguration,
        Self::AlterGroup,
        Self::DescribeGroup,
        Self::DeleteGroup,
        Self::DescribeTransactionalId,
        Self::AlterTransactionalId,
    ];

    /// The IAM action name, e.g. `kafka-cluster:WriteData`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "kafka-cluster:Connect",
            Self::AlterCluster => "kafka-cluster:AlterCluster",
            Self::DescribeCluster => "kafka-cluster:DescribeCluster",
            Self::AlterClusterDynamicConfiguration => {
                "kafka-cluster:AlterClusterDynamicConfiguration"
            }
            Self::DescribeClusterDynamicConfiguration => {
                "kafka-cluster:DescribeClusterDynamicConfiguration"
            }
            Self::WriteData => "kafka-cluster:WriteData",
            Self::WriteDataIdempotently => "kafka-cluster:WriteDataIdempotently",
            Self::ReadData => "kafka-cluster:ReadData",
            Self::CreateTopic => "kafka-cluster:CreateTopic",
            Self::DescribeTopic => "kafka-cluster:DescribeTopic",
            Self::AlterTopic => "kafka-cluster:AlterTopic",
            Self::DeleteTopic => "kafka-cluster:DeleteTopic",
            Self::DescribeTopicDynamicConfiguration => {
                "kafka-cluster:DescribeTopicDynamicConfiguration"
            }
            Self::AlterTopicDynamicConfiguration => "kafka-cluster:AlterTopicDynamicConfiguration",
            Self::AlterGroup => "kafka-cluster:AlterGroup",
            Self::DescribeGroup => "kafka-cluster:DescribeGroup",
            Self::DeleteGroup => "kafka-cluster:DeleteGroup",
            Self::DescribeTransactionalId => "kafka-cluster:DescribeTransactionalId",
            Self::AlterTransactionalId => "kafka-cluster:AlterTransactionalId",
        }
    }

    /// Parses an exact action name (case-insensitive, as IAM compares actions).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
    }

    /// The kind of resource the action applies to (MSK's "required resources" column).
    pub fn resource_kind(self) -> ResourceKind {
        match self {
            Self::Connect
            | Self::AlterCluster
            | Self::DescribeCluster
            | Self::AlterClusterDynamicConfiguration
            | Self::DescribeClusterDynamicConfiguration
            | Self::WriteDataIdempotently => ResourceKind::Cluster,
            Self::WriteData
            | Self::ReadData
            | Self::CreateTopic
            | Self::DescribeTopic
            | Self::AlterTopic
            | Self::DeleteTopic
            | Self::DescribeTopicDynamicConfiguration
            | Self::AlterTopicDynamicConfiguration => ResourceKind::Topic,
            Self::AlterGroup | Self::DescribeGroup | Self::DeleteGroup => ResourceKind::Group,
            Self::DescribeTransactionalId | Self::AlterTransactionalId => {
                ResourceKind::TransactionalId
            }
        }
    }

    /// The actions MSK requires in addition to this one (the "Required actions" column of the
    /// MSK developer guide's action table), not transitively expanded. The reference lists
    /// Connect for all, DescribeTopic (+ AlterGroup) for ReadData, DescribeTopic for WriteData,
    /// AlterTopic and DeleteTopic, and DescribeGroup for AlterGroup and DeleteGroup; the guide
    /// also pairs each Alter…Configuration / AlterCluster / AlterTransactionalId with its
    /// Describe… counterpart, and WriteDataIdempotently and AlterTransactionalId with WriteData.
    pub fn direct_prerequisites(self) -> &'static [Action] {
        match self {
            Self::Connect => &[],
            Self::ReadData => &[Self::Connect, Self::DescribeTopic, Self::AlterGroup],
            Self::WriteData | Self::AlterTopic | Self::DeleteTopic => {
                &[Self::Connect, Self::DescribeTopic]
            }
            Self::AlterGroup | Self::DeleteGroup => &[Self::Connect, Self::DescribeGroup],
            Self::AlterCluster => &[Self::Connect, Self::DescribeCluster],
            Self::AlterClusterDynamicConfiguration => {
                &[Self::Connect, Self::DescribeClusterDynamicConfiguration]
            }
            Self::AlterTopicDynamicConfiguration => {
                &[Self::Connect, Self::DescribeTopicDynamicConfiguration]
            }
            Self::WriteDataIdempotently => &[Self::Connect, Self::WriteData],
            Self::AlterTransactionalId => &[
                Self::Connect,
                Self::DescribeTransactionalId,
                Self::WriteData,
            ],
            Self::DescribeCluster
            | Self::DescribeClusterDynamicConfiguration
            | Self::CreateTopic
            | Self::DescribeTopic
            | Self::DescribeTopicDynamicConfiguration
            | Self::DescribeGroup
            | Self::DescribeTransactionalId => &[Self::Connect],
        }
    }

    /// This action followed by all its prerequisites, transitively (ReadData also needs
    /// AlterGroup, which needs DescribeGroup), without duplicates.
    pub fn required_with_prerequisites(self) -> Vec<Action> {
        let mut out = vec![self];
        let mut i = 0;
        while let Some(&a) = out.get(i) {
            for &p in a.direct_prerequisites() {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
            i += 1;
        }
        out
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a [`Requirement`] of a Kafka API applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// For every resource the request names (each topic, the group, …).
    Always,
    /// Only for idempotent producers without a transactional id (Produce with a producer id,
    /// InitProducerId without a transactional id).
    Idempotent,
    /// Only when the request carries a transactional id.
    Transactional,
    /// Only when Metadata would auto-create a missing topic.
    AutoCreate,
    /// Only for TOPIC config resources (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs).
    TopicConfig,
    /// Only for BROKER / BROKER_LOGGER config resources.
    BrokerConfig,
    /// Only for a FindCoordinator key of type GROUP (0).
    GroupKey,
    /// Only for a FindCoordinator key of type TRANSACTION (1).
    TransactionKey,
    /// A listing API: when this requirement is denied the request still succeeds, but the
    /// answer only lists items the principal may describe (DescribeGroup for ListGroups,
    /// DescribeTransactionalId for ListTransactions).
    ElseFilter,
}

/// One action a Kafka API needs on one kind of resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The action to check.
    pub action: Action,
    /// Which resource of the request it is checked on.
    pub resource: ResourceKind,
    /// When the requirement applies.
    pub when: When,
}

/// A [`Requirement`] literal (a plain struct expression, so `&[…]` of them is a `'static` slice).
macro_rules! req {
    ($action:expr, $resource:expr, $when:expr) => {
        Requirement {
            action: $action,
            resource: $resource,
            when: $when,
        }
    };
}

use Action as A;
use ResourceKind::{Cluster as C, Group as G, Topic as T, TransactionalId as X};

/// What each Kafka API needs (prerequisites not expanded; [`super::PolicySet::check_all`] adds
/// them). `Some(&[])` means the API is allowed to every authenticated connection (ApiVersions,
/// SASL, telemetry); `None` means the API is not available to IAM principals at all (inter-broker
/// APIs, WriteTxnMarkers — which MSK also refuses under IAM — delegation tokens, unknown keys),
/// so the caller must refuse it.
///
/// Metadata and DescribeTopicPartitions check `DescribeTopic` per topic: an unauthorized named
/// topic is answered with TOPIC_AUTHORIZATION_FAILED, and when listing all topics the
/// unauthorized ones are left out (Kafka's behaviour).
pub fn api_requirements(api_key: i16) -> Option<&'static [Requirement]> {
    const ALWAYS: When = When::Always;
    let r: &'static [Requirement] = match api_key {
        0 => &[
            req!(A::WriteData, T, ALWAYS),
            req!(A::WriteDataIdempotently, C, When::Idempotent),
            req!(A::AlterTransactionalId, X, When::Transactional),
        ],
        1 => &[req!(A::ReadData, T, ALWAYS)],
        2 | 23 | 75 => &[req!(A::DescribeTopic, T, ALWAYS)],
        3 => &[
            req!(A::DescribeTopic, T, ALWAYS),
            req!(A::CreateTopic, T, When::AutoCreate),
        ],
        8 => &[req!(A::AlterGroup, G, ALWAYS), req!(A::ReadData, T, ALWAYS)],
        9 => &[
            req!(A::DescribeGroup, G, ALWAYS),
            req!(A::DescribeTopic, T, ALWAYS),
        ],
        10 => &[
            req!(A::DescribeGroup, G, When::GroupKey),
            req!(A::DescribeTransactionalId, X, When::TransactionKey),
        ],
        11..=14 => &[req!(A::AlterGroup, G, ALWAYS)],
        15 | 69 => &[req!(A::DescribeGroup, G, ALWAYS)],
        16 => &[req!(A::DescribeCluster, C, When::ElseFilter)],
        17 | 18 | 36 | 71 | 72 => &[],
        19 => &[req!(A::CreateTopic, T, ALWAYS)],
        // DeleteRecords: Kafka checks DELETE TOPIC.
        20 | 21 => &[req!(A::DeleteTopic, T, ALWAYS)],
        22 => &[
            req!(A::WriteDataIdempotently, C, When::Idempotent),
            req!(A::AlterTransactionalId, X, When::Transactional),
        ],
        24 => &[
            req!(A::AlterTransactionalId, X, ALWAYS),
            req!(A::WriteData, T, ALWAYS),
        ],
        25 => &[
            req!(A::AlterTransactionalId, X, ALWAYS),
            req!(A::AlterGroup, G, ALWAYS),
        ],
        26 => &[req!(A::AlterTransactionalId, X, ALWAYS)],
        28 => &[
            req!(A::AlterTransactionalId, X, ALWAYS),
            req!(A::AlterGroup, G, ALWAYS),
            req!(A::ReadData, T, ALWAYS),
        ],
        // DescribeAcls, DescribeLogDirs, ListPartitionReassignments, DescribeUserScramCredentials
        // and DescribeCluster check DESCRIBE CLUSTER.
        29 | 35 | 46 | 50 | 60 => &[req!(A::DescribeCluster, C, ALWAYS)],
        // CreateAcls, DeleteAcls, AlterReplicaLogDirs, ElectLeaders, AlterPartitionReassignments,
        // AlterUserScramCredentials and UpdateFeatures check ALTER CLUSTER.
        30 | 31 | 34 | 43 | 45 | 51 | 57 => &[req!(A::AlterCluster, C, ALWAYS)],
        32 => &[
            req!(A::DescribeTopicDynamicConfiguration, T, When::TopicConfig),
            req!(
                A::DescribeClusterDynamicConfiguration,
                C,
                When::BrokerConfig
            ),
        ],
        33 | 44 => &[
            req!(A::AlterTopicDynamicConfiguration, T, When::TopicConfig),
            req!(A::AlterClusterDynamicConfiguration, C, When::BrokerConfig),
        ],
        37 => &[req!(A::AlterTopic, T, ALWAYS)],
        42 => &[req!(A::DeleteGroup, G, ALWAYS)],
        // OffsetDelete: Kafka checks DELETE GROUP and READ TOPIC.
        47 => &[
            req!(A::DeleteGroup, G, ALWAYS),
            req!(A::ReadData, T, ALWAYS),
        ],
        // DescribeClientQuotas / AlterClientQuotas: DESCRIBE_CONFIGS / ALTER_CONFIGS CLUSTER.
        48 => &[req!(A::DescribeClusterDynamicConfiguration, C, ALWAYS)],
        49 => &[req!(A::AlterClusterDynamicConfiguration, C, ALWAYS)],
        // DescribeProducers: Kafka checks READ TOPIC.
        61 => &[req!(A::ReadData, T, ALWAYS)],
        65 => &[req!(A::DescribeTransactionalId, X, ALWAYS)],
        66 => &[req!(A::DescribeTransactionalId, X, When::ElseFilter)],
        // ConsumerGroupHeartbeat (KIP-848): READ GROUP and DESCRIBE on the subscribed topics.
        68 => &[
            req!(A::AlterGroup, G, ALWAYS),
            req!(A::DescribeTopic, T, ALWAYS),
        ],
        _ => return None,
    };
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for a in Action::ALL {
            assert!(a.as_str().starts_with("kafka-cluster:"));
            assert_eq!(Action::parse(a.as_str()), Some(a));
            assert_eq!(Action::parse(&a.as_str().to_ascii_uppercase()), Some(a));
        }
        assert_eq!(Action::parse("kafka-cluster:Nope"), None);
        assert_eq!(Action::parse("kafka:WriteData"), None);
    }

    #[test]
    fn prerequisites_follow_the_msk_table() {
        use Action::*;
        let cases: &[(Action, &[Action])] = &[
            (Connect, &[Connect]),
            (DescribeCluster, &[DescribeCluster, Connect]),
            (
                ReadData,
                &[ReadData, Connect, DescribeTopic, AlterGroup, DescribeGroup],
            ),
            (WriteData, &[WriteData, Connect, DescribeTopic]),
            (AlterTopic, &[AlterTopic, Connect, DescribeTopic]),
            (DeleteTopic, &[DeleteTopic, Connect, DescribeTopic]),
            (AlterGroup, &[AlterGroup, Connect, DescribeGroup]),
            (DeleteGroup, &[DeleteGroup, Connect, DescribeGroup]),
            (CreateTopic, &[CreateTopic, Connect]),
            (AlterCluster, &[AlterCluster, Connect, DescribeCluster]),
            (
                AlterClusterDynamicConfiguration,
                &[
                    AlterClusterDynamicConfiguration,
                    Connect,
                    DescribeClusterDynamicConfiguration,
                ],
            ),
            (
                AlterTopicDynamicConfiguration,
                &[
                    AlterTopicDynamicConfiguration,
                    Connect,
                    DescribeTopicDynamicConfiguration,
                ],
            ),
            (
                WriteDataIdempotently,
                &[WriteDataIdempotently, Connect, WriteData, DescribeTopic],
            ),
            (
                AlterTransactionalId,
                &[
                    AlterTransactionalId,
                    Connect,
                    DescribeTransactionalId,
                    WriteData,
                    DescribeTopic,
                ],
            ),
        ];
        for (action, want) in cases {
            assert_eq!(&action.required_with_prerequisites(), want, "{action}");
        }
        for a in Action::ALL {
            assert!(a.required_with_prerequisites().contains(&Connect), "{a}");
        }
    }

    #[test]
    fn resource_kinds() {
        assert_eq!(
            Action::WriteDataIdempotently.resource_kind(),
            ResourceKind::Cluster
        );
        assert_eq!(Action::ReadData.resource_kind(), ResourceKind::Topic);
        assert_eq!(Action::DeleteGroup.resource_kind(), ResourceKind::Group);
        assert_eq!(
            Action::AlterTransactionalId.resource_kind(),
            ResourceKind::TransactionalId
        );
    }

    fn actions(key: i16) -> Vec<(Action, ResourceKind, When)> {
        api_requirements(key)
            .unwrap_or_else(|| panic!("api {key} has no entry"))
            .iter()
            .map(|r| (r.action, r.resource, r.when))
            .collect()
    }

    #[test]
    fn api_table_matches_the_reference() {
        use Action::*;
        use When::*;
        type Row = (Action, ResourceKind, When);
        let cases: &[(i16, &[Row])] = &[
            (
                0,
                &[
                    (WriteData, T, Always),
                    (WriteDataIdempotently, C, Idempotent),
                    (AlterTransactionalId, X, Transactional),
                ],
            ),
            (1, &[(ReadData, T, Always)]),
            (2, &[(DescribeTopic, T, Always)]),
            (
                3,
                &[(DescribeTopic, T, Always), (CreateTopic, T, AutoCreate)],
            ),
            (8, &[(AlterGroup, G, Always), (ReadData, T, Always)]),
            (9, &[(DescribeGroup, G, Always), (DescribeTopic, T, Always)]),
            (
                10,
                &[
                    (DescribeGroup, G, GroupKey),
                    (DescribeTransactionalId, X, TransactionKey),
                ],
            ),
            (11, &[(AlterGroup, G, Always)]),
            (12, &[(AlterGroup, G, Always)]),
            (13, &[(AlterGroup, G, Always)]),
            (14, &[(AlterGroup, G, Always)]),
            (15, &[(DescribeGroup, G, Always)]),
            (16, &[(DescribeCluster, C, ElseFilter)]),
            (19, &[(CreateTopic, T, Always)]),
            (20, &[(DeleteTopic, T, Always)]),
            (21, &[(DeleteTopic, T, Always)]),
            (
                22,
                &[
                    (WriteDataIdempotently, C, Idempotent),
                    (AlterTransactionalId, X, Transactional),
                ],
            ),
            (23, &[(DescribeTopic, T, Always)]),
            (
                24,
                &[(AlterTransactionalId, X, Always), (WriteData, T, Always)],
            ),
            (
                25,
                &[(AlterTransactionalId, X, Always), (AlterGroup, G, Always)],
            ),
            (26, &[(AlterTransactionalId, X, Always)]),
            (
                28,
                &[
                    (AlterTransactionalId, X, Always),
                    (AlterGroup, G, Always),
                    (ReadData, T, Always),
                ],
            ),
            (29, &[(DescribeCluster, C, Always)]),
            (30, &[(AlterCluster, C, Always)]),
            (31, &[(AlterCluster, C, Always)]),
            (
                32,
                &[
                    (DescribeTopicDynamicConfiguration, T, TopicConfig),
                    (DescribeClusterDynamicConfiguration, C, BrokerConfig),
                ],
            ),
            (
                33,
                &[
                    (AlterTopicDynamicConfiguration, T, TopicConfig),
                    (AlterClusterDynamicConfiguration, C, BrokerConfig),
                ],
            ),
            (37, &[(AlterTopic, T, Always)]),
            (42, &[(DeleteGroup, G, Always)]),
            (
                44,
                &[
                    (AlterTopicDynamicConfiguration, T, TopicConfig),
                    (AlterClusterDynamicConfiguration, C, BrokerConfig),
                ],
            ),
            (47, &[(DeleteGroup, G, Always), (ReadData, T, Always)]),
            (60, &[(DescribeCluster, C, Always)]),
            (61, &[(ReadData, T, Always)]),
        ];
        for (key, want) in cases {
            assert_eq!(&actions(*key), want, "api key {key}");
        }
    }

    #[test]
    fn unauthenticated_and_unsupported_apis() {
        for key in [17, 18, 36] {
            assert_eq!(
                api_requirements(key),
                Some(&[][..]),
                "api {key} needs no action"
            );
        }
        // Inter-broker APIs, WriteTxnMarkers, delegation tokens and unknown keys are refused.
        for key in [4, 5, 6, 7, 27, 38, 39, 40, 41, -1, 1000] {
            assert_eq!(api_requirements(key), None, "api {key} must be refused");
        }
    }
}
