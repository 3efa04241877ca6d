//! Policy evaluation: IAM's logic for identity-based policies without conditions.
//!
//! A statement applies to a request when its action patterns and its resource patterns both
//! match (a `NotAction`/`NotResource` list matches when none of its patterns do). Any applying
//! Deny refuses the request; otherwise any applying Allow grants it; otherwise it is refused by
//! default. Actions are matched case-insensitively, resources case-sensitively; in both `*`
//! matches any run of characters and `?` exactly one character. As in IAM, a resource pattern
//! that is an ARN is matched field by field (`arn:partition:service:region:account:resource`),
//! so a `*` in the account field stays in that field, while in the resource field it may span
//! `/` (and `:`); a pattern that is not a six-field ARN (such as `*`) is matched as a whole.

use std::sync::Arc;

use super::document::{Effect, Patterns, PolicyDocument, Statement};

/// A policy document with the name it is attached under (for logs).
#[derive(Clone, Debug)]
pub struct NamedPolicy {
    /// The policy's name.
    pub name: Arc<str>,
    /// The parsed document.
    pub document: PolicyDocument,
}

/// Which statement decided, for logs and audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementRef {
    /// Name of the policy holding the statement.
    pub policy: Arc<str>,
    /// Position of the statement in the policy.
    pub index: usize,
    /// The statement's `Sid`, if any.
    pub sid: Option<String>,
}

impl std::fmt::Display for StatementRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "policy {} statement {}", self.policy, self.index)?;
        if let Some(sid) = &self.sid {
            write!(f, " (Sid {sid})")?;
        }
        Ok(())
    }
}

/// The outcome of evaluating a request against a principal's policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// An Allow statement applies and no Deny does.
    Allow(StatementRef),
    /// A Deny statement applies; it wins over any Allow.
    ExplicitDeny(StatementRef),
    /// No statement applies: refused by default.
    ImplicitDeny,
}

impl Decision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow(_))
    }
}

/// Evaluates `action` on `resource` against `policies`.
pub fn evaluate(policies: &[NamedPolicy], action: &str, resource: &str) -> Decision {
    let mut allow = None;
    for (policy, index, stmt) in statements(policies) {
        if !actions_match(&stmt.actions, action) || !resources_match(&stmt.resources, resource) {
            continue;
        }
        match stmt.effect {
            Effect::Deny => return Decision::ExplicitDeny(statement_ref(policy, index, stmt)),
            Effect::Allow => {
                if allow.is_none() {
                    allow = Some(statement_ref(policy, index, stmt));
                }
            }
        }
    }
    allow.map_or(Decision::ImplicitDeny, Decision::Allow)
}

/// Evaluates `action` on "some resource whose ARN starts with `prefix`" (e.g. any group of a
/// cluster). Used for prerequisites whose resource the request does not name (ReadData needs
/// AlterGroup, but a Fetch names no group).
///
/// Allowed when some Allow statement names resources under `prefix` that no Deny covers: as
/// Kafka's `authorizeByResourceType`, an allowed resource pattern counts only if it is not
/// dominated by a denied one (a Deny pattern that matches the allowed pattern itself, read as
/// a resource name, covers every resource it names). A Deny that covers every resource under
/// `prefix` refuses outright. The approximation errs towards refusing: an Allow whose patterns
/// are all covered is refused even if IAM could find a corner they leave open.
pub fn evaluate_any(policies: &[NamedPolicy], action: &str, prefix: &str) -> Decision {
    let applying: Vec<_> = statements(policies)
        .filter(|(_, _, stmt)| actions_match(&stmt.actions, action))
        .collect();
    let denies: Vec<_> = applying
        .iter()
        .filter(|(_, _, stmt)| stmt.effect == Effect::Deny)
        .collect();
    if let Some((policy, index, stmt)) = denies
        .iter()
        .find(|(_, _, stmt)| resources_match_prefix(&stmt.resources, prefix).1)
    {
        return Decision::ExplicitDeny(statement_ref(policy, *index, stmt));
    }
    let mut covered_by = None;
    for (policy, index, stmt) in applying
        .iter()
        .filter(|(_, _, s)| s.effect == Effect::Allow)
    {
        let open = match &stmt.resources {
            Patterns::Only(patterns) => patterns
                .iter()
                .filter(|p| resource_glob_prefix(p, prefix).0)
                .any(|p| {
                    match denies
                        .iter()
                        .find(|(_, _, deny)| resources_match(&deny.resources, p))
                    {
                        Some((dp, di, ds)) => {
                            covered_by.get_or_insert_with(|| statement_ref(dp, *di, ds));
                            false
                        }
                        None => true,
                    }
                }),
            // A NotResource Allow leaves something under the prefix open unless it excludes
            // it all; no Deny covers all of the prefix (checked above).
            Patterns::Except(_) => resources_match_prefix(&stmt.resources, prefix).0,
        };
        if open {
            return Decision::Allow(statement_ref(policy, *index, stmt));
        }
    }
    covered_by.map_or(Decision::ImplicitDeny, Decision::ExplicitDeny)
}

