//! STS at `POST /` (query protocol, form body, SigV4 service `sts`, XML answers), so that
//! `boto3.client("sts", endpoint_url=…)` works: `AssumeRole` and `GetCallerIdentity`.
//!
//! AssumeRole hands out temporary credentials for a role: an access key (`ASIA…`, principal
//! `role/<name>` of the role's account, `expires_ms` set), its secret, and a session token
//! minted by `fjord_tenancy::session`. Whether the caller may assume the role is IAM's
//! two-sided decision between the caller's policies (`sts:AssumeRole` on the role's ARN,
//! `arn:aws:iam::<account>:role/<name>`) and the role's trust policy; see [`crate::trust`] for
//! the rules, including roles of other accounts that trust the caller. Refusals are STS's
//! `AccessDenied` (403). Durations are 900..=43200 s (default 3600), at most 3600 s when the
//! caller itself uses temporary credentials (role chaining, as in AWS). Expired temporary keys
//! of the role's account are removed as new ones are issued.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fjord_tenancy::session;
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::keys::issue_key;
use crate::principals::{validate_name, Kind, Named};
use crate::request::Req;
use crate::server::{AppState, Inner};
use crate::time::format_iso8601_seconds;
use crate::trust::{self, TrustDecision, ASSUME_ROLE};
use fjord_tenancy::policy::{eval, Decision};

/// STS's API version.
pub const STS_VERSION: &str = "2011-06-15";
const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// Shortest and longest session, seconds.
pub const MIN_DURATION_SECS: i64 = 900;
/// Longest session (a role's maximum session duration can be raised to 12 h on AWS).
pub const MAX_DURATION_SECS: i64 = 43_200;
/// Longest session for role chaining.
const MAX_CHAINED_DURATION_SECS: i64 = 3600;
const DEFAULT_DURATION_SECS: i64 = 3600;
/// Expired temporary keys removed per AssumeRole, bounding the extra work of one request.
const MAX_SWEEP: usize = 100;
/// Most form fields read.
const MAX_FIELDS: usize = 32;

/// Escapes text for XML element content.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn xml_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml"),
    );
    response
}

/// STS's XML `ErrorResponse` for an error.
pub(crate) fn error_response(e: &ApiError, request_id: &str) -> Response {
    e.log();
    let (code, status) = e.sts_code();
    let kind = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    xml_response(
        status,
        format!(
            "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{kind}</Type><Code>{code}</Code>\
             <Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            xml_escape(&e.client_message()),
            xml_escape(request_id)
        ),
    )
}

/// Decodes an `application/x-www-form-urlencoded` body (`+` is a space there).
fn parse_form(body: &[u8]) -> ApiResult<Vec<(String, String)>> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("the form body must be UTF-8".into()))?;
    let mut out = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        if out.len() >= MAX_FIELDS {
            return Err(ApiError::BadRequest("too many form fields".into()));
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| ApiError::BadRequest("form fields must be UTF-8".into()))
        };
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `POST /`: dispatches on the `Action` field.
pub(crate) async fn handle(State(state): State<AppState>, req: Req, body: Bytes) -> Response {
    let result = async {
        let form = parse_form(&body)?;
        if field(&form, "Version") != Some(STS_VERSION) {
            return Err(ApiError::BadRequest(format!(
                "Version must be {STS_VERSION}"
            )));
        }
        match field(&form, "Action") {
            Some("AssumeRole") => assume_role(&state, &req, &form).await,
            Some("GetCallerIdentity") => Ok(caller_identity(&req)),
            Some(other) => Err(ApiError::BadRequest(format!(
                "unsupported STS action {}; Fjord supports AssumeRole and GetCallerIdentity",
                other.chars().take(64).collect::<String>()
            ))),
            None => Err(ApiError::BadRequest("Action is required".into())),
        }
    }
    .await;
    match result {
        Ok(xml) => xml_response(StatusCode::OK, xml),
        Err(e) => error_response(&e, &req.request_id),
    }
}

/// A stable role id (`AROA…`) derived from the role's ARN; Fjord keeps no separate ids.
fn role_id(role_arn: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha256::digest(role_arn.as_bytes());
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
        .collect();
    format!("AROA{tail}")
}

async fn assume_role(state: &Inner, req: &Req, form: &[(String, String)]) -> ApiResult<String> {
    let role_arn =
        field(form, "RoleArn").ok_or_else(|| ApiError::BadRequest("RoleArn is required".into()))?;
    let session_name = field(form, "RoleSessionName")
        .ok_or_else(|| ApiError::BadRequest("RoleSessionName is required".into()))?;
    if session_name.len() < 2 {
        return Err(ApiError::BadRequest(
            "RoleSessionName must be 2 to 64 characters".into(),
        ));
    }
    validate_name("RoleSessionName", session_name, 64)?;
    let max = if req.caller.session_expires_ms.is_some() {
        MAX_CHAINED_DURATION_SECS
    } else {
        MAX_DURATION_SECS
    };
    let duration = match field(form, "DurationSeconds") {
        None => DEFAULT_DURATION_SECS.min(max),
        Some(raw) => match raw.parse::<i64>() {
            Ok(d) if (MIN_DURATION_SECS..=max).contains(&d) => d,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "DurationSeconds must be from {MIN_DURATION_SECS} to {max}{}",
                    if max == MAX_CHAINED_DURATION_SECS {
                        " when the caller uses temporary credentials (role chaining)"
                    } else {
                        ""
                    }
                )))
            }
        },
    };
    let (account, role_name) = authorize_assumption(state, req, role_arn).await?;
    let account = account.as_str();
    let named = Named::new(account, Kind::Role, &role_name)?;

    let expires_ms = req.now_ms.saturating_add(duration * 1000);
    let (key, secret) = issue_key(
        state,
        account,
        &named.stored,
        "ASIA",
        Some(expires_ms),
        req.now_ms,
    )
    .await?;
    let token = session::mint(&state.sealer, &key.id, expires_ms)
        .map_err(|e| ApiError::Internal(format!("minting a session token: {e}")))?;
    sweep_expired(state, account, req.now_ms).await;
    tracing::info!(access_key_id = %key.id, role = %named.stored, duration, "role assumed");
    Ok(format!(
        "<AssumeRoleResponse xmlns=\"{XMLNS}\"><AssumeRoleResult>\
         <Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
         <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
         <AssumedRoleUser><AssumedRoleId>{}:{}</AssumedRoleId>\
         <Arn>arn:aws:sts::{account}:assumed-role/{}/{}</Arn></AssumedRoleUser>\
         </AssumeRoleResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>\
         </AssumeRoleResponse>",
        xml_escape(&key.id),
        xml_escape(secret.expose()),
        xml_escape(&token),
        format_iso8601_seconds(expires_ms),
        role_id(&named.arn),
        xml_escape(session_name),
        xml_escape(&role_name),
        xml_escape(session_name),
        xml_escape(&req.request_id),
    ))
}

