//! Verification of SigV4 header authentication (`Authorization: AWS4-HMAC-SHA256 …`), as
//! botocore, the AWS CLI and the Rust SDK sign requests for non-S3 services.
//!
//! The server recomputes the signature from the request it received:
//!
//! ```text
//! canonical request = <METHOD>\n<canonical URI>\n<canonical query>\n<canonical headers>\n
//!                     <signed headers>\n<hex sha256(body)>
//! string to sign    = AWS4-HMAC-SHA256\n<X-Amz-Date>\n<date>/<region>/<service>/aws4_request\n
//!                     <hex sha256(canonical request)>
//! ```
//!
//! - Canonical URI: the path as received (already percent-encoded once by the client), with
//!   dot segments removed and repeated slashes merged, percent-encoded once more: non-S3
//!   services sign a doubly encoded path (`%3A` becomes `%253A`).
//! - Canonical query: every parameter decoded, then re-encoded with SigV4's encoding (RFC 3986
//!   unreserved characters kept, upper-case hex), sorted by name then value.
//! - Canonical headers: the signed headers, lower-cased, values trimmed with runs of spaces
//!   collapsed, repeated headers joined with `,`.
//! - The payload hash is computed from the body; an `X-Amz-Content-Sha256` header must agree.
//!
//! [`check`] does everything that needs no secret (shape, scope, region, service, clock skew,
//! canonical request); [`CheckedRequest::verify`] then compares the signature in constant time.
//! The HMAC math is `aws-sigv4`'s.

use std::time::{Duration, UNIX_EPOCH};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use http::HeaderMap;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::time;

/// The only algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Longest `Authorization` header looked at.
const MAX_AUTHORIZATION_LEN: usize = 4096;
/// Most signed headers accepted.
const MAX_SIGNED_HEADERS: usize = 64;
/// Most query parameters accepted.
const MAX_QUERY_PARAMS: usize = 128;

/// SigV4's encoding: everything except the RFC 3986 unreserved characters.
const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, keeping `/` (path segments).
const SIGV4_PATH_ENCODE: &AsciiSet = &SIGV4_ENCODE.remove(b'/');

