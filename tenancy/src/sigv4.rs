//! Verification of the SigV4 query presign that both MSK IAM mechanisms carry.
//!
//! `AWS_MSK_IAM` (JSON) and `OAUTHBEARER` (presigned URL) both hold the signed parameters of
//! `GET https://<host>/?Action=kafka-cluster%3AConnect`, presigned in the query string. The
//! server recomputes the signature with the key's secret:
//!
//! ```text
//! canonical request = GET\n/\n<sorted URI-encoded query, without X-Amz-Signature>\n
//!                     host:<host>\n\nhost\n<sha256 of the empty payload>
//! string to sign    = AWS4-HMAC-SHA256\n<x-amz-date>\n<scope>\n<hex sha256(canonical request)>
//! ```
//!
//! Verification is split in two so that the cheap checks that need no secret (shape, scope,
//! region, action, time window) run before the access key is looked up: [`check`] returns a
//! [`CheckedPresign`], whose [`CheckedPresign::verify`] then compares the signature in constant
//! time. The HMAC math is `aws-sigv4`'s.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};

use crate::calendar::{civil_from_days, days_from_civil, days_in_month};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The only signing algorithm MSK IAM uses.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The SigV4 service name of MSK's data plane.
pub const SERVICE: &str = "kafka-cluster";
/// The action an authentication presign must name.
pub const CONNECT_ACTION: &str = "kafka-cluster:Connect";
/// The longest presign lifetime SigV4 allows (7 days).
pub const MAX_EXPIRES_SECS: i64 = 604_800;
/// SHA-256 of the empty payload, the payload hash of every presigned GET.
const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The scope terminator of SigV4.
const SCOPE_TERMINATOR: &str = "aws4_request";
/// Longest accepted host name (DNS limit plus a port).
const MAX_HOST_LEN: usize = 262;

/// SigV4's URI encoding: everything but the RFC 3986 unreserved characters, upper-case hex.
pub(crate) const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Why a presign was refused. The `Display` text is meant for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigV4Error {
    /// `x-amz-algorithm` is not `AWS4-HMAC-SHA256`.
    #[error("unsupported signing algorithm {0:?}, expected AWS4-HMAC-SHA256")]
    UnsupportedAlgorithm(String),
    /// `x-amz-credential` is not `<key id>/<yyyyMMdd>/<region>/kafka-cluster/aws4_request`.
    #[error(
        "malformed credential scope: expected <access key id>/<yyyyMMdd>/<region>/kafka-cluster/aws4_request"
    )]
    MalformedCredential,
    /// The scope names another service than `kafka-cluster`.
    #[error("credential scope service {0:?} is not kafka-cluster")]
    WrongService(String),
    /// `x-amz-date` is not a valid `yyyyMMddTHHmmssZ` time.
    #[error("malformed x-amz-date {0:?}: expected yyyyMMddTHHmmssZ")]
    MalformedDate(String),
    /// The scope's date is not the date of `x-amz-date`.
    #[error("credential scope date {scope_date:?} does not match x-amz-date {date:?}")]
    ScopeDateMismatch {
        /// Date in the scope.
        scope_date: String,
        /// The `x-amz-date` value.
        date: String,
    },
    /// The scope's region is not the region this server verifies for.
    #[error("credential scope region {got:?} does not match the cluster's region {expected:?}")]
    WrongRegion {
        /// The server's region.
        expected: String,
        /// The scope's region.
        got: String,
    },
    /// The presigned action is not `kafka-cluster:Connect`.
    #[error("action {0:?} is not kafka-cluster:Connect")]
    WrongAction(String),
    /// The signed headers are not exactly `host`.
    #[error("signed headers must be \"host\", got {0:?}")]
    UnsupportedSignedHeaders(String),
    /// `x-amz-expires` is not a number of seconds in 1..=604800.
    #[error("x-amz-expires {0:?} must be a number of seconds from 1 to 604800")]
    InvalidExpires(String),
    /// The signed host is empty, too long or contains characters a host cannot have.
    #[error("signed host {0:?} is not a valid host name")]
    InvalidHost(String),
    /// The presign's lifetime (x-amz-date + x-amz-expires) has passed.
    #[error("signature expired at {expired_at} (server time {now})")]
    Expired {
        /// End of the lifetime, `yyyyMMddTHHmmssZ`.
        expired_at: String,
        /// The server's time, `yyyyMMddTHHmmssZ`.
        now: String,
    },
    /// `x-amz-date` lies further in the future than the allowed clock skew.
    #[error("signature date {date} is more than {max_skew_secs} s ahead of the server time {now}")]
    NotYetValid {
        /// The `x-amz-date` value.
        date: String,
        /// The server's time, `yyyyMMddTHHmmssZ`.
        now: String,
        /// The allowed skew in seconds.
        max_skew_secs: i64,
    },
    /// `x-amz-signature` is not 64 lower-case hex digits.
    #[error("malformed signature: expected 64 lower-case hex digits")]
    MalformedSignature,
    /// The recomputed signature differs: wrong secret or altered parameters.
    #[error("signature does not match")]
    SignatureMismatch,
}

