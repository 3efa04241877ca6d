//! ACL tests: wire codes, CreateAcls validation, filters, and the authorizer rules.

use super::*;

fn acl(
    rt: ResourceType,
    name: &str,
    pt: PatternType,
    principal: &str,
    host: &str,
    op: AclOperation,
    perm: AclPermission,
) -> AclBinding {
    AclBinding {
        resource_type: rt,
        resource_name: name.into(),
        pattern_type: pt,
        principal: principal.into(),
        host: host.into(),
        operation: op,
        permission: perm,
    }
}

use AclOperation as Op;
use AclPermission::{Allow, Deny};
use PatternType::{Literal, Prefixed};
use ResourceType::{Cluster, Group, Topic, TransactionalId};

#[test]
fn wire_codes_are_kafkas() {
    let rt = [
        (ResourceType::Any, 1),
        (Topic, 2),
        (Group, 3),
        (Cluster, 4),
        (TransactionalId, 5),
    ];
    for (v, c) in rt {
        assert_eq!((v.code(), ResourceType::from_code(c)), (c, Some(v)));
    }
    let pt = [
        (PatternType::Any, 1),
        (PatternType::Match, 2),
        (Literal, 3),
        (Prefixed, 4),
    ];
    for (v, c) in pt {
        assert_eq!((v.code(), PatternType::from_code(c)), (c, Some(v)));
    }
    let ops = [
        (Op::Any, 1),
        (Op::All, 2),
        (Op::Read, 3),
        (Op::Write, 4),
        (Op::Create, 5),
        (Op::Delete, 6),
        (Op::Alter, 7),
        (Op::Describe, 8),
        (Op::ClusterAction, 9),
        (Op::DescribeConfigs, 10),
        (Op::AlterConfigs, 11),
        (Op::IdempotentWrite, 12),
        (Op::CreateTokens, 13),
        (Op::DescribeTokens, 14),
    ];
    for (v, c) in ops {
        assert_eq!((v.code(), AclOperation::from_code(c)), (c, Some(v)));
    }
    for (v, c) in [(AclPermission::Any, 1), (Deny, 2), (Allow, 3)] {
        assert_eq!((v.code(), AclPermission::from_code(c)), (c, Some(v)));
    }
    assert_eq!(Topic.authorization_failed_code(), 29);
    assert_eq!(Group.authorization_failed_code(), 30);
    assert_eq!(Cluster.authorization_failed_code(), 31);
    assert_eq!(TransactionalId.authorization_failed_code(), 53);
    assert_eq!(ResourceType::from_code(0), None);
    assert_eq!(
        ResourceType::from_code(6),
        None,
        "delegation tokens are not supported"
    );
    assert_eq!(AclOperation::from_code(15), None);
    assert_eq!(AclPermission::from_code(0), None);
}

#[test]
fn create_validation_matches_kafka() {
    let ok = AclBinding::from_wire(2, "orders", 3, "User:alice", "*", 3, 3).unwrap();
    assert_eq!(
        ok,
        acl(Topic, "orders", Literal, "User:alice", "*", Op::Read, Allow)
    );
    assert!(AclBinding::from_wire(4, "kafka-cluster", 4, "User:*", "10.0.0.1", 9, 2).is_ok());
    assert!(AclBinding::from_wire(2, "t", 3, "User:a", "::1", 2, 3).is_ok());
    type Wire<'a> = (i8, &'a str, i8, &'a str, &'a str, i8, i8);
    let cases: &[(Wire<'_>, &str)] = &[
        ((0, "t", 3, "User:a", "*", 3, 3), "Invalid resourceType 0"),
        ((1, "t", 3, "User:a", "*", 3, 3), "Invalid resourceType ANY"),
        ((2, "t", 1, "User:a", "*", 3, 3), "Invalid patternType Any"),
        (
            (2, "t", 2, "User:a", "*", 3, 3),
            "Invalid patternType Match",
        ),
        ((2, "t", 9, "User:a", "*", 3, 3), "Invalid patternType 9"),
        ((2, "t", 3, "User:a", "*", 1, 3), "Invalid operation ANY"),
        ((2, "t", 3, "User:a", "*", 0, 3), "Invalid operation 0"),
        (
            (2, "t", 3, "User:a", "*", 3, 1),
            "Invalid permissionType ANY",
        ),
        (
            (2, "", 3, "User:a", "*", 3, 3),
            "Resource name should not be empty",
        ),
        (
            (4, "other", 3, "User:a", "*", 7, 3),
            "The only valid name for the CLUSTER resource is kafka-cluster",
        ),
        (
            (2, "t", 3, "alice", "*", 3, 3),
            "Could not parse principal from `alice` (expected <type>:<name>, e.g. User:alice)",
        ),
        (
            (2, "t", 3, "User:", "*", 3, 3),
            "Could not parse principal from `User:` (expected <type>:<name>, e.g. User:alice)",
        ),
        (
            (2, "t", 3, "User:a", "host.example", 3, 3),
            "Invalid host `host.example`: expected * or an IP address",
        ),
    ];
    for &((rt, name, pt, p, h, op, perm), want) in cases {
        let err = AclBinding::from_wire(rt, name, pt, p, h, op, perm).unwrap_err();
        assert_eq!(err.to_string(), want);
        assert_eq!(err.error_code(), INVALID_REQUEST);
    }
}

