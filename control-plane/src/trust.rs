//! Role trust policies (IAM's `AssumeRolePolicyDocument`): who may assume a role.
//!
//! A trust policy is a resource-based policy on the role. Supported, as IAM writes them:
//! `Version`, `Id`, `Statement` (one object or an array); per statement `Sid`, `Effect`
//! (`Allow`/`Deny`), `Principal` as `{"AWS": <one or more>}` where each entry is a 12-digit
//! account id, `arn:aws:iam::<account>:root`, or the ARN of a user or role
//! (`arn:aws:iam::<account>:user/<name>`, `…:role/<name>`), and `Action` or `NotAction` (`sts:`
//! actions, wildcards allowed). Refused with an error naming the statement and field rather
//! than ignored: `Condition` (not evaluated, so ignoring it would widen an Allow), `NotPrincipal`,
//! `Resource`/`NotResource` (IAM refuses them in trust policies: the resource is the role),
//! `Service`/`Federated` principals (Fjord has neither), and the `*` principal (a role anyone of
//! any tenant could try to assume is never what a tenant of a shared service means).
//!
//! How AssumeRole uses it ([`TrustPolicy::evaluate`] together with the caller's identity
//! policies, see [`crate::sts`]), as IAM decides:
//! - an explicit Deny in either the trust policy or the caller's policies refuses;
//! - the trust policy must allow the caller, always (a role is never assumable on the caller's
//!   policies alone);
//! - same account: a statement naming the caller's own ARN suffices on its own (like any
//!   same-account resource-based policy naming a principal); a statement naming only the
//!   account (`<id>` or `…:root`) delegates to the account's identity policies, so the caller's
//!   policies must also allow `sts:AssumeRole` on the role ARN;
//! - another account: the caller's policies must allow `sts:AssumeRole` on the role ARN as
//!   well, whatever the trust policy names.
//!
//! Storage: the store's principal records have no field for it, and a trust policy cannot go
//! into the role's inline policies (every consumer parses those as identity policies, which
//! refuse `Principal`). It is kept in a companion record of the same account named
//! `trust/<role name>` ([`record_name`]) whose one policy entry is the document. Only this
//! module reads it; keys never name it, and principal listings show only `user/` and `role/`.
//! A role without that record (created before trust policies existed) trusts its own account
//! ([`default_document`]): its assumption is decided by the caller's policies, as before.

use std::collections::BTreeMap;

use fjord_metadata::{MetadataError, MetadataStore, Principal};
use fjord_tenancy::policy::eval::glob;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// Largest trust policy, in characters other than whitespace (IAM's maximum for role trust
/// policies).
pub const MAX_TRUST_POLICY_CHARS: usize = 4096;
/// Largest raw document looked at.
const MAX_TRUST_POLICY_BYTES: usize = 32 * 1024;
/// The one policy entry of the companion record.
const DOCUMENT_KEY: &str = "AssumeRolePolicyDocument";
/// Attempts of the companion record's read-modify-write.
const WRITE_ATTEMPTS: usize = 3;
/// The action AssumeRole checks.
pub const ASSUME_ROLE: &str = "sts:AssumeRole";

/// A principal a trust statement names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trusted {
    /// Every principal of the account whose identity policies allow it (`<id>`, `…:root`).
    Account(String),
    /// One user or role, by IAM ARN.
    Principal(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Actions {
    Only(Vec<String>),
    Except(Vec<String>),
}

impl Actions {
    fn matches(&self, action: &str) -> bool {
        match self {
            Self::Only(p) => p.iter().any(|p| glob(p, action, true)),
            Self::Except(p) => !p.iter().any(|p| glob(p, action, true)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct TrustStatement {
    label: String,
    allow: bool,
    principals: Vec<Trusted>,
    actions: Actions,
}

/// A parsed, validated trust policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustPolicy {
    statements: Vec<TrustStatement>,
}

/// What a trust policy says about one caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustDecision {
    /// A statement names the caller's own ARN.
    AllowsPrincipal,
    /// A statement names the caller's account only: the caller's policies must allow too.
    AllowsAccount,
    /// A Deny statement matches the caller (its label).
    Denied(String),
    /// No statement allows the caller.
    NotTrusted,
}

/// The trust policy of a role that was given none: its own account.
pub fn default_document(account_id: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{account_id}:root")},
            "Action": ASSUME_ROLE,
        }],
    })
    .to_string()
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_principal(raw: &str) -> Result<Trusted, String> {
    if raw.contains('*') || raw.contains('?') {
        return Err(format!(
            "`{raw}`: wildcards are not allowed in a trust policy's principals"
        ));
    }
    if is_account_id(raw) {
        return Ok(Trusted::Account(raw.to_string()));
    }
    let rest = raw.strip_prefix("arn:aws:iam::").ok_or_else(|| {
        format!("`{raw}` must be an account id or an IAM ARN (arn:aws:iam::<account>:…)")
    })?;
    let (account, resource) = rest
        .split_once(':')
        .filter(|(a, _)| is_account_id(a))
        .ok_or_else(|| format!("`{raw}` must name a 12-digit account"))?;
    if resource == "root" {
        return Ok(Trusted::Account(account.to_string()));
    }
    let name = resource
        .strip_prefix("user/")
        .or_else(|| resource.strip_prefix("role/"))
        .ok_or_else(|| {
            format!("`{raw}`: only an account (…:root), a user (…:user/<name>) or a role (…:role/<name>) can be trusted")
        })?;
    crate::principals::validate_name("a trusted principal's name", name, 64)
        .map_err(|e| format!("`{raw}`: {e}"))?;
    Ok(Trusted::Principal(raw.to_string()))
}

