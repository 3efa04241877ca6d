//! IAM JSON policy documents: parsing and validation.
//!
//! Supported: `Version` (`2012-10-17` or `2008-10-17`), `Id`, and `Statement` as one object or
//! an array; per statement `Sid`, `Effect` (`Allow`/`Deny`), `Action` or `NotAction`, `Resource`
//! or `NotResource`, each a string or an array of strings.
//!
//! Refused, with an error naming the statement and field, rather than ignored:
//! - `Condition`: a condition narrows an Allow or a Deny. Ignoring it would widen every Allow
//!   (granting what the author meant to restrict) and widen every Deny (refusing what was meant to
//!   stay allowed), so a policy with conditions is not accepted until conditions are evaluated.
//! - `Principal` / `NotPrincipal`: they belong in resource policies; IAM refuses them in identity
//!   policies too.
//! - Policy variables (`${aws:username}`) in a resource: not substituted, so they would never
//!   match what their author meant.
//! - Unknown keys: a typo such as `Actions` would otherwise silently drop a statement's meaning.

use serde_json::{Map, Value};

/// Largest policy accepted, counted as IAM does for managed policies: characters other than
/// whitespace.
pub const MAX_POLICY_CHARS: usize = 6144;
/// Largest raw document looked at, whitespace included, so huge inputs are refused before parsing.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// Allow or Deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The statement grants what it matches.
    Allow,
    /// The statement refuses what it matches, whatever else allows it.
    Deny,
}

/// A list of patterns, used positively (`Action`, `Resource`) or negatively (`NotAction`,
/// `NotResource`: the statement matches everything except what the patterns match).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Patterns {
    /// `Action` / `Resource`.
    Only(Vec<String>),
    /// `NotAction` / `NotResource`.
    Except(Vec<String>),
}

/// One policy statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The optional statement id, for logs.
    pub sid: Option<String>,
    /// Allow or Deny.
    pub effect: Effect,
    /// Action patterns (`kafka-cluster:*Topic`), matched case-insensitively.
    pub actions: Patterns,
    /// Resource patterns (ARNs with `*`/`?`), matched case-sensitively.
    pub resources: Patterns,
}

/// A parsed and validated IAM policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDocument {
    /// The `Version` element (`2008-10-17` when absent, as IAM assumes).
    pub version: String,
    /// The optional `Id` element.
    pub id: Option<String>,
    /// The statements, in document order.
    pub statements: Vec<Statement>,
}

/// Why a policy document was refused. The text names the statement and field at fault and is
/// suitable for an API error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Over [`MAX_POLICY_CHARS`] non-whitespace characters (or [`MAX_POLICY_BYTES`] bytes).
    #[error("policy document is too large: {chars} characters excluding whitespace, the limit is {MAX_POLICY_CHARS}")]
    TooLarge {
        /// Size counted (non-whitespace characters, or bytes when over the raw limit).
        chars: usize,
    },
    /// Not JSON, or not a JSON object.
    #[error("policy document is not a valid JSON object: {0}")]
    Json(String),
    /// A document-level problem.
    #[error("policy document: {0}")]
    Document(String),
    /// A problem in one statement.
    #[error("policy statement {index}{}: {field}: {reason}", sid_suffix(.sid))]
    Statement {
        /// Position of the statement (0-based).
        index: usize,
        /// Its `Sid`, if it has one.
        sid: Option<String>,
        /// The offending field (`Effect`, `Action`, `Condition`, …).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn sid_suffix(sid: &Option<String>) -> String {
    match sid {
        Some(s) => format!(" (Sid \"{s}\")"),
        None => String::new(),
    }
}

