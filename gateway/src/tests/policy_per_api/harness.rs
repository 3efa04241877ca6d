//! Runs a [`Case`]: one principal per variant of its action set (each action missing, each
//! denied, the set on other resources' ARNs, Connect missing or denied, the exact set last),
//! each logged in and sending the case's request.

use std::collections::BTreeSet;

use fjord_tenancy::policy::{api_requirements, Action, ResourceKind, When};
use kafka_protocol::messages::ApiKey;
use serde_json::json;
use uuid::Uuid;

use super::env::PolicyEnv;
use super::{probes, Case, GROUP, TXN};

/// The actions the tenancy table says a request of `api` triggering `when` needs, with their
/// prerequisites.
pub(super) fn derived(api: ApiKey, when: &[When]) -> BTreeSet<Action> {
    let reqs = api_requirements(api as i16).unwrap_or_else(|| panic!("{api:?}: no table entry"));
    reqs.iter()
        .filter(|r| when.contains(&r.when))
        .flat_map(|r| r.action.required_with_prerequisites())
        .collect()
}

/// One principal of a case.
#[derive(Clone, Copy, Debug)]
enum Variant {
    /// The needed set minus this action.
    Missing(Action),
    /// The needed set, and a Deny of this action.
    Denied(Action),
    /// The needed set, every action but Connect on other resources' ARNs.
    Elsewhere,
    /// Exactly the needed set.
    Exact,
}

/// The resource an Allow or Deny of `action` names in `case`'s policies.
fn resource(env: &PolicyEnv, case: &Case, action: Action, elsewhere: bool) -> String {
    if !case.arns {
        return "*".into();
    }
    let c = &env.cluster;
    let other = |name: &'static str, ours: &'static str| if elsewhere { name } else { ours };
    match action.resource_kind() {
        // Connect stays on this cluster, or nothing would be checked beyond the login.
        ResourceKind::Cluster if elsewhere && action != Action::Connect => {
            let mut another = c.clone();
            another.id = Uuid::from_u128(0xD1FF);
            another.cluster_arn()
        }
        ResourceKind::Cluster => c.cluster_arn(),
        ResourceKind::Topic => c.topic_arn(other("other-topic", case.topic)),
        ResourceKind::Group => c.group_arn(other("other-group", GROUP)),
        ResourceKind::TransactionalId => c.transactional_id_arn(other("other-tx", TXN)),
    }
}

/// The policy of `v`: one Allow statement per action (so that each names its own resource).
fn policy(env: &PolicyEnv, case: &Case, needed: &BTreeSet<Action>, v: Variant) -> String {
    let elsewhere = matches!(v, Variant::Elsewhere);
    let mut statements: Vec<serde_json::Value> = needed
        .iter()
        .filter(|a| !matches!(v, Variant::Missing(m) if m == **a))
        .map(|a| {
            json!({"Effect": "Allow", "Action": a.as_str(), "Resource": resource(env, case, *a, elsewhere)})
        })
        .collect();
    if let Variant::Denied(a) = v {
        statements.push(
            json!({"Effect": "Deny", "Action": a.as_str(), "Resource": resource(env, case, a, false)}),
        );
    }
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// Runs every variant of `case`; the disagreements, described.
async fn check(case: &Case) -> Vec<String> {
    let name = format!("{:?} ({:?})", case.api, case.probe);
    let mut failures = Vec::new();
    let needed = derived(case.api, case.when);
    let expected: BTreeSet<Action> = case.expected.iter().copied().collect();
    if needed != expected {
        failures.push(format!(
            "{name}: the tenancy table gives {needed:?}, MSK's table {expected:?}"
        ));
    }
    let env = PolicyEnv::new().await;
    let mut variants: Vec<Variant> = needed
        .iter()
        .filter(|a| **a != Action::Connect)
        .flat_map(|a| [Variant::Missing(*a), Variant::Denied(*a)])
        .collect();
    if case.arns {
        variants.push(Variant::Elsewhere);
    }
    variants.extend([
        Variant::Missing(Action::Connect),
        Variant::Denied(Action::Connect),
        Variant::Exact,
    ]);
    for (i, v) in variants.into_iter().enumerate() {
        let key = env.principal(i, &policy(&env, case, &needed, v)).await;
        let (mut c, auth) = env.login(&key).await;
        if matches!(
            v,
            Variant::Missing(Action::Connect) | Variant::Denied(Action::Connect)
        ) {
            if auth.error_code != 58 {
                failures.push(format!("{name} {v:?}: login answered {}", auth.error_code));
            }
            continue;
        }
        if auth.error_code != 0 {
            failures.push(format!(
                "{name} {v:?}: login refused: {:?}",
                auth.error_message
            ));
            continue;
        }
        let want = match v {
            Variant::Exact => case.allowed,
            Variant::Missing(a) | Variant::Denied(a) => case.refusal(a),
            Variant::Elsewhere => case.refused_elsewhere,
        };
        let obs = probes::run(&env, &mut c, case).await;
        if obs.seen != want {
            failures.push(format!("{name} {v:?}: got {:?}, want {want:?}", obs.seen));
        }
        let allowed = matches!(v, Variant::Exact);
        if obs.effect.is_some_and(|done| done != allowed) {
            failures.push(format!(
                "{name} {v:?}: the request {} its effect",
                if allowed { "did not have" } else { "had" }
            ));
        }
    }
    failures
}

/// Runs `cases` and fails with every disagreement at once.
pub(super) async fn check_all(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        failures.extend(check(case).await);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