fn strings(v: Value, field: &str) -> Result<Vec<String>, String> {
    let list = match v {
        Value::String(s) => vec![s],
        Value::Array(a) if !a.is_empty() => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(format!("{field} entries must be strings")),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(format!(
                "{field} must be a string or a non-empty array of strings"
            ))
        }
    };
    Ok(list)
}

fn parse_statement(index: usize, value: Value) -> Result<TrustStatement, String> {
    let Value::Object(mut obj) = value else {
        return Err(format!("statement {index}: must be a JSON object"));
    };
    let label = match obj.remove("Sid") {
        None => format!("statement {index}"),
        Some(Value::String(s)) => format!("statement {index} (Sid \"{s}\")"),
        Some(_) => return Err(format!("statement {index}: Sid must be a string")),
    };
    let err = |field: &str, reason: String| format!("{label}: {field}: {reason}");
    for (key, why) in [
        (
            "Condition",
            "conditions are not supported (ignoring one would widen the statement)",
        ),
        (
            "NotPrincipal",
            "not supported; name the trusted principals with Principal",
        ),
        (
            "Resource",
            "not allowed in a trust policy (the resource is the role)",
        ),
        (
            "NotResource",
            "not allowed in a trust policy (the resource is the role)",
        ),
    ] {
        if obj.contains_key(key) {
            return Err(err(key, why.to_string()));
        }
    }
    let allow = match obj.remove("Effect") {
        Some(Value::String(s)) if s == "Allow" => true,
        Some(Value::String(s)) if s == "Deny" => false,
        _ => return Err(err("Effect", "must be \"Allow\" or \"Deny\"".into())),
    };
    let principals = match obj.remove("Principal") {
        Some(Value::Object(p)) => parse_principal_block(p).map_err(|r| err("Principal", r))?,
        Some(Value::String(s)) if s == "*" => {
            return Err(err(
                "Principal",
                "`*` is not allowed: name the trusted accounts or principals".into(),
            ))
        }
        Some(_) => return Err(err("Principal", "must be {\"AWS\": …}".into())),
        None => return Err(err("Principal", "is missing".into())),
    };
    let actions = match (obj.remove("Action"), obj.remove("NotAction")) {
        (Some(v), None) => Actions::Only(strings(v, "Action").map_err(|r| err("Action", r))?),
        (None, Some(v)) => {
            Actions::Except(strings(v, "NotAction").map_err(|r| err("NotAction", r))?)
        }
        _ => {
            return Err(err(
                "Action",
                "exactly one of Action and NotAction is required".into(),
            ))
        }
    };
    let patterns = match &actions {
        Actions::Only(p) | Actions::Except(p) => p,
    };
    if let Some(bad) = patterns
        .iter()
        .find(|p| p.as_str() != "*" && !p.to_ascii_lowercase().starts_with("sts:"))
    {
        return Err(err(
            "Action",
            format!("`{bad}`: a trust policy grants sts: actions only"),
        ));
    }
    if let Some(key) = obj.keys().next() {
        return Err(err(key, "unknown element".into()));
    }
    Ok(TrustStatement {
        label,
        allow,
        principals,
        actions,
    })
}

fn parse_principal_block(mut block: Map<String, Value>) -> Result<Vec<Trusted>, String> {
    let aws = block.remove("AWS");
    if let Some(kind) = block.keys().next() {
        return Err(format!(
            "{kind} principals are not supported; Fjord roles trust AWS principals (accounts, users, roles)"
        ));
    }
    let aws = aws.ok_or_else(|| "must be {\"AWS\": …}".to_string())?;
    strings(aws, "AWS")?
        .iter()
        .map(|s| {
            if s == "*" {
                Err("`*` is not allowed: name the trusted accounts or principals".to_string())
            } else {
                parse_principal(s)
            }
        })
        .collect()
}