/// Why a request's signature or credentials were refused. The text is sent to the client; it
/// never contains a secret or an expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigV4Error {
    /// No `Authorization` header.
    #[error("missing Authorization header: requests must be signed with AWS Signature Version 4")]
    MissingAuthorization,
    /// The `Authorization` header is not `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    #[error("malformed Authorization header: {0}")]
    MalformedAuthorization(&'static str),
    /// Another algorithm than `AWS4-HMAC-SHA256`.
    #[error("unsupported signing algorithm; only AWS4-HMAC-SHA256 is accepted")]
    UnsupportedAlgorithm,
    /// No valid `X-Amz-Date` header.
    #[error("missing or malformed X-Amz-Date header (expected yyyyMMddTHHmmssZ)")]
    BadDate,
    /// The credential scope's date is not the date of `X-Amz-Date`.
    #[error("the credential scope date does not match X-Amz-Date")]
    ScopeDateMismatch,
    /// The credential scope names another region.
    #[error("credential should be scoped to a valid region, expected '{expected}', got '{got}'")]
    WrongRegion {
        /// This control plane's region.
        expected: String,
        /// The scope's region.
        got: String,
    },
    /// The credential scope names another service.
    #[error("credential should be scoped to correct service: '{expected}', got '{got}'")]
    WrongService {
        /// The service this operation belongs to.
        expected: &'static str,
        /// The scope's service.
        got: String,
    },
    /// `X-Amz-Date` is too far from the server's clock.
    #[error("signature expired or not yet valid: request time {request} is more than {max_skew_secs} s from server time {server}")]
    Skew {
        /// The request's time.
        request: String,
        /// The server's time.
        server: String,
        /// The allowed skew.
        max_skew_secs: i64,
    },
    /// A header that must be signed is not in `SignedHeaders`.
    #[error("header '{0}' must be signed")]
    UnsignedHeader(&'static str),
    /// A header listed in `SignedHeaders` is not in the request.
    #[error("signed header '{0}' is not present in the request")]
    MissingSignedHeader(String),
    /// A signed header's value is not text.
    #[error("signed header '{0}' has a value that is not visible ASCII/UTF-8")]
    BadHeaderValue(String),
    /// The query string cannot be canonicalized.
    #[error("malformed query string: {0}")]
    BadQuery(&'static str),
    /// `X-Amz-Content-Sha256` does not match the body.
    #[error("X-Amz-Content-Sha256 does not match the SHA-256 of the request body")]
    PayloadHashMismatch,
    /// No such access key.
    #[error("the security token included in the request is invalid: unknown access key id")]
    UnknownKey,
    /// The access key is deactivated.
    #[error("the access key is inactive")]
    InactiveKey,
    /// The temporary access key has expired.
    #[error("the security token included in the request is expired")]
    ExpiredKey,
    /// A temporary key used without its session token.
    #[error("temporary credentials need their session token (X-Amz-Security-Token)")]
    MissingToken,
    /// The session token is not this key's, or a long-lived key came with a token.
    #[error("the security token included in the request is invalid")]
    InvalidToken,
    /// The session token has expired.
    #[error("the security token included in the request is expired")]
    ExpiredToken,
    /// The principal the key authenticates as no longer exists.
    #[error("the principal of this access key no longer exists")]
    UnknownPrincipal,
    /// The signature does not match.
    #[error("the request signature we calculated does not match the signature you provided; check your secret access key and signing method")]
    SignatureMismatch,
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id.
    pub access_key_id: String,
    /// The scope date (`yyyyMMdd`).
    pub date: String,
    /// The scope region.
    pub region: String,
    /// The scope service.
    pub service: String,
    /// `SignedHeaders`, as sent (lower-case, `;`-separated).
    pub signed_headers: String,
    /// The hex signature.
    pub signature: String,
}

/// Parses `AWS4-HMAC-SHA256 Credential=<id>/<date>/<region>/<service>/aws4_request,
/// SignedHeaders=<h1;h2>, Signature=<hex>`.
pub fn parse_authorization(value: &str) -> Result<Authorization, SigV4Error> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(SigV4Error::MalformedAuthorization("too long"));
    }
    let (algorithm, rest) = value
        .trim()
        .split_once(' ')
        .ok_or(SigV4Error::MalformedAuthorization("no credential"))?;
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm);
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SigV4Error::MalformedAuthorization(
                "expected key=value pairs",
            ))?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(SigV4Error::MalformedAuthorization("unknown component")),
        };
        if slot.replace(v).is_some() {
            return Err(SigV4Error::MalformedAuthorization("repeated component"));
        }
    }
    let credential = credential.ok_or(SigV4Error::MalformedAuthorization("no Credential"))?;
    let signed_headers =
        signed_headers.ok_or(SigV4Error::MalformedAuthorization("no SignedHeaders"))?;
    let signature = signature.ok_or(SigV4Error::MalformedAuthorization("no Signature"))?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [id, date, region, service, terminator] = parts[..] else {
        return Err(SigV4Error::MalformedAuthorization(
            "Credential must be <key id>/<yyyyMMdd>/<region>/<service>/aws4_request",
        ));
    };
    if terminator != "aws4_request" || id.is_empty() || id.len() > 128 {
        return Err(SigV4Error::MalformedAuthorization(
            "Credential must be <key id>/<yyyyMMdd>/<region>/<service>/aws4_request",
        ));
    }
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(SigV4Error::MalformedAuthorization(
            "Signature must be 64 lower-case hex digits",
        ));
    }
    if signed_headers.is_empty() || signed_headers.split(';').count() > MAX_SIGNED_HEADERS {
        return Err(SigV4Error::MalformedAuthorization(
            "SignedHeaders is empty or too long",
        ));
    }
    Ok(Authorization {
        access_key_id: id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed_headers.to_string(),
        signature: signature.to_string(),
    })
}

/// What [`check`] needs of the received request.
#[derive(Debug, Clone, Copy)]
pub struct ReceivedRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The path exactly as received (percent-encoded).
    pub path: &'a str,
    /// The raw query string, if any.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The whole body.
    pub body: &'a [u8],
}

/// A request whose signature can be verified once the key's secret is known.
#[derive(Debug, Clone)]
pub struct CheckedRequest {
    /// The parsed `Authorization` header.
    pub authorization: Authorization,
    /// The request time (ms since the epoch).
    pub time_ms: i64,
    /// The session token (`X-Amz-Security-Token`), if one was sent.
    pub security_token: Option<String>,
    /// The string to sign, as recomputed.
    pub string_to_sign: String,
}