/// The signed parameters of one MSK IAM presign, as received from the client.
#[derive(Clone, Default)]
pub struct PresignedRequest<'a> {
    /// The host the client signed (`host` header of the presigned request).
    pub host: &'a str,
    /// The `Action` query parameter.
    pub action: &'a str,
    /// `X-Amz-Algorithm`.
    pub algorithm: &'a str,
    /// `X-Amz-Credential`: `<key id>/<yyyyMMdd>/<region>/kafka-cluster/aws4_request`.
    pub credential: &'a str,
    /// `X-Amz-Date`: `yyyyMMddTHHmmssZ`.
    pub date: &'a str,
    /// `X-Amz-Expires` in seconds, as sent (the raw text is what was signed).
    pub expires: &'a str,
    /// `X-Amz-Security-Token`, with temporary credentials.
    pub security_token: Option<&'a str>,
    /// `X-Amz-SignedHeaders`.
    pub signed_headers: &'a str,
    /// `X-Amz-Signature`, hex.
    pub signature: &'a str,
    /// Any other query parameters that were part of the signed URL (decoded name, value).
    pub extra_params: Vec<(&'a str, &'a str)>,
}

impl<'a> PresignedRequest<'a> {
    /// The parameters every presign carries, by their query names: all but the optional
    /// security token, the signature and extra parameters.
    pub(crate) fn required_params(&self) -> [(&'static str, &'a str); 6] {
        [
            ("Action", self.action),
            ("X-Amz-Algorithm", self.algorithm),
            ("X-Amz-Credential", self.credential),
            ("X-Amz-Date", self.date),
            ("X-Amz-Expires", self.expires),
            ("X-Amz-SignedHeaders", self.signed_headers),
        ]
    }
}

impl fmt::Debug for PresignedRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The session token is a bearer credential: never print it.
        f.debug_struct("PresignedRequest")
            .field("host", &self.host)
            .field("action", &self.action)
            .field("credential", &self.credential)
            .field("date", &self.date)
            .field("expires", &self.expires)
            .field("security_token", &self.security_token.map(|_| "<redacted>"))
            .field("signed_headers", &self.signed_headers)
            .field("extra_params", &self.extra_params.len())
            .finish_non_exhaustive()
    }
}

/// A presign that passed every check that needs no secret.
#[derive(Debug)]
pub struct CheckedPresign<'a> {
    req: &'a PresignedRequest<'a>,
    access_key_id: &'a str,
    scope: &'a str,
    region: &'a str,
    time: SystemTime,
    expires_at_ms: i64,
}