impl TrustPolicy {
    /// Parses and validates a trust policy document; the error names the statement and field.
    pub fn parse(json: &str) -> Result<Self, String> {
        if json.len() > MAX_TRUST_POLICY_BYTES
            || json.chars().filter(|c| !c.is_whitespace()).count() > MAX_TRUST_POLICY_CHARS
        {
            return Err(format!(
                "the trust policy is longer than {MAX_TRUST_POLICY_CHARS} characters (whitespace excluded)"
            ));
        }
        let value: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(mut top) = value else {
            return Err("the top level must be an object".into());
        };
        match top.remove("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(_) => return Err("Version must be \"2012-10-17\" or \"2008-10-17\"".into()),
        }
        if matches!(top.remove("Id"), Some(ref v) if !v.is_string()) {
            return Err("Id must be a string".into());
        }
        let statements = match top.remove("Statement") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(o @ Value::Object(_)) => vec![o],
            _ => return Err("Statement must be an object or a non-empty array".into()),
        };
        if let Some(key) = top.keys().next() {
            return Err(format!("unknown element `{key}`"));
        }
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| parse_statement(i, s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { statements })
    }

    /// What the policy says about `sts:AssumeRole` by the caller of `caller_account` whose IAM
    /// ARN is `caller_arn` (for a role session, the role's ARN: trusting a role trusts its
    /// sessions). A matching Deny wins; a statement naming the caller beats one naming only
    /// its account.
    pub fn evaluate(&self, caller_account: &str, caller_arn: &str) -> TrustDecision {
        let mut decision = TrustDecision::NotTrusted;
        for s in &self.statements {
            if !s.actions.matches(ASSUME_ROLE) {
                continue;
            }
            let by_arn = s
                .principals
                .iter()
                .any(|p| matches!(p, Trusted::Principal(a) if a == caller_arn));
            let by_account = s
                .principals
                .iter()
                .any(|p| matches!(p, Trusted::Account(a) if a == caller_account));
            if !(by_arn || by_account) {
                continue;
            }
            if !s.allow {
                return TrustDecision::Denied(s.label.clone());
            }
            if by_arn {
                decision = TrustDecision::AllowsPrincipal;
            } else if decision == TrustDecision::NotTrusted {
                decision = TrustDecision::AllowsAccount;
            }
        }
        decision
    }
}

/// Parses a trust policy given in a request (a JSON string or object); 400 when invalid.
pub fn document_from_request(value: Option<Value>) -> ApiResult<Option<String>> {
    let document = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "the trust policy must be an IAM policy document (string or object)".into(),
            ))
        }
    };
    TrustPolicy::parse(&document)
        .map_err(|e| ApiError::BadRequest(format!("invalid trust policy: {e}")))?;
    Ok(Some(document))
}

/// The companion record holding the trust policy of `role/<role_name>`.
pub fn record_name(role_name: &str) -> String {
    format!("trust/{role_name}")
}

/// The stored trust policy document of a role, or the default ([`default_document`]).
pub async fn load_document(
    store: &dyn MetadataStore,
    account_id: &str,
    role_name: &str,
) -> ApiResult<String> {
    let stored = store
        .get_principal(account_id, &record_name(role_name))
        .await?
        .and_then(|mut p| p.policies.remove(DOCUMENT_KEY));
    Ok(stored.unwrap_or_else(|| default_document(account_id)))
}

/// The role's trust policy, parsed. A stored document that no longer parses trusts nobody
/// (logged): refusing is the safe reading of a policy that cannot be understood.
pub async fn load(
    store: &dyn MetadataStore,
    account_id: &str,
    role_name: &str,
) -> ApiResult<TrustPolicy> {
    let document = load_document(store, account_id, role_name).await?;
    Ok(TrustPolicy::parse(&document).unwrap_or_else(|e| {
        tracing::error!(account_id, role = role_name, error = %e, "stored trust policy does not parse; the role trusts nobody");
        TrustPolicy {
            statements: Vec::new(),
        }
    }))
}