#[test]
fn bindings_serialize_for_storage() {
    let a = acl(Group, "app-", Prefixed, "User:bob", "*", Op::Read, Allow);
    let json = serde_json::to_string(&a).unwrap();
    assert_eq!(serde_json::from_str::<AclBinding>(&json).unwrap(), a);
}

fn stored() -> Vec<AclBinding> {
    vec![
        acl(Topic, "orders", Literal, "User:alice", "*", Op::Read, Allow),
        acl(Topic, "*", Literal, "User:*", "*", Op::Describe, Allow),
        acl(
            Topic,
            "ord",
            Prefixed,
            "User:bob",
            "10.0.0.1",
            Op::Write,
            Deny,
        ),
        acl(Group, "app-", Prefixed, "User:alice", "*", Op::All, Allow),
        acl(
            Cluster,
            "kafka-cluster",
            Literal,
            "User:admin",
            "*",
            Op::Alter,
            Allow,
        ),
    ]
}

#[test]
fn filters_follow_kafka_semantics() {
    let acls = stored();
    let f = |rt, name: Option<&str>, pt, principal: Option<&str>, op, perm| AclBindingFilter {
        resource_type: rt,
        resource_name: name.map(str::to_string),
        pattern_type: pt,
        principal: principal.map(str::to_string),
        host: None,
        operation: op,
        permission: perm,
    };
    let which = |filter: &AclBindingFilter| -> Vec<usize> {
        acls.iter()
            .enumerate()
            .filter(|(_, a)| filter.matches(a))
            .map(|(i, _)| i)
            .collect()
    };
    use PatternType::{Any as PAny, Match};
    let any_op = Op::Any;
    let any_perm = AclPermission::Any;
    let cases: Vec<(AclBindingFilter, Vec<usize>)> = vec![
        (AclBindingFilter::any(), vec![0, 1, 2, 3, 4]),
        (f(Topic, None, PAny, None, any_op, any_perm), vec![0, 1, 2]),
        // ANY pattern type: exact name, any pattern type.
        (
            f(Topic, Some("orders"), PAny, None, any_op, any_perm),
            vec![0],
        ),
        (f(Topic, Some("ord"), PAny, None, any_op, any_perm), vec![2]),
        // MATCH: every pattern that applies to a topic called "orders".
        (
            f(Topic, Some("orders"), Match, None, any_op, any_perm),
            vec![0, 1, 2],
        ),
        // With type ANY the topic wildcard `*` also applies to a resource called "app-1".
        (
            f(
                ResourceType::Any,
                Some("app-1"),
                Match,
                None,
                any_op,
                any_perm,
            ),
            vec![1, 3],
        ),
        (
            f(Group, Some("app-1"), Match, None, any_op, any_perm),
            vec![3],
        ),
        // A concrete pattern type: exact name and type.
        (
            f(Topic, Some("orders"), Literal, None, any_op, any_perm),
            vec![0],
        ),
        (
            f(Topic, Some("orders"), Prefixed, None, any_op, any_perm),
            vec![],
        ),
        (f(Topic, None, Literal, None, any_op, any_perm), vec![0, 1]),
        // Entry filters compare exactly: `User:*` is not a wildcard here.
        (
            f(
                ResourceType::Any,
                None,
                PAny,
                Some("User:alice"),
                any_op,
                any_perm,
            ),
            vec![0, 3],
        ),
        (
            f(
                ResourceType::Any,
                None,
                PAny,
                Some("User:*"),
                any_op,
                any_perm,
            ),
            vec![1],
        ),
        (
            f(ResourceType::Any, None, PAny, None, Op::Read, any_perm),
            vec![0],
        ),
        (
            f(ResourceType::Any, None, PAny, None, any_op, Deny),
            vec![2],
        ),
    ];
    for (filter, want) in cases {
        assert_eq!(which(&filter), want, "{filter:?}");
    }
    let host = AclBindingFilter {
        host: Some("10.0.0.1".into()),
        ..AclBindingFilter::any()
    };
    assert_eq!(which(&host), vec![2]);
    assert!(AclBindingFilter::from_wire(1, None, 2, None, None, 1, 1).is_ok());
    assert_eq!(
        AclBindingFilter::from_wire(1, None, 7, None, None, 1, 1)
            .unwrap_err()
            .to_string(),
        "Invalid patternType 7"
    );
}

