//! Tests of the [`PolicySet`] facade: whole requests with prerequisites, per Kafka API.

use uuid::Uuid;

use super::*;

fn cluster() -> ClusterRef {
    ClusterRef {
        region: "eu-west-1".into(),
        account_id: "123456789012".into(),
        name: "c1".into(),
        id: Uuid::from_u128(0x1234),
    }
}

/// A policy allowing exactly `actions` on every resource of the test cluster.
fn allow_only(actions: &[Action]) -> String {
    let list: Vec<String> = actions.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],
            "Resource":"arn:aws:kafka:eu-west-1:123456789012:*/c1/{}*"}}]}}"#,
        list.join(","),
        Uuid::from_u128(0x1234)
    )
}

fn set(docs: &[&str]) -> PolicySet {
    PolicySet::parse(
        docs.iter()
            .enumerate()
            .map(|(i, d)| (["a", "b", "c"][i], *d)),
    )
    .unwrap()
}

/// Every resource a request of `kind` would name in these tests.
fn resource(kind: ResourceKind) -> Resource<'static> {
    match kind {
        ResourceKind::Cluster => Resource::Cluster,
        ResourceKind::Topic => Resource::Topic("orders"),
        ResourceKind::Group => Resource::Group("app"),
        ResourceKind::TransactionalId => Resource::TransactionalId("tx-1"),
    }
}

/// For every Kafka API with unconditional requirements: a policy granting exactly the needed
/// actions (with prerequisites) allows the request, and removing any one of them refuses it,
/// naming that action.
#[test]
fn each_api_needs_exactly_its_actions() {
    let c = cluster();
    let mut covered = 0;
    for key in 0..=75i16 {
        let Some(reqs) = api_requirements(key) else {
            continue;
        };
        let wanted: Vec<(Action, Resource<'_>)> = reqs
            .iter()
            .filter(|r| r.when == When::Always)
            .map(|r| (r.action, resource(r.resource)))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        covered += 1;
        let mut needed: Vec<Action> = Vec::new();
        for (a, _) in &wanted {
            for p in a.required_with_prerequisites() {
                if !needed.contains(&p) {
                    needed.push(p);
                }
            }
        }
        let ok = set(&[&allow_only(&needed)]);
        assert_eq!(
            ok.check_all(&c, &wanted),
            Ok(()),
            "api {key} with {needed:?}"
        );
        for missing in &needed {
            let fewer: Vec<Action> = needed.iter().copied().filter(|a| a != missing).collect();
            let err = set(&[&allow_only(&fewer)])
                .check_all(&c, &wanted)
                .unwrap_err();
            assert_eq!(err.action, *missing, "api {key} without {missing}: {err}");
            assert_eq!(err.decision, Decision::ImplicitDeny);
            // And an explicit Deny of that action refuses it even with everything allowed.
            let deny = format!(
                r#"{{"Statement":{{"Sid":"no","Effect":"Deny","Action":"{missing}","Resource":"*"}}}}"#
            );
            let err = set(&[&allow_only(&needed), &deny])
                .check_all(&c, &wanted)
                .unwrap_err();
            assert_eq!(err.action, *missing, "api {key} denying {missing}");
            assert!(
                matches!(err.decision, Decision::ExplicitDeny(ref s) if s.sid.as_deref() == Some("no"))
            );
        }
    }
    assert!(covered >= 30, "only {covered} APIs covered");
}

#[test]
fn requested_action_reported_before_prerequisites() {
    let c = cluster();
    let ps = set(&[&allow_only(&[Action::Connect])]);
    let err = ps
        .check_all(&c, &[(Action::WriteData, Resource::Topic("t"))])
        .unwrap_err();
    assert_eq!(err.action, Action::WriteData);
    assert_eq!(err.prerequisite_of, None);
    assert_eq!(err.arn, c.topic_arn("t"));
    assert_eq!(err.error_code(), 29, "TOPIC_AUTHORIZATION_FAILED");
    assert_eq!(
        err.to_string(),
        format!(
            "not authorized to perform kafka-cluster:WriteData on {}: no policy allows it",
            c.topic_arn("t")
        )
    );
}

#[test]
fn prerequisites_are_checked_on_the_right_resource() {
    let c = cluster();
    let base = "arn:aws:kafka:eu-west-1:123456789012";
    let id = Uuid::from_u128(0x1234);
    // DescribeTopic allowed only on topic `a`: WriteData on `b` fails on the prerequisite, on b.
    let doc = format!(
        r#"{{"Statement":[
            {{"Effect":"Allow","Action":["kafka-cluster:Connect","kafka-cluster:WriteData"],"Resource":"*"}},
            {{"Effect":"Allow","Action":"kafka-cluster:DescribeTopic","Resource":"{base}:topic/c1/{id}/a"}}]}}"#
    );
    let ps = set(&[&doc]);
    assert_eq!(
        ps.check_all(&c, &[(Action::WriteData, Resource::Topic("a"))]),
        Ok(())
    );
    let err = ps
        .check_all(&c, &[(Action::WriteData, Resource::Topic("b"))])
        .unwrap_err();
    assert_eq!(
        (err.action, err.prerequisite_of),
        (Action::DescribeTopic, Some(Action::WriteData))
    );
    assert_eq!(err.arn, c.topic_arn("b"));
    assert!(
        err.to_string()
            .contains("(required by kafka-cluster:WriteData)"),
        "{err}"
    );

    // Connect is checked on the cluster ARN, whatever the requested resource.
    let no_connect = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Action":"*","Resource":"*"}},
            {{"Effect":"Deny","Action":"kafka-cluster:Connect","Resource":"{base}:cluster/*"}}]}}"#
    );
    let err = set(&[&no_connect])
        .check_all(&c, &[(Action::DescribeGroup, Resource::Group("g"))])
        .unwrap_err();
    assert_eq!(
        (err.action, err.arn.clone()),
        (Action::Connect, c.cluster_arn())
    );
}

