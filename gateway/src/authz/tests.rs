//! Table-driven tests of the authorization decision: each Kafka API's actions → the error
//! code its refusal carries, for IAM policies and for Kafka ACLs.
#![allow(clippy::unwrap_used)] // a failing unwrap is a failing test

use std::sync::Arc;

use fjord_tenancy::acl::AclBinding;
use fjord_tenancy::auth::PrincipalAccess;
use fjord_tenancy::policy::{api_requirements, Action, ClusterRef, PolicySet, Resource, When};

use super::*;

fn cluster() -> Arc<ClusterRef> {
    Arc::new(ClusterRef {
        region: "eu-west-1".into(),
        account_id: "123456789012".into(),
        name: "orders".into(),
        id: Uuid::from_u128(7),
    })
}

fn iam(policies: &[&str]) -> Access {
    let docs: Vec<(String, String)> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("p{i}"), (*p).to_owned()))
        .collect();
    let set = PolicySet::parse(docs.iter().map(|(n, d)| (n.as_str(), d.as_str()))).unwrap();
    Access {
        cluster: Some(cluster()),
        who: Who::Iam {
            principal: "user/alice".into(),
            access: Arc::new(PrincipalAccess {
                exists: true,
                policies: Ok(set),
                scram: None,
            }),
        },
    }
}

fn acls(bindings: &[AclBinding]) -> Access {
    Access {
        cluster: Some(cluster()),
        who: Who::Acl {
            principal: "User:bob".into(),
            host: "10.0.0.7".into(),
            acls: Arc::new(bindings.to_vec()),
        },
    }
}

fn allow(actions: &[&str]) -> String {
    let list: Vec<String> = actions
        .iter()
        .map(|a| format!("\"kafka-cluster:{a}\""))
        .collect();
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
        list.join(",")
    )
}

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

fn resource_for(kind: ResourceKind) -> Resource<'static> {
    match kind {
        ResourceKind::Cluster => Resource::Cluster,
        ResourceKind::Topic => Resource::Topic("payments"),
        ResourceKind::Group => Resource::Group("billing"),
        ResourceKind::TransactionalId => Resource::TransactionalId("tx-1"),
    }
}

/// For every Kafka API the gateway answers: the request's (action, resource) pairs pass with
/// all actions allowed, and with only Connect each pair is refused with its resource's code and
/// a message naming an action.
#[test]
fn every_api_refusal_carries_the_code_of_its_resource() {
    // (api key, the code a refusal of its first requirement carries)
    let table: &[(i16, i16)] = &[
        (0, 29),  // Produce: WriteData on the topic
        (1, 29),  // Fetch: ReadData
        (2, 29),  // ListOffsets: DescribeTopic
        (3, 29),  // Metadata: DescribeTopic
        (8, 30),  // OffsetCommit: AlterGroup on the group
        (9, 30),  // OffsetFetch: DescribeGroup
        (10, 30), // FindCoordinator (group key): DescribeGroup
        (11, 30), // JoinGroup: AlterGroup
        (12, 30), // Heartbeat
        (13, 30), // LeaveGroup
        (14, 30), // SyncGroup
        (15, 30), // DescribeGroups: DescribeGroup
        (16, 31), // ListGroups: DescribeCluster (else filter)
        (19, 29), // CreateTopics: CreateTopic
        (20, 29), // DeleteTopics: DeleteTopic
        (21, 29), // DeleteRecords: DeleteTopic
        (22, 31), // InitProducerId (idempotent): WriteDataIdempotently on the cluster
        (23, 29), // OffsetForLeaderEpoch: DescribeTopic
        (29, 31), // DescribeAcls: DescribeCluster
        (30, 31), // CreateAcls: AlterCluster
        (31, 31), // DeleteAcls: AlterCluster
        (32, 29), // DescribeConfigs (topic): DescribeTopicDynamicConfiguration
        (33, 29), // AlterConfigs (topic)
        (37, 29), // CreatePartitions: AlterTopic
        (42, 30), // DeleteGroups: DeleteGroup
        (44, 29), // IncrementalAlterConfigs (topic)
        (60, 31), // DescribeCluster
    ];
    let all = iam(&[ALLOW_ALL]);
    let connect_only = iam(&[&allow(&["Connect"])]);
    for &(key, code) in table {
        let reqs = api_requirements(key).unwrap();
        let first = reqs.first().unwrap();
        let res = resource_for(first.resource);
        assert!(all.allow(first.action, res).is_ok(), "api {key}");
        let refused = connect_only.allow(first.action, res).unwrap_err();
        assert_eq!(refused.code, code, "api {key}");
        assert!(
            refused.message.contains(first.action.as_str()),
            "api {key}: {}",
            refused.message
        );
        // With exactly the action and its prerequisites, the request passes.
        let needed: Vec<&str> = first
            .action
            .required_with_prerequisites()
            .iter()
            .map(|a| a.as_str().trim_start_matches("kafka-cluster:"))
            .collect();
        assert!(
            iam(&[&allow(&needed)]).allow(first.action, res).is_ok(),
            "api {key}"
        );
        assert!(matches!(
            first.when,
            When::Always | When::Idempotent | When::GroupKey | When::ElseFilter | When::TopicConfig
        ));
    }
}

