//! The client side of MSK IAM: what the stock AWS plugins send, made with `aws-sigv4`.
//!
//! Used by Fjord's own integration tests and load generator to authenticate like
//! aws-msk-iam-sasl-signer (OAUTHBEARER token) and aws-msk-iam-auth / the kafkajs plugin
//! (`AWS_MSK_IAM` JSON payload) do, without a Python or Java runtime.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningError, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use percent_encoding::utf8_percent_encode;
use serde::Serialize;

use crate::sigv4::{ALGORITHM, CONNECT_ACTION, SERVICE, SIGV4_ENCODE};

/// Presign lifetime used by the MSK signers.
pub const TOKEN_EXPIRY: Duration = Duration::from_secs(900);
/// The user agent appended to tokens (after signing, as the MSK signers do).
pub const USER_AGENT: &str = concat!("fjord/", env!("CARGO_PKG_VERSION"));

/// Why a token or payload could not be signed (invalid region or host characters).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// `aws-sigv4` refused the request or its parameters.
    #[error("cannot sign MSK IAM request: {0}")]
    Signing(String),
}

impl From<SigningError> for SignerError {
    fn from(e: SigningError) -> Self {
        Self::Signing(e.to_string())
    }
}

/// Presigns `GET https://<host>/?Action=kafka-cluster%3AConnect` and returns the query
/// parameters the signer added, in its order.
fn presign(
    access_key_id: &str,
    secret: &str,
    session_token: Option<&str>,
    region: &str,
    host: &str,
    now: SystemTime,
) -> Result<Vec<(&'static str, Cow<'static, str>)>, SignerError> {
    let identity: Identity = Credentials::new(
        access_key_id,
        secret,
        session_token.map(str::to_owned),
        None,
        "fjord-signer",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_EXPIRY);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| SignerError::Signing(e.to_string()))?
        .into();
    let url = format!("https://{host}/?Action={}", encode(CONNECT_ACTION));
    let request = SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))?;
    let (instructions, _signature) = sign(request, &params)?.into_parts();
    let (_headers, query) = instructions.into_parts();
    Ok(query)
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, SIGV4_ENCODE).to_string()
}

/// The OAUTHBEARER token of aws-msk-iam-sasl-signer: base64url (no padding) of the presigned
/// URL `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-…` with
/// `User-Agent` appended after signing. Valid for 900 s from `now`.
pub fn msk_iam_oauth_token(
    access_key_id: &str,
    secret: &str,
    session_token: Option<&str>,
    region: &str,
    now: SystemTime,
) -> Result<String, SignerError> {
    let host = format!("kafka.{region}.amazonaws.com");
    let query = presign(access_key_id, secret, session_token, region, &host, now)?;
    let mut url = format!("https://{host}/?Action={}", encode(CONNECT_ACTION));
    for (name, value) in &query {
        url.push('&');
        url.push_str(name);
        url.push('=');
        url.push_str(&encode(value));
    }
    url.push_str("&User-Agent=");
    url.push_str(&encode(USER_AGENT));
    Ok(URL_SAFE_NO_PAD.encode(url))
}

/// The SASL/OAUTHBEARER client initial response carrying `token` (RFC 7628).
pub fn oauthbearer_initial_response(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// The `AWS_MSK_IAM` JSON payload, as aws-msk-iam-auth (Java) and the kafkajs plugin send it.
#[derive(Serialize)]
struct MskIamPayload<'a> {
    version: &'a str,
    host: &'a str,
    #[serde(rename = "user-agent")]
    user_agent: &'a str,
    action: &'a str,
    #[serde(rename = "x-amz-algorithm")]
    algorithm: &'a str,
    #[serde(rename = "x-amz-credential")]
    credential: &'a str,
    #[serde(rename = "x-amz-date")]
    date: &'a str,
    #[serde(
        rename = "x-amz-security-token",
        skip_serializing_if = "Option::is_none"
    )]
    security_token: Option<&'a str>,
    #[serde(rename = "x-amz-signedheaders")]
    signed_headers: &'a str,
    #[serde(rename = "x-amz-expires")]
    expires: &'a str,
    #[serde(rename = "x-amz-signature")]
    signature: &'a str,
}

/// The `AWS_MSK_IAM` SaslAuthenticate payload for a connection to `host` (the broker host name
/// the client dialled, as the plugins sign it). Valid for 900 s from `now`.
pub fn msk_iam_payload(
    access_key_id: &str,
    secret: &str,
    session_token: Option<&str>,
    region: &str,
    host: &str,
    now: SystemTime,
) -> Result<Vec<u8>, SignerError> {
    let query = presign(access_key_id, secret, session_token, region, host, now)?;
    let get = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
            .ok_or_else(|| SignerError::Signing(format!("signer produced no {name}")))
    };
    let payload = MskIamPayload {
        version: crate::payload::MSK_IAM_VERSION,
        host,
        user_agent: USER_AGENT,
        action: CONNECT_ACTION,
        algorithm: ALGORITHM,
        credential: get("X-Amz-Credential")?,
        date: get("X-Amz-Date")?,
        security_token: session_token,
        signed_headers: get("X-Amz-SignedHeaders")?,
        expires: get("X-Amz-Expires")?,
        signature: get("X-Amz-Signature")?,
    };
    serde_json::to_vec(&payload).map_err(|e| SignerError::Signing(e.to_string()))
}