impl PolicyDocument {
    /// Parses and validates a policy document.
    pub fn parse(json: &str) -> Result<Self, PolicyError> {
        if json.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge { chars: json.len() });
        }
        let chars = json.chars().filter(|c| !c.is_whitespace()).count();
        if chars > MAX_POLICY_CHARS {
            return Err(PolicyError::TooLarge { chars });
        }
        let value: Value =
            serde_json::from_str(json).map_err(|e| PolicyError::Json(e.to_string()))?;
        let Value::Object(mut top) = value else {
            return Err(PolicyError::Json("the top level must be an object".into()));
        };
        let version = match top.remove("Version") {
            None => "2008-10-17".to_string(),
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => v,
            Some(other) => {
                return Err(PolicyError::Document(format!(
                    "Version must be \"2012-10-17\" or \"2008-10-17\", got {other}"
                )))
            }
        };
        let id = match top.remove("Id") {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(PolicyError::Document("Id must be a string".into())),
        };
        let raw_statements = match top.remove("Statement") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(Value::Object(o)) => vec![Value::Object(o)],
            Some(Value::Array(_)) => {
                return Err(PolicyError::Document("Statement must not be empty".into()))
            }
            Some(_) => {
                return Err(PolicyError::Document(
                    "Statement must be an object or an array of objects".into(),
                ))
            }
            None => return Err(PolicyError::Document("Statement is missing".into())),
        };
        if let Some(key) = top.keys().next() {
            return Err(PolicyError::Document(format!("unknown element `{key}`")));
        }
        let statements = raw_statements
            .into_iter()
            .enumerate()
            .map(|(i, v)| parse_statement(i, v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            version,
            id,
            statements,
        })
    }
}

fn parse_statement(index: usize, value: Value) -> Result<Statement, PolicyError> {
    let Value::Object(mut obj) = value else {
        return Err(PolicyError::Statement {
            index,
            sid: None,
            field: "Statement".into(),
            reason: "each statement must be a JSON object".into(),
        });
    };
    let sid_value = obj.remove("Sid");
    let sid = match &sid_value {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let err = |field: &str, reason: String| PolicyError::Statement {
        index,
        sid: sid.clone(),
        field: field.to_string(),
        reason,
    };
    if matches!(sid_value, Some(ref v) if !v.is_string()) {
        return Err(err("Sid", "must be a string".into()));
    }
    if obj.contains_key("Condition") {
        return Err(err(
            "Condition",
            "conditions are not supported; remove the Condition or split the statement \
             (ignoring it would change what the statement allows or denies)"
                .into(),
        ));
    }
    for key in ["Principal", "NotPrincipal"] {
        if obj.contains_key(key) {
            return Err(err(key, "not allowed in an identity-based policy".into()));
        }
    }
    let effect = match obj.remove("Effect") {
        Some(Value::String(s)) if s == "Allow" => Effect::Allow,
        Some(Value::String(s)) if s == "Deny" => Effect::Deny,
        Some(other) => {
            return Err(err(
                "Effect",
                format!("must be \"Allow\" or \"Deny\", got {other}"),
            ))
        }
        None => return Err(err("Effect", "is missing".into())),
    };
    let actions = either(&mut obj, "Action", "NotAction").map_err(|(f, r)| err(f, r))?;
    let resources = either(&mut obj, "Resource", "NotResource").map_err(|(f, r)| err(f, r))?;
    for p in patterns(&actions) {
        validate_action(p).map_err(|r| err(field_name(&actions, "Action"), r))?;
    }
    for p in patterns(&resources) {
        if p.contains("${") {
            return Err(err(
                field_name(&resources, "Resource"),
                format!("policy variables are not supported: `{p}`"),
            ));
        }
        // IAM accepts `*` or an ARN; a five-field `arn:…` would be ambiguous under field-by-field
        // matching, so it is refused rather than guessed at.
        if p != "*" && !(p.starts_with("arn:") && p.splitn(6, ':').count() == 6) {
            return Err(err(
                field_name(&resources, "Resource"),
                format!(
                    "`{p}` must be `*` or an ARN (arn:partition:service:region:account:resource)"
                ),
            ));
        }
    }
    if let Some(key) = obj.keys().next() {
        return Err(err(key, "unknown statement element".into()));
    }
    Ok(Statement {
        sid,
        effect,
        actions,
        resources,
    })
}

fn patterns(p: &Patterns) -> &[String] {
    match p {
        Patterns::Only(v) | Patterns::Except(v) => v,
    }
}

fn field_name(p: &Patterns, positive: &'static str) -> &'static str {
    match (p, positive) {
        (Patterns::Only(_), f) => f,
        (Patterns::Except(_), "Action") => "NotAction",
        (Patterns::Except(_), _) => "NotResource",
    }
}

/// Reads exactly one of `pos` / `neg` as a string or a non-empty array of strings.
fn either(
    obj: &mut Map<String, Value>,
    pos: &'static str,
    neg: &'static str,
) -> Result<Patterns, (&'static str, String)> {
    match (obj.remove(pos), obj.remove(neg)) {
        (Some(_), Some(_)) => Err((pos, format!("a statement cannot have both {pos} and {neg}"))),
        (None, None) => Err((pos, format!("one of {pos} or {neg} is required"))),
        (Some(v), None) => string_list(v).map(Patterns::Only).map_err(|r| (pos, r)),
        (None, Some(v)) => string_list(v).map(Patterns::Except).map_err(|r| (neg, r)),
    }
}

fn string_list(v: Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) if items.is_empty() => Err("must not be an empty list".into()),
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                other => Err(format!("list entries must be strings, got {other}")),
            })
            .collect(),
        other => Err(format!(
            "must be a string or a list of strings, got {other}"
        )),
    }
}