/// Checks everything about a request's signature that needs no secret, and recomputes its
/// string to sign.
pub fn check(
    req: &ReceivedRequest<'_>,
    region: &str,
    service: &'static str,
    now_ms: i64,
    max_skew_ms: i64,
) -> Result<CheckedRequest, SigV4Error> {
    let mut values = req.headers.get_all(http::header::AUTHORIZATION).iter();
    let value = values.next().ok_or(SigV4Error::MissingAuthorization)?;
    if values.next().is_some() {
        return Err(SigV4Error::MalformedAuthorization(
            "more than one Authorization header",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| SigV4Error::MalformedAuthorization("not ASCII"))?;
    let authorization = parse_authorization(value)?;

    let amz_date = req
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or(SigV4Error::BadDate)?;
    let time_ms = time::parse_amz_date(amz_date).ok_or(SigV4Error::BadDate)?;
    if amz_date.get(..8) != Some(authorization.date.as_str()) {
        return Err(SigV4Error::ScopeDateMismatch);
    }
    if authorization.region != region {
        return Err(SigV4Error::WrongRegion {
            expected: region.to_string(),
            got: truncated(&authorization.region),
        });
    }
    if authorization.service != service {
        return Err(SigV4Error::WrongService {
            expected: service,
            got: truncated(&authorization.service),
        });
    }
    if time_ms.abs_diff(now_ms) > max_skew_ms.unsigned_abs() {
        return Err(SigV4Error::Skew {
            request: time::format_iso8601_seconds(time_ms),
            server: time::format_iso8601_seconds(now_ms),
            max_skew_secs: max_skew_ms / 1000,
        });
    }
    let signed: Vec<&str> = authorization.signed_headers.split(';').collect();
    for required in ["host", "x-amz-date"] {
        if !signed.contains(&required) {
            return Err(SigV4Error::UnsignedHeader(required));
        }
    }
    let security_token = match req.headers.get("x-amz-security-token") {
        None => None,
        Some(v) => {
            if !signed.contains(&"x-amz-security-token") {
                return Err(SigV4Error::UnsignedHeader("x-amz-security-token"));
            }
            Some(
                v.to_str()
                    .map_err(|_| SigV4Error::InvalidToken)?
                    .to_string(),
            )
        }
    };
    let payload_hash = hex::encode(Sha256::digest(req.body));
    if let Some(claimed) = req.headers.get("x-amz-content-sha256") {
        if claimed.as_bytes() != payload_hash.as_bytes() {
            return Err(SigV4Error::PayloadHashMismatch);
        }
    }
    let canonical = canonical_request(req, &signed, &authorization.signed_headers, &payload_hash)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        authorization.date, authorization.region, authorization.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    Ok(CheckedRequest {
        authorization,
        time_ms,
        security_token,
        string_to_sign,
    })
}

impl CheckedRequest {
    /// Recomputes the signature with `secret` and compares it in constant time.
    pub fn verify(&self, secret: &str) -> Result<(), SigV4Error> {
        let a = &self.authorization;
        let millis = u64::try_from(self.time_ms).map_err(|_| SigV4Error::BadDate)?;
        let time = UNIX_EPOCH + Duration::from_millis(millis);
        let key = generate_signing_key(secret, time, &a.region, &a.service);
        let expected = calculate_signature(key, self.string_to_sign.as_bytes());
        if bool::from(expected.as_bytes().ct_eq(a.signature.as_bytes())) {
            Ok(())
        } else {
            Err(SigV4Error::SignatureMismatch)
        }
    }
}

/// Builds the canonical request.
pub fn canonical_request(
    req: &ReceivedRequest<'_>,
    signed: &[&str],
    signed_headers: &str,
    payload_hash: &str,
) -> Result<String, SigV4Error> {
    let mut out = String::with_capacity(256);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.path));
    out.push('\n');
    out.push_str(&canonical_query(req.query.unwrap_or(""))?);
    out.push('\n');
    for name in signed {
        let mut values = req.headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            return Err(SigV4Error::MissingSignedHeader(truncated(name)));
        }
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for v in values {
            let v = std::str::from_utf8(v.as_bytes())
                .map_err(|_| SigV4Error::BadHeaderValue(truncated(name)))?;
            if !first {
                out.push(',');
            }
            first = false;
            push_collapsed(&mut out, v);
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed_headers);
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

/// Trims a header value and collapses runs of spaces into one, as SigV4 requires.
fn push_collapsed(out: &mut String, value: &str) {
    let mut words = value.split([' ', '\t']).filter(|w| !w.is_empty());
    if let Some(first) = words.next() {
        out.push_str(first);
    }
    for w in words {
        out.push(' ');
        out.push_str(w);
    }
}

/// The path with dot segments removed and repeated slashes merged (as botocore normalizes
/// before signing), encoded once more.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::with_capacity(path.len() + 1);
    normalized.push('/');
    normalized.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    utf8_percent_encode(&normalized, SIGV4_PATH_ENCODE).to_string()
}

/// Decodes and re-encodes every parameter, sorted by name then value.
fn canonical_query(query: &str) -> Result<String, SigV4Error> {
    let mut params: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if params.len() >= MAX_QUERY_PARAMS {
            return Err(SigV4Error::BadQuery("too many parameters"));
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.push((encode_component(k)?, encode_component(v)?));
    }
    params.sort();
    Ok(params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&"))
}

fn encode_component(s: &str) -> Result<String, SigV4Error> {
    let decoded = percent_decode_str(s)
        .decode_utf8()
        .map_err(|_| SigV4Error::BadQuery("a parameter is not UTF-8 after decoding"))?;
    Ok(utf8_percent_encode(&decoded, SIGV4_ENCODE).to_string())
}

/// Keeps client-provided text in error messages short.
fn truncated(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