/// Splits `arn:aws:iam::<account>:role/<name>`.
fn parse_role_arn(role_arn: &str) -> Option<(&str, &str)> {
    let (account, name) = role_arn
        .strip_prefix("arn:aws:iam::")?
        .split_once(":role/")?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some((account, name))
}

/// IAM's two-sided decision for `sts:AssumeRole` on `role_arn` (see [`crate::trust`]): the
/// caller's identity policies and the role's trust policy. Returns the role's account and name.
///
/// Every refusal is AccessDenied with one message whether or not the role exists, except that
/// a caller of the role's account whose own policies allow the assumption learns that a role
/// does not exist (NoSuchEntity), as it could with `iam:GetRole`.
async fn authorize_assumption(
    state: &Inner,
    req: &Req,
    role_arn: &str,
) -> ApiResult<(String, String)> {
    let caller = &req.caller;
    let denied = |why: &str| {
        ApiError::Forbidden(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}{why}",
            caller.arn()
        ))
    };
    let identity = eval::evaluate(caller.policies.policies(), ASSUME_ROLE, role_arn);
    if let Decision::ExplicitDeny(statement) = &identity {
        return Err(denied(&format!(" with an explicit deny in {statement}")));
    }
    let identity_allows = identity.is_allowed();
    let Some((account, role_name)) = parse_role_arn(role_arn) else {
        return Err(denied(""));
    };
    validate_name("the role name", role_name, 64).map_err(|_| denied(""))?;
    let same_account = account == caller.account_id;
    let role = state
        .store
        .get_principal(account, &format!("role/{role_name}"))
        .await?;
    if role.is_none() {
        return Err(if same_account && identity_allows {
            ApiError::NotFound(format!("role {role_arn} does not exist"))
        } else {
            denied("")
        });
    }
    let trust = trust::load(state.store.as_ref(), account, role_name).await?;
    let allowed = match trust.evaluate(&caller.account_id, &caller.arn()) {
        TrustDecision::Denied(statement) => {
            return Err(denied(&format!(
                " with an explicit deny in the role's trust policy ({statement})"
            )))
        }
        TrustDecision::NotTrusted => {
            return Err(denied(": the role's trust policy does not allow it"))
        }
        // A same-account trust statement naming the caller is enough on its own.
        TrustDecision::AllowsPrincipal if same_account => true,
        TrustDecision::AllowsPrincipal | TrustDecision::AllowsAccount => identity_allows,
    };
    if !allowed {
        return Err(denied(
            " because no identity-based policy allows the sts:AssumeRole action",
        ));
    }
    Ok((account.to_string(), role_name.to_string()))
}

/// Removes (some of) the account's expired temporary keys; failures only cost a log line.
async fn sweep_expired(state: &Inner, account: &str, now_ms: i64) {
    let keys = match state.store.list_access_keys(account).await {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!(error = %e, "listing keys to remove expired temporary ones");
            return;
        }
    };
    let expired = keys
        .iter()
        .filter(|k| k.expires_ms.is_some_and(|e| e <= now_ms))
        .take(MAX_SWEEP);
    for key in expired {
        if let Err(e) = state.store.delete_access_key(&key.id).await {
            tracing::warn!(error = %e, access_key_id = %key.id, "removing an expired temporary key");
        }
    }
}

fn caller_identity(req: &Req) -> String {
    format!(
        "<GetCallerIdentityResponse xmlns=\"{XMLNS}\"><GetCallerIdentityResult>\
         <Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult>\
         <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>\
         </GetCallerIdentityResponse>",
        xml_escape(&req.caller.arn()),
        xml_escape(&req.caller.access_key_id),
        xml_escape(&req.caller.account_id),
        xml_escape(&req.request_id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_and_escaping() {
        let form =
            parse_form(b"Action=AssumeRole&RoleSessionName=a+b&RoleArn=arn%3Aaws").expect("form");
        assert_eq!(field(&form, "RoleSessionName"), Some("a b"));
        assert_eq!(field(&form, "RoleArn"), Some("arn:aws"));
        assert_eq!(xml_escape("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
        assert!(parse_form(&[0xff]).is_err());
    }

    #[test]
    fn role_ids_are_stable_and_shaped_like_aws() {
        let a = role_id("arn:aws:iam::123456789012:role/r");
        assert_eq!(a, role_id("arn:aws:iam::123456789012:role/r"));
        assert_ne!(a, role_id("arn:aws:iam::123456789012:role/s"));
        assert_eq!(a.len(), 21);
        assert!(a.starts_with("AROA"));
    }
}