fn statements(policies: &[NamedPolicy]) -> impl Iterator<Item = (&NamedPolicy, usize, &Statement)> {
    policies.iter().flat_map(|p| {
        p.document
            .statements
            .iter()
            .enumerate()
            .map(move |(i, s)| (p, i, s))
    })
}

fn statement_ref(policy: &NamedPolicy, index: usize, stmt: &Statement) -> StatementRef {
    StatementRef {
        policy: policy.name.clone(),
        index,
        sid: stmt.sid.clone(),
    }
}

fn actions_match(p: &Patterns, action: &str) -> bool {
    match p {
        Patterns::Only(v) => v.iter().any(|pat| glob(pat, action, true)),
        Patterns::Except(v) => !v.iter().any(|pat| glob(pat, action, true)),
    }
}

fn resources_match(p: &Patterns, resource: &str) -> bool {
    match p {
        Patterns::Only(v) => v.iter().any(|pat| resource_glob(pat, resource)),
        Patterns::Except(v) => !v.iter().any(|pat| resource_glob(pat, resource)),
    }
}

/// Splits an ARN into its six fields; the last (resource) field keeps any further `:`.
fn arn_fields(s: &str) -> Option<[&str; 6]> {
    let mut it = s.splitn(6, ':');
    let f = [
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    ];
    (f[0] == "arn").then_some(f)
}

/// Matches a resource pattern against a resource ARN, field by field when the pattern is an ARN.
pub fn resource_glob(pattern: &str, resource: &str) -> bool {
    match (arn_fields(pattern), arn_fields(resource)) {
        (Some(p), Some(r)) => p.iter().zip(r.iter()).all(|(p, r)| glob(p, r, false)),
        (Some(_), None) => false,
        (None, _) => glob(pattern, resource, false),
    }
}

/// [`glob_prefix`] with the same field-by-field rule as [`resource_glob`]; `prefix` must be an
/// ARN whose resource field is the partial one.
fn resource_glob_prefix(pattern: &str, prefix: &str) -> (bool, bool) {
    match (arn_fields(pattern), arn_fields(prefix)) {
        (Some(p), Some(r)) => {
            let head = p[..5]
                .iter()
                .zip(r[..5].iter())
                .all(|(p, r)| glob(p, r, false));
            if head {
                glob_prefix(p[5], r[5])
            } else {
                (false, false)
            }
        }
        (Some(_), None) => (false, false),
        (None, _) => glob_prefix(pattern, prefix),
    }
}

/// (matches some resource under `prefix`, matches every resource under `prefix`).
fn resources_match_prefix(p: &Patterns, prefix: &str) -> (bool, bool) {
    match p {
        Patterns::Only(v) => v.iter().fold((false, false), |(some, all), pat| {
            let (s, a) = resource_glob_prefix(pat, prefix);
            (some || s, all || a)
        }),
        // NotResource matches some resource under the prefix unless one of its patterns covers
        // them all; it matches all of them only if none of its patterns can match any.
        Patterns::Except(v) => {
            let per: Vec<(bool, bool)> = v
                .iter()
                .map(|pat| resource_glob_prefix(pat, prefix))
                .collect();
            (
                !per.iter().any(|&(_, all)| all),
                !per.iter().any(|&(some, _)| some),
            )
        }
    }
}