#[test]
fn read_only_principals_consume_but_do_not_produce_and_deny_wins() {
    let read_only = allow(&[
        "Connect",
        "DescribeTopic",
        "ReadData",
        "DescribeGroup",
        "AlterGroup",
    ]);
    let a = iam(&[&read_only]);
    let t = Resource::Topic("payments");
    a.connect().unwrap();
    a.allow(Action::ReadData, t).unwrap();
    a.allow(Action::AlterGroup, Resource::Group("billing"))
        .unwrap();
    assert_eq!(a.allow(Action::WriteData, t).unwrap_err().code, 29);
    assert_eq!(a.allow(Action::CreateTopic, t).unwrap_err().code, 29);
    assert_eq!(
        a.allow(Action::WriteDataIdempotently, Resource::Cluster)
            .unwrap_err()
            .code,
        31
    );

    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kafka-cluster:ReadData","Resource":"arn:aws:kafka:eu-west-1:123456789012:topic/orders/*/payments"}]}"#;
    let denied = iam(&[ALLOW_ALL, deny]);
    let e = denied.allow(Action::ReadData, t).unwrap_err();
    assert_eq!(e.code, 29);
    assert!(e.message.contains("explicitly denied"), "{}", e.message);
    denied
        .allow(Action::ReadData, Resource::Topic("other"))
        .unwrap();

    // No Connect: nothing, starting with the login.
    let no_connect = iam(&[&allow(&["ReadData", "DescribeTopic"])]);
    assert_eq!(no_connect.connect().unwrap_err().code, 31);
    assert!(
        no_connect.allow(Action::DescribeTopic, t).is_err(),
        "Connect is a prerequisite"
    );
}

#[test]
fn principals_without_record_or_policies_are_denied_everything() {
    let none = iam(&[]);
    assert!(none.connect().is_err());
    let missing = Access {
        cluster: Some(cluster()),
        who: Who::Iam {
            principal: "user/ghost".into(),
            access: Arc::new(PrincipalAccess {
                exists: false,
                policies: Ok(PolicySet::default()),
                scram: None,
            }),
        },
    };
    let e = missing
        .allow(Action::DescribeTopic, Resource::Topic("t"))
        .unwrap_err();
    assert!(e.message.contains("does not exist"), "{}", e.message);
    let broken = Access::nobody("metadata unavailable".into());
    assert_eq!(
        broken
            .allow(Action::DescribeGroup, Resource::Group("g"))
            .unwrap_err()
            .code,
        30
    );
}

fn binding(rt: i8, name: &str, pattern: i8, principal: &str, op: i8, perm: i8) -> AclBinding {
    AclBinding::from_wire(rt, name, pattern, principal, "*", op, perm).unwrap()
}

#[test]
fn acl_principals_follow_kafka_semantics() {
    // (resource type 2 = topic, 3 = group, 4 = cluster; pattern 3 literal, 4 prefixed;
    //  op 3 read, 4 write, 5 create, 7 alter, 8 describe; perm 2 deny, 3 allow)
    assert!(
        acls(&[])
            .allow(Action::DescribeTopic, Resource::Topic("t"))
            .is_err(),
        "no ACLs: deny"
    );
    assert!(
        acls(&[]).connect().is_ok(),
        "ACL principals have no Connect action"
    );
    let a = acls(&[
        binding(2, "pay", 4, "User:bob", 3, 3),
        binding(3, "*", 3, "User:*", 3, 3),
        binding(2, "payments-secret", 3, "User:bob", 3, 2),
        binding(4, "kafka-cluster", 3, "User:bob", 5, 3),
    ]);
    a.allow(Action::ReadData, Resource::Topic("payments"))
        .unwrap();
    a.allow(Action::DescribeTopic, Resource::Topic("payments"))
        .unwrap(); // implied by Read
    a.allow(Action::AlterGroup, Resource::Group("any")).unwrap(); // Read on group, User:*
    let e = a
        .allow(Action::WriteData, Resource::Topic("payments"))
        .unwrap_err();
    assert_eq!(e.code, 29);
    assert!(e.message.contains("Write"), "{}", e.message);
    assert!(
        a.allow(Action::ReadData, Resource::Topic("payments-secret"))
            .is_err(),
        "deny wins"
    );
    assert!(
        a.allow(Action::ReadData, Resource::Topic("orders"))
            .is_err(),
        "not under the prefix"
    );
    a.allow(Action::CreateTopic, Resource::Topic("anything"))
        .unwrap(); // CREATE on the cluster
    assert_eq!(
        a.allow(Action::AlterCluster, Resource::Cluster)
            .unwrap_err()
            .code,
        31
    );
}

#[test]
fn kafka_principal_names() {
    assert_eq!(kafka_principal("user/alice"), "User:alice");
    assert_eq!(kafka_principal("User:CN=client"), "User:CN=client");
    assert_eq!(
        PrincipalKind::of(Mechanism::ScramSha512),
        PrincipalKind::Acl
    );
    assert_eq!(PrincipalKind::of(Mechanism::Plain), PrincipalKind::Iam);
}
