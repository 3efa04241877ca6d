//! Principals (IAM-style users and roles) of the caller's account: create, list, describe,
//! delete, inline policies, and SCRAM credentials. Fjord's own JSON API (see `openapi.json`).
//!
//! IAM actions, on `arn:aws:iam::<account>:user/<name>` (or `role/<name>`):
//! `iam:CreateUser`/`CreateRole`, `GetUser`/`GetRole`, `DeleteUser`/`DeleteRole`,
//! `PutUserPolicy`/`PutRolePolicy`, `DeleteUserPolicy`/`DeleteRolePolicy`; `iam:ListUsers` /
//! `iam:ListRoles` on `*`; a role's trust policy ([`crate::trust`]) is set at creation or with
//! `iam:UpdateAssumeRolePolicy`. A SCRAM password is the Kafka login password of a user, so setting
//! and removing it are `iam:UpdateLoginProfile` and `iam:DeleteLoginProfile`.
//!
//! Changes are conditional on the principal's version (re-read and retried a few times when
//! another request wins), and every change raises the store's auth epoch, so gateways drop
//! cached policies within seconds.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use fjord_metadata::{MetadataError, Principal};
use fjord_tenancy::policy::PolicyDocument;
use fjord_tenancy::scram::{ScramCredential, DEFAULT_ITERATIONS, SALT_LEN};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::request::{json, parse_json, Req};
use crate::server::{AppState, Inner};
use crate::time::format_iso8601;
use crate::trust;

/// Attempts of a read-modify-write of a principal before answering Conflict.
const UPDATE_ATTEMPTS: usize = 3;
/// IAM's limits on names.
const MAX_NAME: usize = 64;
const MAX_POLICY_NAME: usize = 128;
/// Most inline policies per principal (IAM allows ~10 KiB in total per user; a count bounds it
/// here, each document being bounded by the policy parser).
const MAX_POLICIES: usize = 10;
/// Longest SCRAM password accepted.
const MAX_PASSWORD: usize = 1024;

/// `user` or `role`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A user: may have access keys and a SCRAM password.
    User,
    /// A role: assumed through STS AssumeRole.
    Role,
}

impl Kind {
    /// Parses `user` / `role`.
    pub fn parse(s: &str) -> ApiResult<Self> {
        match s {
            "user" => Ok(Self::User),
            "role" => Ok(Self::Role),
            _ => Err(ApiError::BadRequest(format!(
                "principal kind must be user or role, not {:?}",
                truncate(s)
            ))),
        }
    }

    fn word(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Role => "role",
        }
    }

    /// The IAM action for this kind: `iam:<verb>User` or `iam:<verb>Role`.
    fn action(self, verb: &str, suffix: &str) -> String {
        match self {
            Self::User => format!("iam:{verb}User{suffix}"),
            Self::Role => format!("iam:{verb}Role{suffix}"),
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// IAM's name rule: letters, digits and `+=,.@_-`.
pub fn validate_name(what: &str, name: &str, max: usize) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "{what} must be 1 to {max} letters, digits or +=,.@_-"
        )))
    }
}

/// A principal named in the path: kind, name, stored name (`user/x`) and ARN.
pub(crate) struct Named {
    pub kind: Kind,
    pub stored: String,
    pub arn: String,
}

impl Named {
    pub(crate) fn new(account_id: &str, kind: Kind, name: &str) -> ApiResult<Self> {
        validate_name("the principal name", name, MAX_NAME)?;
        let stored = format!("{}/{name}", kind.word());
        Ok(Self {
            kind,
            arn: format!("arn:aws:iam::{account_id}:{stored}"),
            stored,
        })
    }

    fn from_path(req: &Req) -> ApiResult<Self> {
        let kind = Kind::parse(req.param("kind")?)?;
        Self::new(&req.caller.account_id, kind, req.param("name")?)
    }
}