/// Wildcard match of the whole `text` against `pattern` (`*` any run, `?` one character).
pub fn glob(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        glob_slices(
            pattern.as_bytes(),
            text.as_bytes(),
            |a, b| a == b || (case_insensitive && a.eq_ignore_ascii_case(b)),
            b'*',
            b'?',
        )
    } else {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        glob_slices(
            &p,
            &t,
            |a, b| a == b || (case_insensitive && a.to_lowercase().eq(b.to_lowercase())),
            '*',
            '?',
        )
    }
}

/// Greedy matcher with single-star backtracking: linear in practice, O(len(p)·len(t)) at worst.
fn glob_slices<T: Copy + PartialEq>(
    p: &[T],
    t: &[T],
    eq: impl Fn(&T, &T) -> bool,
    star: T,
    one: T,
) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(c) if *c == star => {
                backtrack = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == one || eq(c, &t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match backtrack {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    backtrack = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == star)
}

/// Runs `pattern` over `prefix` and reports (some non-empty continuation of the prefix can still
/// match, every continuation matches). Case-sensitive; used for resources.
fn glob_prefix(pattern: &str, prefix: &str) -> (bool, bool) {
    let p: Vec<char> = pattern.chars().collect();
    let closure = |states: &mut Vec<bool>| {
        for i in 0..p.len() {
            if states[i] && p[i] == '*' {
                states[i + 1] = true;
            }
        }
    };
    let mut states = vec![false; p.len() + 1];
    states[0] = true;
    closure(&mut states);
    for c in prefix.chars() {
        let mut next = vec![false; p.len() + 1];
        for i in 0..p.len() {
            if !states[i] {
                continue;
            }
            match p[i] {
                '*' => next[i] = true,
                pc if pc == '?' || pc == c => next[i + 1] = true,
                _ => {}
            }
        }
        states = next;
        closure(&mut states);
    }
    let live = |i: usize| states[i] && i < p.len();
    let some = (0..p.len()).any(live);
    let all = (0..p.len()).any(|i| live(i) && p[i..].iter().all(|&c| c == '*'));
    (some, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_wildcards_follow_iam() {
        let cases: &[(&str, &str, bool)] = &[
            ("kafka-cluster:*Topic", "kafka-cluster:CreateTopic", true),
            ("kafka-cluster:*Topic", "kafka-cluster:DescribeTopic", true),
            ("kafka-cluster:*Topic", "kafka-cluster:AlterTopic", true),
            ("kafka-cluster:*Topic", "kafka-cluster:DeleteTopic", true),
            (
                "kafka-cluster:*Topic",
                "kafka-cluster:DescribeTopicDynamicConfiguration",
                false,
            ),
            (
                "kafka-cluster:*Topic*",
                "kafka-cluster:DescribeTopicDynamicConfiguration",
                true,
            ),
            ("KAFKA-CLUSTER:writedata", "kafka-cluster:WriteData", true),
            ("kafka-cluster:*", "kafka-cluster:Connect", true),
            ("*", "kafka-cluster:Connect", true),
            ("kafka-cluster:Write?ata", "kafka-cluster:WriteData", true),
            (
                "kafka-cluster:Write?ata",
                "kafka-cluster:WriteDataIdempotently",
                false,
            ),
            (
                "kafka-cluster:WriteData",
                "kafka-cluster:WriteDataIdempotently",
                false,
            ),
            ("kafka:*", "kafka-cluster:Connect", false),
            ("kafka-cluster:*Group", "kafka-cluster:AlterGroup", true),
            ("kafka-cluster:Describe*", "kafka-cluster:AlterGroup", false),
        ];
        for &(p, a, want) in cases {
            assert_eq!(glob(p, a, true), want, "{p} vs {a}");
        }
    }

    #[test]
    fn resource_wildcards_are_case_sensitive_and_span_slashes() {
        let t = "arn:aws:kafka:eu-west-1:123456789012:topic/c/u-1/orders";
        let cases: &[(&str, bool)] = &[
            ("*", true),
            ("arn:aws:kafka:eu-west-1:123456789012:topic/c/*", true),
            ("arn:aws:kafka:*:123456789012:topic/*/orders", true),
            (
                "arn:aws:kafka:eu-west-1:123456789012:topic/c/u-1/ord?rs",
                true,
            ),
            (
                "arn:aws:kafka:eu-west-1:123456789012:topic/c/u-1/Orders",
                false,
            ),
            (
                "arn:aws:kafka:eu-west-1:123456789012:topic/c/u-1/order",
                false,
            ),
            (
                "arn:aws:kafka:eu-west-1:123456789012:topic/c/u-1/orders?",
                false,
            ),
            ("arn:aws:kafka:eu-west-1:123456789012:group/c/*", false),
            ("arn:aws:kafka:eu-west-1:999999999999:topic/*", false),
            ("*orders", true),
            ("*ord*s", true),
            ("arn:aws:kafka:eu-west-1:123456789012:*", true),
            ("arn:aws:kafka:eu-west-1:123456789012:topic/*/orders", true),
        ];
        for &(p, want) in cases {
            assert_eq!(resource_glob(p, t), want, "{p}");
        }
        // Field by field: a `*` in the account field does not reach into the resource field.
        let g = "arn:aws:kafka:eu-west-1:123456789012:group/c/u/a:b";
        assert!(!resource_glob("arn:aws:kafka:*:*:b", g));
        assert!(
            glob("arn:aws:kafka:*:*:b", g, false),
            "a plain glob would have matched"
        );
        assert!(resource_glob("arn:aws:kafka:*:*:group/*:b", g));
        assert!(!resource_glob(
            "arn:aws:kafka:eu-west-1:1:topic/*",
            "not-an-arn"
        ));
        // Non-ASCII names take the char path; `?` is one character, not one byte.
        assert!(glob("topic/ü?", "topic/üé", false));
        assert!(!glob("topic/?", "topic/üé", false));
        assert!(glob("T*É", "tüé", true));
    }

    fn policies(docs: &[&str]) -> Vec<NamedPolicy> {
        docs.iter()
            .enumerate()
            .map(|(i, d)| NamedPolicy {
                name: format!("p{i}").into(),
                document: PolicyDocument::parse(d).unwrap(),
            })
            .collect()
    }

    const ARN: &str = "arn:aws:kafka:r:123456789012:topic/c/u/orders";

    #[test]
    fn explicit_deny_wins_then_allow_then_default_deny() {
        let allow = r#"{"Statement":{"Sid":"A","Effect":"Allow","Action":"kafka-cluster:*","Resource":"*"}}"#;
        let deny = r#"{"Statement":[{"Effect":"Allow","Action":"kafka-cluster:Connect","Resource":"*"},
            {"Sid":"D","Effect":"Deny","Action":"kafka-cluster:WriteData","Resource":"arn:aws:kafka:*:*:topic/c/u/ord*"}]}"#;
        let ps = policies(&[allow, deny]);
        let d = evaluate(&ps, "kafka-cluster:WriteData", ARN);
        assert_eq!(
            d,
            Decision::ExplicitDeny(StatementRef {
                policy: "p1".into(),
                index: 1,
                sid: Some("D".into())
            })
        );
        assert!(!d.is_allowed());
        let a = evaluate(&ps, "kafka-cluster:ReadData", ARN);
        assert_eq!(
            a,
            Decision::Allow(StatementRef {
                policy: "p0".into(),
                index: 0,
                sid: Some("A".into())
            })
        );
        assert_eq!(a.to_owned_string(), "policy p0 statement 0 (Sid A)");
        assert_eq!(
            evaluate(&policies(&[deny]), "kafka-cluster:ReadData", ARN),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate(&[], "kafka-cluster:Connect", ARN),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn not_action_and_not_resource() {
        let doc = r#"{"Statement":[
            {"Effect":"Allow","NotAction":"kafka-cluster:Delete*","Resource":"*"},
            {"Effect":"Deny","Action":"*","NotResource":"arn:aws:kafka:r:123456789012:*"}]}"#;
        let ps = policies(&[doc]);
        assert!(evaluate(&ps, "kafka-cluster:WriteData", ARN).is_allowed());
        assert_eq!(
            evaluate(&ps, "kafka-cluster:DeleteTopic", ARN),
            Decision::ImplicitDeny
        );
        let other = "arn:aws:kafka:r:999999999999:topic/c/u/orders";
        assert!(matches!(
            evaluate(&ps, "kafka-cluster:WriteData", other),
            Decision::ExplicitDeny(_)
        ));
    }

    #[test]
    fn any_resource_under_a_prefix() {
        let prefix = "arn:aws:kafka:r:123456789012:group/c/u/";
        let cases: &[(&str, bool)] = &[
            (
                r#"{"Statement":{"Effect":"Allow","Action":"kafka-cluster:AlterGroup","Resource":"arn:aws:kafka:r:123456789012:group/c/u/app-*"}}"#,
                true,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"kafka-cluster:AlterGroup","Resource":"arn:aws:kafka:r:123456789012:group/c/u/app"}}"#,
                true,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"kafka-cluster:AlterGroup","Resource":"arn:aws:kafka:r:123456789012:group/c/other/*"}}"#,
                false,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"kafka-cluster:AlterGroup","Resource":"arn:aws:kafka:r:123456789012:group/c/u/"}}"#,
                false,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"kafka-cluster:AlterGroup","Resource":"*"}}"#,
                true,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"kafka-cluster:AlterGroup","NotResource":"arn:aws:kafka:*:*:group/*"}}"#,
                false,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"kafka-cluster:AlterGroup","NotResource":"arn:aws:kafka:*:*:group/c/u/secret"}}"#,
                true,
            ),
            // A Deny on one group does not deny "some group"; a Deny on all of them does.
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"arn:aws:kafka:r:123456789012:group/c/u/x"}]}"#,
                true,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"arn:aws:kafka:r:*:group/c/u/**"}]}"#,
                false,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","NotResource":"arn:aws:kafka:r:*:topic/*"}]}"#,
                false,
            ),
            // Allowed only on groups that are denied: nothing is left.
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:kafka:r:123456789012:group/c/u/x"},{"Effect":"Deny","Action":"kafka-cluster:AlterGroup","Resource":"arn:aws:kafka:r:123456789012:group/c/u/x"}]}"#,
                false,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:kafka:r:123456789012:group/c/u/team-*"},{"Effect":"Deny","Action":"*","Resource":"arn:aws:kafka:r:*:group/c/u/team*"}]}"#,
                false,
            ),
            // One of two allowed groups denied: the other is open.
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":["arn:aws:kafka:r:123456789012:group/c/u/x","arn:aws:kafka:r:123456789012:group/c/u/y"]},{"Effect":"Deny","Action":"*","Resource":"arn:aws:kafka:r:123456789012:group/c/u/x"}]}"#,
                true,
            ),
            // A Deny of one group inside an allowed wildcard leaves the others.
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:kafka:r:123456789012:group/c/u/*"},{"Effect":"Deny","Action":"*","Resource":"arn:aws:kafka:r:123456789012:group/c/u/x"}]}"#,
                true,
            ),
            // A Deny of another action covers nothing.
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:kafka:r:123456789012:group/c/u/x"},{"Effect":"Deny","Action":"kafka-cluster:ReadData","Resource":"*"}]}"#,
                true,
            ),
        ];
        for &(doc, want) in cases {
            let d = evaluate_any(&policies(&[doc]), "kafka-cluster:AlterGroup", prefix);
            assert_eq!(d.is_allowed(), want, "{doc}: {d:?}");
        }
    }

    trait ToOwnedString {
        fn to_owned_string(&self) -> String;
    }
    impl ToOwnedString for Decision {
        fn to_owned_string(&self) -> String {
            match self {
                Decision::Allow(s) | Decision::ExplicitDeny(s) => s.to_string(),
                Decision::ImplicitDeny => "implicit".into(),
            }
        }
    }
}