#[test]
fn cross_kind_prerequisites_use_named_resources_or_any() {
    let c = cluster();
    let id = Uuid::from_u128(0x1234);
    let base = "arn:aws:kafka:eu-west-1:123456789012";
    // Groups allowed: only `app-*`.
    let doc = format!(
        r#"{{"Statement":[
            {{"Effect":"Allow","Action":["kafka-cluster:Connect","kafka-cluster:*Topic","kafka-cluster:ReadData"],"Resource":"*"}},
            {{"Effect":"Allow","Action":"kafka-cluster:*Group","Resource":"{base}:group/c1/{id}/app-*"}}]}}"#
    );
    let ps = set(&[&doc]);
    // A Fetch names no group: some group (app-*) is alterable, so ReadData's AlterGroup holds.
    assert_eq!(
        ps.check_all(&c, &[(Action::ReadData, Resource::Topic("t"))]),
        Ok(())
    );
    // An OffsetCommit names its group: ReadData's AlterGroup is checked on that group.
    let commit = |g| {
        [
            (Action::AlterGroup, Resource::Group(g)),
            (Action::ReadData, Resource::Topic("t")),
        ]
    };
    assert_eq!(ps.check_all(&c, &commit("app-1")), Ok(()));
    let err = ps.check_all(&c, &commit("other")).unwrap_err();
    assert_eq!(
        (err.action, err.arn.clone()),
        (Action::AlterGroup, c.group_arn("other"))
    );

    // With no group allowed at all, the Fetch fails on AlterGroup over "any group".
    let no_groups = set(&[&allow_only(&[
        Action::Connect,
        Action::ReadData,
        Action::DescribeTopic,
    ])]);
    let err = no_groups
        .check_all(&c, &[(Action::ReadData, Resource::Topic("t"))])
        .unwrap_err();
    assert_eq!(err.action, Action::AlterGroup);
    assert_eq!(err.prerequisite_of, Some(Action::ReadData));
    assert_eq!(err.arn, format!("{base}:group/c1/{id}/*"));
    assert_eq!(err.error_code(), 29, "the Fetch is refused on its topic");
}

#[test]
fn another_accounts_cluster_is_not_covered() {
    let mine = cluster();
    let theirs = ClusterRef {
        account_id: "999999999999".into(),
        ..cluster()
    };
    let ps = set(&[&allow_only(&Action::ALL)]);
    let all = [(Action::WriteData, Resource::Topic("t"))];
    assert_eq!(ps.check_all(&mine, &all), Ok(()));
    let err = ps.check_all(&theirs, &all).unwrap_err();
    assert_eq!(err.arn, theirs.topic_arn("t"));
}

#[test]
fn parse_reports_the_failing_policy_name() {
    let err = PolicySet::parse([
        (
            "good",
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        ),
        ("bad", "{}"),
    ])
    .unwrap_err();
    assert_eq!(err.0, "bad");
    assert_eq!(err.1, PolicyError::Document("Statement is missing".into()));
    assert!(PolicySet::default().check(Action::Connect, "*") == Decision::ImplicitDeny);
}

/// Random and mutated policy documents and ARNs never panic.
#[test]
fn mutated_inputs_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xa11);
    let doc = allow_only(&[Action::ReadData, Action::Connect]);
    let arn = cluster().topic_arn("orders");
    let alphabet = b"{}[]\":,*?/aA\\ \xc3\xa9$";
    for _ in 0..3000 {
        let mut d = doc.clone().into_bytes();
        let mut a = arn.clone().into_bytes();
        for target in [&mut d, &mut a] {
            for _ in 0..rng.gen_range(1..4) {
                let i = rng.gen_range(0..target.len());
                target[i] = alphabet[rng.gen_range(0..alphabet.len())];
            }
        }
        let d = String::from_utf8_lossy(&d);
        let a = String::from_utf8_lossy(&a);
        let _ = parse_arn(&a);
        if let Ok(p) = PolicyDocument::parse(&d) {
            let set = PolicySet::new(vec![NamedPolicy {
                name: "m".into(),
                document: p,
            }]);
            let _ = set.check(Action::ReadData, &a);
            let _ = set.check_all(&cluster(), &[(Action::ReadData, Resource::Topic(&a))]);
        }
    }
}

#[test]
fn remembered_decisions_stay_per_resource_and_action() {
    let c = cluster();
    let id = Uuid::from_u128(0x1234);
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
            "Action":["kafka-cluster:Connect","kafka-cluster:WriteData","kafka-cluster:DescribeTopic"],
            "Resource":["arn:aws:kafka:eu-west-1:123456789012:cluster/c1/{id}",
                        "arn:aws:kafka:eu-west-1:123456789012:topic/c1/{id}/a"]}}]}}"#
    );
    let ps = set(&[&doc]);
    for _ in 0..3 {
        // Asked repeatedly (the second answer comes from the memo): the same each time.
        assert_eq!(
            ps.check_all(&c, &[(Action::WriteData, Resource::Topic("a"))]),
            Ok(())
        );
        let refused = ps
            .check_all(&c, &[(Action::WriteData, Resource::Topic("b"))])
            .unwrap_err();
        assert_eq!(refused.arn, c.topic_arn("b"));
        let refused = ps
            .check_all(&c, &[(Action::ReadData, Resource::Topic("a"))])
            .unwrap_err();
        assert_eq!(refused.action, Action::ReadData);
    }
}
