//! Access keys: create (the secret is returned once, stored sealed), list (never secrets),
//! activate/deactivate, delete. Fjord's own JSON API (see `openapi.json`).
//!
//! IAM actions on the owning principal's ARN: `iam:CreateAccessKey`, `iam:ListAccessKeys`
//! (`*` when listing the whole account), `iam:UpdateAccessKey`, `iam:DeleteAccessKey`. Only
//! users get long-lived keys (at most [`MAX_KEYS_PER_USER`], as IAM); roles get temporary keys
//! from STS AssumeRole. Status changes and deletes raise the store's auth epoch, which gateways
//! poll to drop cached credentials within seconds.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use fjord_metadata::{AccessKey, KeyStatus, MetadataError};
use fjord_tenancy::SecretString;
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::principals::{load, require_user, Kind, Named};
use crate::request::{json, parse_json, Req};
use crate::server::{AppState, Inner};
use crate::time::format_iso8601;

/// Long-lived keys a user may have at once (IAM's limit).
pub const MAX_KEYS_PER_USER: usize = 2;
/// Attempts at drawing an unused key id.
const ID_ATTEMPTS: usize = 8;
/// AWS access key ids use upper-case base32.
const KEY_ID_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// AWS secrets use the base64 alphabet.
const SECRET_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_string(alphabet: &[u8], len: usize) -> String {
    // thread_rng is a CSPRNG seeded from the OS, fit for secrets.
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

/// Creates and stores a key for `principal` with a fresh id (`<prefix>` + 16 base32
/// characters: `AKIA` for long-lived keys, `ASIA` for temporary ones) and secret; returns the
/// stored record and the secret.
pub(crate) async fn issue_key(
    state: &Inner,
    account_id: &str,
    principal: &str,
    prefix: &str,
    expires_ms: Option<i64>,
    now_ms: i64,
) -> ApiResult<(AccessKey, SecretString)> {
    let secret = SecretString::new(random_string(SECRET_ALPHABET, 40));
    for _ in 0..ID_ATTEMPTS {
        let id = format!("{prefix}{}", random_string(KEY_ID_ALPHABET, 16));
        let key = AccessKey {
            sealed_secret: state
                .sealer
                .seal(&id, &secret)
                .map_err(|e| ApiError::Internal(format!("sealing a new secret: {e}")))?,
            id,
            account_id: account_id.to_string(),
            principal: principal.to_string(),
            status: KeyStatus::Active,
            expires_ms,
            created_ms: now_ms,
        };
        match state.store.create_access_key(&key).await {
            Ok(()) => return Ok((key, secret)),
            Err(MetadataError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Internal(
        "could not draw an unused access key id".into(),
    ))
}

fn status_word(s: KeyStatus) -> &'static str {
    match s {
        KeyStatus::Active => "Active",
        KeyStatus::Inactive => "Inactive",
    }
}

fn key_summary(k: &AccessKey) -> Value {
    let mut out = json!({
        "accessKeyId": k.id,
        "principal": k.principal,
        "status": status_word(k.status),
        "createDate": format_iso8601(k.created_ms),
    });
    if let Some(exp) = k.expires_ms {
        out["expiration"] = json!(format_iso8601(exp));
    }
    out
}

fn principal_arn(account_id: &str, principal: &str) -> String {
    format!("arn:aws:iam::{account_id}:{principal}")
}

/// `POST /v1/principals/user/{name}/access-keys`: the only answer that contains the secret.
pub(crate) async fn create(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let kind = Kind::parse(req.param("kind")?)?;
    let named = Named::new(&req.caller.account_id, kind, req.param("name")?)?;
    require_user(&named)?;
    req.caller.require("iam:CreateAccessKey", &named.arn)?;
    load(&state, &req.caller.account_id, &named).await?;
    let existing = state
        .store
        .list_access_keys(&req.caller.account_id)
        .await?
        .into_iter()
        .filter(|k| k.principal == named.stored && k.expires_ms.is_none())
        .count();
    if existing >= MAX_KEYS_PER_USER {
        return Err(ApiError::Conflict(format!(
            "{} already has {existing} access keys, the limit is {MAX_KEYS_PER_USER}; delete one first",
            named.stored
        )));
    }
    let (key, secret) = issue_key(
        &state,
        &req.caller.account_id,
        &named.stored,
        "AKIA",
        None,
        req.now_ms,
    )
    .await?;
    tracing::info!(access_key_id = %key.id, principal = %named.stored, "access key created");
    let mut out = key_summary(&key);
    out["secretAccessKey"] = json!(secret.expose());
    json(&json!({ "accessKey": out }))
}

/// `GET /v1/access-keys[?principal=user/<name>]`: keys of the account (or of one principal),
/// without secrets; expired temporary keys are left out.
pub(crate) async fn list(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let account = req.caller.account_id.clone();
    let principal = req.query("principal").map(str::to_string);
    match &principal {
        Some(p) => {
            let (kind, name) = p.split_once('/').ok_or_else(|| {
                ApiError::BadRequest("principal must be user/<name> or role/<name>".into())
            })?;
            let named = Named::new(&account, Kind::parse(kind)?, name)?;
            req.caller.require("iam:ListAccessKeys", &named.arn)?;
        }
        None => req.caller.require("iam:ListAccessKeys", "*")?,
    }
    let keys: Vec<Value> = state
        .store
        .list_access_keys(&account)
        .await?
        .iter()
        .filter(|k| principal.as_deref().is_none_or(|p| k.principal == p))
        .filter(|k| k.expires_ms.is_none_or(|e| e > req.now_ms))
        .map(key_summary)
        .collect();
    json(&json!({ "accessKeys": keys }))
}

/// A key of the caller's account, or NotFound (also for another account's key).
async fn find_key(state: &Inner, req: &Req) -> ApiResult<AccessKey> {
    let id = req.param("accessKeyId")?;
    match state.store.get_access_key(id).await? {
        Some(k) if k.account_id == req.caller.account_id => Ok(k),
        _ => Err(ApiError::NotFound(format!(
            "access key {} does not exist",
            id.chars().take(32).collect::<String>()
        ))),
    }
}

#[derive(Deserialize)]
struct UpdateRequest {
    status: Option<String>,
}

/// `PUT /v1/access-keys/{accessKeyId}` with `{"status": "Active" | "Inactive"}`.
pub(crate) async fn update(
    State(state): State<AppState>,
    req: Req,
    body: Bytes,
) -> ApiResult<Response> {
    let input: UpdateRequest = parse_json(&body)?;
    let status = match input.status.as_deref() {
        Some("Active") => KeyStatus::Active,
        Some("Inactive") => KeyStatus::Inactive,
        _ => {
            return Err(ApiError::BadRequest(
                "status must be Active or Inactive".into(),
            ))
        }
    };
    let key = find_key(&state, &req).await?;
    req.caller.require(
        "iam:UpdateAccessKey",
        &principal_arn(&key.account_id, &key.principal),
    )?;
    state.store.set_access_key_status(&key.id, status).await?;
    tracing::info!(access_key_id = %key.id, status = status_word(status), "access key status changed");
    let updated = AccessKey { status, ..key };
    json(&json!({ "accessKey": key_summary(&updated) }))
}

/// `DELETE /v1/access-keys/{accessKeyId}`.
pub(crate) async fn delete(State(state): State<AppState>, req: Req) -> ApiResult<Response> {
    let key = find_key(&state, &req).await?;
    req.caller.require(
        "iam:DeleteAccessKey",
        &principal_arn(&key.account_id, &key.principal),
    )?;
    state.store.delete_access_key(&key.id).await?;
    tracing::info!(access_key_id = %key.id, "access key deleted");
    json(&json!({ "accessKeyId": key.id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_have_the_aws_shape() {
        let id = format!("AKIA{}", random_string(KEY_ID_ALPHABET, 16));
        assert_eq!(id.len(), 20);
        assert!(id.bytes().all(|b| KEY_ID_ALPHABET.contains(&b)));
        let secret = random_string(SECRET_ALPHABET, 40);
        assert_eq!(secret.len(), 40);
        assert_ne!(secret, random_string(SECRET_ALPHABET, 40));
    }
}