/// Checks the shape, scope, region, action and time window of `req` at time `now_ms`.
///
/// `max_skew_ms` bounds how far `x-amz-date` may lie in the future of `now_ms`.
pub fn check<'a>(
    req: &'a PresignedRequest<'a>,
    region: &str,
    now_ms: i64,
    max_skew_ms: i64,
) -> Result<CheckedPresign<'a>, SigV4Error> {
    if req.algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm(truncated(req.algorithm)));
    }
    let mut parts = req.credential.split('/');
    let (
        Some(access_key_id),
        Some(scope_date),
        Some(scope_region),
        Some(service),
        Some(term),
        None,
    ) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    )
    else {
        return Err(SigV4Error::MalformedCredential);
    };
    if !valid_key_id(access_key_id) || !valid_region(scope_region) || term != SCOPE_TERMINATOR {
        return Err(SigV4Error::MalformedCredential);
    }
    if service != SERVICE {
        return Err(SigV4Error::WrongService(truncated(service)));
    }
    let date_ms =
        parse_amz_date(req.date).ok_or_else(|| SigV4Error::MalformedDate(truncated(req.date)))?;
    // Invariant: parse_amz_date accepted exactly 16 ASCII bytes, so slicing 8 is in bounds.
    if scope_date != &req.date[..8] {
        return Err(SigV4Error::ScopeDateMismatch {
            scope_date: truncated(scope_date),
            date: req.date.to_owned(),
        });
    }
    if scope_region != region {
        return Err(SigV4Error::WrongRegion {
            expected: region.to_owned(),
            got: scope_region.to_owned(),
        });
    }
    if req.action != CONNECT_ACTION {
        return Err(SigV4Error::WrongAction(truncated(req.action)));
    }
    if req.signed_headers != "host" {
        return Err(SigV4Error::UnsupportedSignedHeaders(truncated(
            req.signed_headers,
        )));
    }
    let expires_ms = parse_expires_ms(req.expires)
        .ok_or_else(|| SigV4Error::InvalidExpires(truncated(req.expires)))?;
    if !valid_host(req.host) {
        return Err(SigV4Error::InvalidHost(truncated(req.host)));
    }
    let expires_at_ms = date_ms + expires_ms;
    if now_ms > expires_at_ms {
        return Err(SigV4Error::Expired {
            expired_at: format_amz_date(expires_at_ms),
            now: format_amz_date(now_ms),
        });
    }
    if date_ms.saturating_sub(now_ms) > max_skew_ms {
        return Err(SigV4Error::NotYetValid {
            date: req.date.to_owned(),
            now: format_amz_date(now_ms),
            max_skew_secs: max_skew_ms / 1000,
        });
    }
    // Invariant: the credential is `access_key_id/scope`, so the scope starts after the id.
    let scope = &req.credential[access_key_id.len() + 1..];
    let time = UNIX_EPOCH + Duration::from_millis(date_ms.unsigned_abs());
    Ok(CheckedPresign {
        req,
        access_key_id,
        scope,
        region: scope_region,
        time,
        expires_at_ms,
    })
}

impl CheckedPresign<'_> {
    /// The access key id named in the credential scope.
    pub fn access_key_id(&self) -> &str {
        self.access_key_id
    }

    /// When the presign stops being valid (`x-amz-date + x-amz-expires`), ms since the epoch.
    pub fn expires_at_ms(&self) -> i64 {
        self.expires_at_ms
    }

    /// Recomputes the signature with `secret` and compares it in constant time.
    pub fn verify(&self, secret: &str) -> Result<(), SigV4Error> {
        let given = self.req.signature.as_bytes();
        if given.len() != 64 || !given.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(SigV4Error::MalformedSignature);
        }
        let string_to_sign = self.string_to_sign();
        let key = generate_signing_key(secret, self.time, self.region, SERVICE);
        let expected = calculate_signature(key, string_to_sign.as_bytes());
        if bool::from(expected.as_bytes().ct_eq(given)) {
            Ok(())
        } else {
            Err(SigV4Error::SignatureMismatch)
        }
    }

    fn string_to_sign(&self) -> String {
        let req = self.req;
        let mut params: Vec<(&str, &str)> = req.required_params().to_vec();
        if let Some(token) = req.security_token {
            params.push(("X-Amz-Security-Token", token));
        }
        params.extend(req.extra_params.iter().copied());
        let mut encoded: Vec<(String, String)> = params
            .into_iter()
            .map(|(k, v)| {
                (
                    utf8_percent_encode(k, SIGV4_ENCODE).to_string(),
                    utf8_percent_encode(v, SIGV4_ENCODE).to_string(),
                )
            })
            .collect();
        encoded.sort();
        let query = encoded
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let canonical_request = format!(
            "GET\n/\n{query}\nhost:{}\n\nhost\n{EMPTY_PAYLOAD_SHA256}",
            req.host
        );
        let hashed = hex::encode(Sha256::digest(canonical_request.as_bytes()));
        format!("{ALGORITHM}\n{}\n{}\n{hashed}", req.date, self.scope)
    }
}