#[test]
fn authorizer_rules() {
    let acls = stored();
    let cases: &[(&str, &str, AclOperation, ResourceType, &str, bool)] = &[
        ("User:alice", "1.2.3.4", Op::Read, Topic, "orders", true),
        ("User:alice", "1.2.3.4", Op::Write, Topic, "orders", false),
        ("User:alice", "1.2.3.4", Op::Read, Topic, "payments", false),
        // Describe implied by Read on `orders`; and `*`/`User:*` grants Describe everywhere.
        ("User:alice", "1.2.3.4", Op::Describe, Topic, "orders", true),
        (
            "User:carol",
            "1.2.3.4",
            Op::Describe,
            Topic,
            "anything",
            true,
        ),
        ("User:carol", "1.2.3.4", Op::Read, Topic, "anything", false),
        // Prefixed group with All.
        ("User:alice", "1.2.3.4", Op::Read, Group, "app-1", true),
        ("User:alice", "1.2.3.4", Op::Delete, Group, "app-1", true),
        ("User:alice", "1.2.3.4", Op::Read, Group, "ap", false),
        ("User:alice", "1.2.3.4", Op::Read, Group, "other", false),
        // Resource types are distinct.
        (
            "User:alice",
            "1.2.3.4",
            Op::Read,
            TransactionalId,
            "orders",
            false,
        ),
        (
            "User:admin",
            "1.2.3.4",
            Op::Alter,
            Cluster,
            "kafka-cluster",
            true,
        ),
        (
            "User:admin",
            "1.2.3.4",
            Op::Describe,
            Cluster,
            "kafka-cluster",
            true,
        ),
        (
            "User:admin",
            "1.2.3.4",
            Op::AlterConfigs,
            Cluster,
            "kafka-cluster",
            false,
        ),
        // bob's Deny on Write applies from 10.0.0.1 only; Describe is still allowed there.
        ("User:bob", "10.0.0.1", Op::Write, Topic, "orders", false),
        ("User:bob", "10.0.0.1", Op::Describe, Topic, "orders", true),
        ("User:bob", "10.0.0.2", Op::Write, Topic, "orders", false),
    ];
    for &(p, h, op, rt, name, want) in cases {
        assert_eq!(
            authorize(&acls, p, h, op, rt, name),
            want,
            "{p}@{h} {op:?} {rt:?} {name}"
        );
    }
}

#[test]
fn deny_wins_and_is_not_implied() {
    let mut acls = vec![
        acl(Topic, "t", Literal, "User:bob", "*", Op::All, Allow),
        acl(Topic, "t", Literal, "User:*", "*", Op::Write, Deny),
    ];
    assert!(
        matches!(decide(&acls, "User:bob", "1.1.1.1", Op::Write, Topic, "t"), AclDecision::Denied(a) if a.operation == Op::Write)
    );
    assert!(authorize(
        &acls,
        "User:bob",
        "1.1.1.1",
        Op::Read,
        Topic,
        "t"
    ));
    // A Deny of Write does not deny Describe (only the exact operation or All is denied) …
    assert!(authorize(
        &acls,
        "User:bob",
        "1.1.1.1",
        Op::Describe,
        Topic,
        "t"
    ));
    // … but a Deny of All denies everything.
    acls.push(acl(Topic, "t", Prefixed, "User:bob", "::1", Op::All, Deny));
    assert!(!authorize(
        &acls,
        "User:bob",
        "0:0:0:0:0:0:0:1",
        Op::Read,
        Topic,
        "t"
    ));
    assert!(authorize(
        &acls,
        "User:bob",
        "127.0.0.1",
        Op::Read,
        Topic,
        "t"
    ));
    // DescribeConfigs is implied by AlterConfigs, not the other way round.
    let cfg = vec![acl(
        Topic,
        "t",
        Literal,
        "User:a",
        "*",
        Op::AlterConfigs,
        Allow,
    )];
    assert!(authorize(
        &cfg,
        "User:a",
        "h",
        Op::DescribeConfigs,
        Topic,
        "t"
    ));
    let cfg = vec![acl(
        Topic,
        "t",
        Literal,
        "User:a",
        "*",
        Op::DescribeConfigs,
        Allow,
    )];
    assert!(!authorize(
        &cfg,
        "User:a",
        "h",
        Op::AlterConfigs,
        Topic,
        "t"
    ));
    // No ACLs at all: default deny.
    assert_eq!(
        decide(&[], "User:a", "h", Op::Read, Topic, "t"),
        AclDecision::NoMatch
    );
}