/// IAM requires `*` or `<service>:<pattern>`, with a service prefix of letters, digits and `-`.
fn validate_action(p: &str) -> Result<(), String> {
    if p == "*" {
        return Ok(());
    }
    let Some((service, name)) = p.split_once(':') else {
        return Err(format!("`{p}` must be `*` or `<service>:<action>`"));
    };
    let service_ok = !service.is_empty()
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?');
    if service_ok && name_ok {
        Ok(())
    } else {
        Err(format!("`{p}` is not a valid action pattern"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_statement_and_string_fields() {
        let doc = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow",
                "Action":"kafka-cluster:Connect","Resource":"*"}}"#,
        )
        .unwrap();
        assert_eq!(doc.version, "2012-10-17");
        assert_eq!(doc.id, None);
        assert_eq!(
            doc.statements,
            vec![Statement {
                sid: None,
                effect: Effect::Allow,
                actions: Patterns::Only(vec!["kafka-cluster:Connect".into()]),
                resources: Patterns::Only(vec!["*".into()]),
            }]
        );
    }

    #[test]
    fn parses_arrays_negations_sid_and_default_version() {
        let doc = PolicyDocument::parse(
            r#"{"Id":"p1","Statement":[
                {"Sid":"a","Effect":"Deny","NotAction":["kafka-cluster:Read*","kafka-cluster:Connect"],
                 "NotResource":["arn:aws:kafka:*:*:topic/*"]},
                {"Effect":"Allow","Action":["*"],"Resource":["arn:aws:kafka:r:1:cluster/c/*","*"]}]}"#,
        )
        .unwrap();
        assert_eq!(doc.version, "2008-10-17");
        assert_eq!(doc.id.as_deref(), Some("p1"));
        assert_eq!(doc.statements.len(), 2);
        let s0 = &doc.statements[0];
        assert_eq!(s0.sid.as_deref(), Some("a"));
        assert_eq!(s0.effect, Effect::Deny);
        assert_eq!(
            s0.actions,
            Patterns::Except(vec![
                "kafka-cluster:Read*".into(),
                "kafka-cluster:Connect".into()
            ])
        );
        assert_eq!(
            s0.resources,
            Patterns::Except(vec!["arn:aws:kafka:*:*:topic/*".into()])
        );
        assert_eq!(
            doc.statements[1].resources,
            Patterns::Only(vec!["arn:aws:kafka:r:1:cluster/c/*".into(), "*".into()])
        );
    }

    /// (document, expected error text) — each names the statement and field.
    #[test]
    fn refusals_name_statement_and_field() {
        let stmt = |body: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#);
        let ok = r#""Effect":"Allow","Action":"kafka-cluster:Connect","Resource":"*""#;
        let cases: Vec<(String, &str)> = vec![
            ("[1]".into(), "policy document is not a valid JSON object: the top level must be an object"),
            ("{".into(), "policy document is not a valid JSON object: EOF while parsing an object at line 1 column 1"),
            (r#"{"Version":"2020-01-01","Statement":[]}"#.into(), "policy document: Version must be \"2012-10-17\" or \"2008-10-17\", got \"2020-01-01\""),
            (r#"{"Version":"2012-10-17"}"#.into(), "policy document: Statement is missing"),
            (r#"{"Statement":[]}"#.into(), "policy document: Statement must not be empty"),
            (r#"{"Statement":"x"}"#.into(), "policy document: Statement must be an object or an array of objects"),
            (format!(r#"{{"Statement":{{{ok}}},"Extra":1}}"#), "policy document: unknown element `Extra`"),
            (stmt("7"), "policy statement 0: Statement: each statement must be a JSON object"),
            (stmt(&format!(r#"{{{ok},"Condition":{{"Bool":{{"aws:SecureTransport":"true"}}}}}}"#)),
             "policy statement 0: Condition: conditions are not supported; remove the Condition or split the statement (ignoring it would change what the statement allows or denies)"),
            (stmt(&format!(r#"{{"Sid":"s1",{ok},"Principal":"*"}}"#)), "policy statement 0 (Sid \"s1\"): Principal: not allowed in an identity-based policy"),
            (stmt(r#"{"Effect":"allow","Action":"*","Resource":"*"}"#), "policy statement 0: Effect: must be \"Allow\" or \"Deny\", got \"allow\""),
            (stmt(r#"{"Action":"*","Resource":"*"}"#), "policy statement 0: Effect: is missing"),
            (stmt(r#"{"Effect":"Allow","Resource":"*"}"#), "policy statement 0: Action: one of Action or NotAction is required"),
            (stmt(r#"{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}"#), "policy statement 0: Action: a statement cannot have both Action and NotAction"),
            (stmt(r#"{"Effect":"Allow","Action":"*"}"#), "policy statement 0: Resource: one of Resource or NotResource is required"),
            (stmt(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#), "policy statement 0: Action: must not be an empty list"),
            (stmt(r#"{"Effect":"Allow","Action":[1],"Resource":"*"}"#), "policy statement 0: Action: list entries must be strings, got 1"),
            (stmt(r#"{"Effect":"Allow","NotResource":{},"Action":"*"}"#), "policy statement 0: NotResource: must be a string or a list of strings, got {}"),
            (stmt(r#"{"Effect":"Allow","Action":"WriteData","Resource":"*"}"#), "policy statement 0: Action: `WriteData` must be `*` or `<service>:<action>`"),
            (stmt(r#"{"Effect":"Allow","NotAction":"kafka-cluster:Write Data","Resource":"*"}"#), "policy statement 0: NotAction: `kafka-cluster:Write Data` is not a valid action pattern"),
            (stmt(r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:kafka:*:*:topic/${aws:username}"}"#), "policy statement 0: Resource: policy variables are not supported: `arn:aws:kafka:*:*:topic/${aws:username}`"),
            (stmt(r#"{"Effect":"Allow","Action":"*","Resource":""}"#), "policy statement 0: Resource: `` must be `*` or an ARN (arn:partition:service:region:account:resource)"),
            (stmt(r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:kafka:*"}"#), "policy statement 0: Resource: `arn:aws:kafka:*` must be `*` or an ARN (arn:partition:service:region:account:resource)"),
            (stmt(r#"{"Effect":"Allow","Action":"*","NotResource":"topic/*"}"#), "policy statement 0: NotResource: `topic/*` must be `*` or an ARN (arn:partition:service:region:account:resource)"),
            (stmt(&format!(r#"{{{ok}}},{{{ok},"Actions":"x"}}"#)), "policy statement 1: Actions: unknown statement element"),
            (stmt(r#"{"Sid":3,"Effect":"Allow","Action":"*","Resource":"*"}"#), "policy statement 0: Sid: must be a string"),
        ];
        for (doc, want) in cases {
            let got = PolicyDocument::parse(&doc).unwrap_err().to_string();
            assert_eq!(got, want, "for {doc}");
        }
    }

    #[test]
    fn size_limit_counts_non_whitespace_characters() {
        // A document padded with whitespace past 6144 bytes is fine …
        let base = r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
        let padded = format!("{base}{}", " ".repeat(7000));
        assert!(PolicyDocument::parse(&padded).is_ok());
        // … one with more than 6144 significant characters is not.
        let resources: Vec<String> = (0..400)
            .map(|i| format!("\"arn:aws:kafka:r:1:topic/c/u/t{i}\""))
            .collect();
        let big = format!(
            r#"{{"Statement":{{"Effect":"Allow","Action":"*","Resource":[{}]}}}}"#,
            resources.join(",")
        );
        let err = PolicyDocument::parse(&big).unwrap_err();
        assert!(
            matches!(err, PolicyError::TooLarge { chars } if chars > MAX_POLICY_CHARS),
            "{err}"
        );
        // And the raw limit stops huge inputs before counting.
        let huge = " ".repeat(MAX_POLICY_BYTES + 1);
        assert_eq!(
            PolicyDocument::parse(&huge),
            Err(PolicyError::TooLarge {
                chars: MAX_POLICY_BYTES + 1
            })
        );
    }
}