/// Stores `document` (already validated) as the trust policy of `role/<role_name>`.
pub async fn store_document(
    store: &dyn MetadataStore,
    account_id: &str,
    role_name: &str,
    document: &str,
    now_ms: i64,
) -> ApiResult<()> {
    let name = record_name(role_name);
    let policies = BTreeMap::from([(DOCUMENT_KEY.to_string(), document.to_string())]);
    for _ in 0..WRITE_ATTEMPTS {
        let result = match store.get_principal(account_id, &name).await? {
            None => store
                .create_principal(&Principal {
                    account_id: account_id.to_string(),
                    name: name.clone(),
                    policies: policies.clone(),
                    scram: None,
                    version: 0,
                    created_ms: now_ms,
                })
                .await
                .map(|_| ()),
            Some(mut p) => {
                p.policies = policies.clone();
                store.update_principal(&p).await.map(|_| ())
            }
        };
        match result {
            Ok(()) => return Ok(()),
            Err(MetadataError::AlreadyExists { .. } | MetadataError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict(format!(
        "the trust policy of role/{role_name} kept changing concurrently; retry"
    )))
}

/// Removes a role's trust policy record (nothing to do when there is none).
pub async fn remove(store: &dyn MetadataStore, account_id: &str, role_name: &str) -> ApiResult<()> {
    match store
        .delete_principal(account_id, &record_name(role_name))
        .await
    {
        Ok(()) | Err(MetadataError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "111122223333";
    const B: &str = "444455556666";

    fn alice() -> String {
        format!("arn:aws:iam::{A}:user/alice")
    }

    fn policy(statements: Value) -> TrustPolicy {
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
        TrustPolicy::parse(&doc.to_string()).expect("valid trust policy")
    }

    #[test]
    fn principals_by_arn_and_by_account() {
        let p = policy(serde_json::json!([
            {"Effect": "Allow", "Principal": {"AWS": alice()}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": [B]}, "Action": "sts:*"},
        ]));
        assert_eq!(p.evaluate(A, &alice()), TrustDecision::AllowsPrincipal);
        let bob = format!("arn:aws:iam::{A}:user/bob");
        assert_eq!(p.evaluate(A, &bob), TrustDecision::NotTrusted);
        let carol = format!("arn:aws:iam::{B}:user/carol");
        assert_eq!(p.evaluate(B, &carol), TrustDecision::AllowsAccount);
        // The same name in another account is another principal.
        let other_alice = format!("arn:aws:iam::{B}:user/alice");
        assert_eq!(p.evaluate(A, &other_alice), TrustDecision::NotTrusted);

        let d = TrustPolicy::parse(&default_document(A)).expect("default");
        assert_eq!(d.evaluate(A, &bob), TrustDecision::AllowsAccount);
        assert_eq!(d.evaluate(B, &carol), TrustDecision::NotTrusted);
    }

    #[test]
    fn deny_wins_and_actions_must_match() {
        let p = policy(serde_json::json!([
            {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{A}:root")}, "Action": "sts:AssumeRole"},
            {"Sid": "NoAlice", "Effect": "Deny", "Principal": {"AWS": alice()}, "Action": "sts:Assume*"},
        ]));
        assert_eq!(
            p.evaluate(A, &alice()),
            TrustDecision::Denied("statement 1 (Sid \"NoAlice\")".into())
        );
        let only_tags = policy(serde_json::json!(
            {"Effect": "Allow", "Principal": {"AWS": alice()}, "Action": "sts:TagSession"}
        ));
        assert_eq!(only_tags.evaluate(A, &alice()), TrustDecision::NotTrusted);
        let not_action = policy(serde_json::json!(
            {"Effect": "Allow", "Principal": {"AWS": alice()}, "NotAction": "sts:TagSession"}
        ));
        assert_eq!(
            not_action.evaluate(A, &alice()),
            TrustDecision::AllowsPrincipal
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let cases = [
            (
                r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}"#,
                "`*`",
            ),
            (
                r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}"#,
                "`*`",
            ),
            (
                r#"{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}"#,
                "Service",
            ),
            (
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"sts:AssumeRole"}"#,
                "wildcards",
            ),
            (
                r#"{"Effect":"Allow","Principal":{"AWS":"12345"},"Action":"sts:AssumeRole"}"#,
                "account id",
            ),
            (
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:group/g"},"Action":"sts:AssumeRole"}"#,
                "only an account",
            ),
            (
                r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kafka:*"}"#,
                "sts: actions",
            ),
            (
                r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","Resource":"*"}"#,
                "Resource",
            ),
            (
                r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","Condition":{}}"#,
                "Condition",
            ),
            (
                r#"{"Effect":"Allow","Action":"sts:AssumeRole"}"#,
                "Principal: is missing",
            ),
            (
                r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"}}"#,
                "Action",
            ),
            (
                r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","Actions":"x"}"#,
                "unknown",
            ),
        ];
        for (statement, expected) in cases {
            let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#);
            let e = TrustPolicy::parse(&doc).expect_err(statement);
            assert!(e.contains(expected), "{statement}: {e}");
        }
        assert!(TrustPolicy::parse("[]").is_err());
        assert!(TrustPolicy::parse(r#"{"Statement":[]}"#).is_err());
        let big = format!(
            r#"{{"Statement":{{"Effect":"Allow","Principal":{{"AWS":"{A}"}},"Action":"sts:AssumeRole","Sid":"{}"}}}}"#,
            "x".repeat(MAX_TRUST_POLICY_CHARS)
        );
        assert!(TrustPolicy::parse(&big).is_err());
    }
}