/// Keeps client-provided text in error messages short.
fn truncated(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Access key ids are 1..=128 ASCII letters and digits (AWS's own limit).
pub(crate) fn valid_key_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn valid_region(region: &str) -> bool {
    (1..=64).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn valid_host(host: &str) -> bool {
    // The host goes verbatim into the canonical request; whitespace or control characters
    // would make it ambiguous, and no real host name has them.
    (1..=MAX_HOST_LEN).contains(&host.len()) && host.bytes().all(|b| b.is_ascii_graphic())
}

/// Parses `X-Amz-Expires` to milliseconds. Whole seconds normally; aws-msk-iam-sasl-signer-js
/// signs a fractional value (`543.217`) when the credentials expire within the default 900 s,
/// so a decimal fraction is accepted too (the raw text is what the signature covers).
fn parse_expires_ms(s: &str) -> Option<i64> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, "0"));
    let digits = |t: &str, max: usize| {
        !t.is_empty() && t.len() <= max && t.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(whole, 6) || !digits(fraction, 9) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    // Milliseconds from the first three fraction digits; finer precision is dropped.
    let millis = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |acc, d| acc * 10 + i64::from(d - b'0'));
    let ms = whole * 1000 + millis;
    (1000..=MAX_EXPIRES_SECS * 1000).contains(&ms).then_some(ms)
}

/// Parses `yyyyMMddTHHmmssZ` (years 1970..=9999) to ms since the Unix epoch.
pub(crate) fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        b[range].iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if year < 1970
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

/// Formats ms since the epoch as `yyyyMMddTHHmmssZ` (for messages; clamps before 1970).
pub(crate) fn format_amz_date(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing unwrap is a failing test
mod tests {
    use super::*;

    #[test]
    fn dates_roundtrip_and_match_known_epochs() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20261126T010203Z"), Some(1_795_654_923_000));
        assert_eq!(parse_amz_date("20240229T235959Z"), Some(1_709_251_199_000));
        for bad in [
            "20230229T000000Z",
            "20261326T010203Z",
            "20261100T010203Z",
            "20261126T240000Z",
            "20261126T236000Z",
            "20261126T235960Z",
            "19691231T235959Z",
            "20261126 010203Z",
            "2026112T010203Z",
            "20261126T010203",
            "+0261126T010203Z",
            "2026112６T01020Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
        for ms in [
            0,
            951_782_400_000,
            1_709_251_199_000,
            1_795_654_923_000,
            253_402_300_799_000,
        ] {
            assert_eq!(parse_amz_date(&format_amz_date(ms)), Some(ms));
        }
    }

    /// The string to sign, spelled out by hand from the SigV4 definition: parameters sorted by
    /// encoded name, every reserved character (`/`, `+`, `=`, `:`, space) percent-encoded.
    #[test]
    fn canonical_query_is_sorted_and_encoded() {
        let req = PresignedRequest {
            host: "b-1.example:9098",
            action: CONNECT_ACTION,
            algorithm: ALGORITHM,
            credential: "AKIDEXAMPLE/20261126/us-east-1/kafka-cluster/aws4_request",
            date: "20261126T010203Z",
            expires: "900",
            security_token: Some("a+b/c="),
            signed_headers: "host",
            signature: "",
            extra_params: vec![("Z", "1 2")],
        };
        let checked = check(&req, "us-east-1", 1_795_654_923_000, 0).unwrap();
        let sts = checked.string_to_sign();
        let creq = format!(
            "GET\n/\nAction=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&\
             X-Amz-Credential=AKIDEXAMPLE%2F20261126%2Fus-east-1%2Fkafka-cluster%2Faws4_request&\
             X-Amz-Date=20261126T010203Z&X-Amz-Expires=900&X-Amz-Security-Token=a%2Bb%2Fc%3D&\
             X-Amz-SignedHeaders=host&Z=1%202\nhost:b-1.example:9098\n\nhost\n{EMPTY_PAYLOAD_SHA256}"
        );
        let expected = format!(
            "AWS4-HMAC-SHA256\n20261126T010203Z\n20261126/us-east-1/kafka-cluster/aws4_request\n{}",
            hex::encode(Sha256::digest(creq.as_bytes()))
        );
        assert_eq!(sts, expected);
    }
}