fn summary(account_id: &str, p: &Principal) -> Value {
    let kind = p.name.split('/').next().unwrap_or("");
    json!({
        "name": p.name,
        "kind": kind,
        "arn": format!("arn:aws:iam::{account_id}:{}", p.name),
        "policyNames": p.policies.keys().collect::<Vec<_>>(),
        "scram": p.scram.is_some(),
        "createdAt": format_iso8601(p.created_ms),
    })
}

/// Reads a principal of the caller's account or answers NotFound.
pub(crate) async fn load(state: &Inner, account_id: &str, named: &Named) -> ApiResult<Principal> {
    state
        .store
        .get_principal(account_id, &named.stored)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("principal {} does not exist", named.stored)))
}

/// Applies `change` to the stored principal, retrying when another writer wins.
async fn update(
    state: &Inner,
    account_id: &str,
    named: &Named,
    change: impl Fn(&mut Principal) -> ApiResult<()>,
) -> ApiResult<Principal> {
    for _ in 0..UPDATE_ATTEMPTS {
        let mut p = load(state, account_id, named).await?;
        change(&mut p)?;
        match state.store.update_principal(&p).await {
            Ok(stored) => return Ok(stored),
            Err(MetadataError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict(format!(
        "principal {} kept changing concurrently; retry",
        named.stored
    )))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRequest {
    name: Option<String>,
    /// A role's trust policy (IAM's `AssumeRolePolicyDocument`); its own account by default.
    assume_role_policy_document: Option<Value>,
}

/// `POST /v1/principals` with `{"name": "user/<name>"}` or `{"name": "role/<name>"}`; a role
/// may carry its trust policy as `assumeRolePolicyDocument` (default: trust its own account,
/// see [`crate::trust`]).
pub(crate) async fn create(
    State(state): State<AppState>,
    req: Req,
    body: Bytes,
) -> ApiResult<Response> {
    let input: CreateRequest = parse_json(&body)?;
    let full = input.name.ok_or_else(|| {
        ApiError::BadRequest("name is required (user/<name> or role/<name>)".into())
    })?;
    let (kind, name) = full
        .split_once('/')
        .ok_or_else(|| ApiError::BadRequest("name must be user/<name> or role/<name>".into()))?;
    let named = Named::new(&req.caller.account_id, Kind::parse(kind)?, name)?;
    req.caller
        .require(&named.kind.action("Create", ""), &named.arn)?;
    let trust_document = match named.kind {
        Kind::Role => Some(
            trust::document_from_request(input.assume_role_policy_document)?
                .unwrap_or_else(|| trust::default_document(&req.caller.account_id)),
        ),
        Kind::User if input.assume_role_policy_document.is_some() => {
            return Err(ApiError::BadRequest(
                "assumeRolePolicyDocument is for roles only".into(),
            ))
        }
        Kind::User => None,
    };
    let principal = Principal {
        account_id: req.caller.account_id.clone(),
        name: named.stored.clone(),
        policies: BTreeMap::new(),
        scram: None,
        version: 0,
        created_ms: req.now_ms,
    };
    match state.store.create_principal(&principal).await {
        Ok(()) => {}
        Err(MetadataError::AlreadyExists { .. }) => {
            return Err(ApiError::Conflict(format!(
                "principal {} already exists",
                named.stored
            )))
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(document) = &trust_document {
        // Always written, so that a record left by a deleted role of the same name is replaced.
        let written = trust::store_document(
            state.store.as_ref(),
            &req.caller.account_id,
            name,
            document,
            req.now_ms,
        )
        .await;
        if let Err(e) = written {
            // A role whose requested trust policy is not in place must not stay assumable
            // under the default one.
            if let Err(undo) = state
                .store
                .delete_principal(&req.caller.account_id, &named.stored)
                .await
            {
                tracing::error!(principal = %named.stored, error = %undo, "removing a role whose trust policy could not be stored");
            }
            return Err(e);
        }
    }
    tracing::info!(principal = %named.stored, "principal created");
    let mut out = summary(&req.caller.account_id, &principal);
    if let Some(document) = trust_document {
        out["assumeRolePolicyDocument"] = Value::String(document);
    }
    json(&out)
}

/// `GET /v1/principals[?kind=user|role]`: the users the caller may list (`iam:ListUsers`) and
/// the roles (`iam:ListRoles`).
pub(crate) async fn list(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let only = req.query("kind").map(Kind::parse).transpose()?;
    let mut kinds = Vec::new();
    let mut refusal = None;
    for kind in [Kind::User, Kind::Role] {
        if only.is_some_and(|o| o != kind) {
            continue;
        }
        match req.caller.require(&kind.action("List", "s"), "*") {
            Ok(()) => kinds.push(kind.word()),
            Err(e) => refusal = refusal.or(Some(e)),
        }
    }
    if kinds.is_empty() {
        return Err(refusal.unwrap_or_else(|| ApiError::Forbidden("not allowed".into())));
    }
    let principals: Vec<Value> = state
        .store
        .list_principals(&req.caller.account_id)
        .await?
        .iter()
        .filter(|p| kinds.iter().any(|k| p.name.starts_with(&format!("{k}/"))))
        .map(|p| summary(&req.caller.account_id, p))
        .collect();
    json(&json!({ "principals": principals }))
}

/// `GET /v1/principals/{kind}/{name}`: the principal with its policy documents.
pub(crate) async fn get(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let named = Named::from_path(&req)?;
    req.caller
        .require(&named.kind.action("Get", ""), &named.arn)?;
    let p = load(&state, &req.caller.account_id, &named).await?;
    let mut out = summary(&req.caller.account_id, &p);
    out["policies"] = json!(p.policies);
    if let Some(role_name) = named.stored.strip_prefix("role/") {
        out["assumeRolePolicyDocument"] = Value::String(
            trust::load_document(state.store.as_ref(), &req.caller.account_id, role_name).await?,
        );
    }
    json(&out)
}

/// `DELETE /v1/principals/{kind}/{name}`: deletes the principal and its access keys
/// (temporary ones included).
pub(crate) async fn delete(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let named = Named::from_path(&req)?;
    req.caller
        .require(&named.kind.action("Delete", ""), &named.arn)?;
    load(&state, &req.caller.account_id, &named).await?;
    // Keys first: a key left without its principal would be refused anyway, but would linger.
    let keys = state.store.list_access_keys(&req.caller.account_id).await?;
    let mut deleted_keys = 0;
    for key in keys.iter().filter(|k| k.principal == named.stored) {
        state.store.delete_access_key(&key.id).await?;
        deleted_keys += 1;
    }
    state
        .store
        .delete_principal(&req.caller.account_id, &named.stored)
        .await?;
    // After the role: a failure here leaves a record nothing reads until a role of the same
    // name is created, which replaces it.
    if let Some(role_name) = named.stored.strip_prefix("role/") {
        trust::remove(state.store.as_ref(), &req.caller.account_id, role_name).await?;
    }
    tracing::info!(principal = %named.stored, deleted_keys, "principal deleted");
    json(&json!({ "name": named.stored, "deletedAccessKeys": deleted_keys }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutPolicyRequest {
    policy_document: Option<Value>,
}

/// `PUT /v1/principals/{kind}/{name}/policies/{policyName}` with `{"policyDocument": …}` (the
/// IAM JSON document, as a string or an object); validated before it is stored.
pub(crate) async fn put_policy(
    State(state): State<AppState>,
    req: Req,
    body: Bytes,
) -> ApiResult<Response> {
    let named = Named::from_path(&req)?;
    let policy_name = req.param("policyName")?.to_string();
    validate_name("policyName", &policy_name, MAX_POLICY_NAME)?;
    req.caller
        .require(&named.kind.action("Put", "Policy"), &named.arn)?;
    let input: PutPolicyRequest = parse_json(&body)?;
    let document = match input.policy_document {
        Some(Value::String(s)) => s,
        Some(v @ Value::Object(_)) => v.to_string(),
        _ => {
            return Err(ApiError::BadRequest(
                "policyDocument is required: an IAM policy document (string or object)".into(),
            ))
        }
    };
    PolicyDocument::parse(&document)
        .map_err(|e| ApiError::BadRequest(format!("invalid policy document: {e}")))?;
    let stored = update(&state, &req.caller.account_id, &named, |p| {
        if !p.policies.contains_key(&policy_name) && p.policies.len() >= MAX_POLICIES {
            return Err(ApiError::Conflict(format!(
                "{} already has {MAX_POLICIES} inline policies (the limit)",
                named.stored
            )));
        }
        p.policies.insert(policy_name.clone(), document.clone());
        Ok(())
    })
    .await?;
    tracing::info!(principal = %named.stored, policy = %policy_name, "policy put");
    json(&summary(&req.caller.account_id, &stored))
}

/// `DELETE /v1/principals/{kind}/{name}/policies/{policyName}`.
pub(crate) async fn delete_policy(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let named = Named::from_path(&req)?;
    let policy_name = req.param("policyName")?.to_string();
    req.caller
        .require(&named.kind.action("Delete", "Policy"), &named.arn)?;
    let stored = update(&state, &req.caller.account_id, &named, |p| {
        p.policies.remove(&policy_name).map(|_| ()).ok_or_else(|| {
            ApiError::NotFound(format!(
                "{} has no policy named {}",
                named.stored,
                truncate(&policy_name)
            ))
        })
    })
    .await?;
    tracing::info!(principal = %named.stored, policy = %policy_name, "policy deleted");
    json(&summary(&req.caller.account_id, &stored))
}

/// `PUT /v1/principals/role/{name}/trust-policy` with `{"policyDocument": …}`: replaces a
/// role's trust policy (IAM's UpdateAssumeRolePolicy, action `iam:UpdateAssumeRolePolicy`).
pub(crate) async fn put_trust_policy(
    State(state): State<AppState>,
    req: Req,
    body: Bytes,
) -> ApiResult<Response> {
    let named = Named::from_path(&req)?;
    let Some(role_name) = named.stored.strip_prefix("role/") else {
        return Err(ApiError::BadRequest(
            "only roles have trust policies; users are not assumed".into(),
        ));
    };
    req.caller
        .require("iam:UpdateAssumeRolePolicy", &named.arn)?;
    let input: PutPolicyRequest = parse_json(&body)?;
    let document = trust::document_from_request(input.policy_document)?.ok_or_else(|| {
        ApiError::BadRequest("policyDocument is required: the role's trust policy".into())
    })?;
    let p = load(&state, &req.caller.account_id, &named).await?;
    trust::store_document(
        state.store.as_ref(),
        &req.caller.account_id,
        role_name,
        &document,
        req.now_ms,
    )
    .await?;
    tracing::info!(principal = %named.stored, "trust policy put");
    let mut out = summary(&req.caller.account_id, &p);
    out["assumeRolePolicyDocument"] = Value::String(document);
    json(&out)
}

#[derive(Deserialize)]
struct ScramRequest {
    password: Option<String>,
    iterations: Option<u32>,
}

pub(crate) fn require_user(named: &Named) -> ApiResult<()> {
    if named.kind == Kind::User {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "only users have SCRAM credentials and access keys; roles are assumed".into(),
        ))
    }
}

/// `PUT /v1/principals/user/{name}/scram` with `{"password": …, "iterations"?: 4096..=16384}`:
/// stores the SCRAM-SHA-512 credential derived from the password (never the password).
pub(crate) async fn put_scram(
    State(state): State<AppState>,
    req: Req,
    body: Bytes,
) -> ApiResult<Response> {
    let named = Named::from_path(&req)?;
    require_user(&named)?;
    req.caller.require("iam:UpdateLoginProfile", &named.arn)?;
    let input: ScramRequest = parse_json(&body)?;
    let password = input
        .password
        .filter(|p| !p.is_empty() && p.len() <= MAX_PASSWORD)
        .ok_or_else(|| {
            ApiError::BadRequest(format!("password is required (1 to {MAX_PASSWORD} bytes)"))
        })?;
    let mut salt = vec![0u8; SALT_LEN];
    rand::thread_rng().fill_bytes(&mut salt);
    let iterations = input.iterations.unwrap_or(DEFAULT_ITERATIONS);
    // PBKDF2 with thousands of iterations: off the async workers.
    let credential = tokio::task::spawn_blocking(move || {
        ScramCredential::derive(password.as_bytes(), &salt, iterations)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("SCRAM derivation task: {e}")))?
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let encoded = serde_json::to_string(&credential)
        .map_err(|e| ApiError::Internal(format!("encoding the SCRAM credential: {e}")))?;
    let stored = update(&state, &req.caller.account_id, &named, |p| {
        p.scram = Some(encoded.clone());
        Ok(())
    })
    .await?;
    tracing::info!(principal = %named.stored, "SCRAM credential set");
    json(&summary(&req.caller.account_id, &stored))
}

/// `DELETE /v1/principals/user/{name}/scram`.
pub(crate) async fn delete_scram(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let named = Named::from_path(&req)?;
    require_user(&named)?;
    req.caller.require("iam:DeleteLoginProfile", &named.arn)?;
    let stored = update(&state, &req.caller.account_id, &named, |p| {
        p.scram
            .take()
            .map(|_| ())
            .ok_or_else(|| ApiError::NotFound(format!("{} has no SCRAM credential", named.stored)))
    })
    .await?;
    json(&summary(&req.caller.account_id, &stored))
}

/// The policy document that allows everything.
pub const ALLOW_ALL_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
/// The name [`ensure_admin_principal`] attaches [`ALLOW_ALL_POLICY`] under.
pub const ALLOW_ALL_POLICY_NAME: &str = "allow-all";

/// Makes sure `principal` (e.g. the dev tenant's `user/dev`) exists in `account_id`, and gives
/// it [`ALLOW_ALL_POLICY`] if it has no policy at all; a principal that has policies is left as
/// its operator made it. Idempotent, safe against concurrent starts. For bootstrapping a
/// tenant's first administrator (`fjord dev`), since every other principal is created through
/// the API by a principal allowed to.
pub async fn ensure_admin_principal(
    store: &dyn fjord_metadata::MetadataStore,
    account_id: &str,
    principal: &str,
    now_ms: i64,
) -> Result<Principal, MetadataError> {
    let mut policies = BTreeMap::new();
    policies.insert(
        ALLOW_ALL_POLICY_NAME.to_string(),
        ALLOW_ALL_POLICY.to_string(),
    );
    for _ in 0..UPDATE_ATTEMPTS {
        match store.get_principal(account_id, principal).await? {
            None => {
                let p = Principal {
                    account_id: account_id.to_string(),
                    name: principal.to_string(),
                    policies: policies.clone(),
                    scram: None,
                    version: 0,
                    created_ms: now_ms,
                };
                match store.create_principal(&p).await {
                    Ok(()) => return Ok(p),
                    Err(MetadataError::AlreadyExists { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            Some(p) if !p.policies.is_empty() => return Ok(p),
            Some(mut p) => {
                p.policies = policies.clone();
                match store.update_principal(&p).await {
                    Ok(stored) => return Ok(stored),
                    Err(MetadataError::Conflict(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Err(MetadataError::Conflict(format!(
        "principal {principal} kept changing while being bootstrapped"
    )))
}
