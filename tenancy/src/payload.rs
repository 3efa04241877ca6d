//! Parsing of the SASL payloads into their signed parameters. Pure functions of the bytes: no
//! clock, no store. Every function here must return an error, never panic, on any input.

use std::borrow::Cow;

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use percent_encoding::percent_decode_str;
use serde::Deserialize;

use crate::auth::AuthError;
use crate::sigv4::PresignedRequest;

/// The only `AWS_MSK_IAM` payload version clients send (and accept back).
pub(crate) const MSK_IAM_VERSION: &str = "2020_10_22";

/// Tokens are base64url without padding; accept padded ones too, since padding carries no
/// information and some hand-rolled signers keep it.
const TOKEN_BASE64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn malformed(mechanism: &'static str, reason: impl Into<String>) -> AuthError {
    AuthError::Malformed {
        mechanism,
        reason: reason.into(),
    }
}

/// The `AWS_MSK_IAM` JSON object (keys lower-case, values not URI-encoded).
#[derive(Deserialize)]
pub(crate) struct MskIamPayload {
    version: String,
    host: String,
    action: String,
    #[serde(rename = "x-amz-algorithm")]
    algorithm: String,
    #[serde(rename = "x-amz-credential")]
    credential: String,
    #[serde(rename = "x-amz-date")]
    date: String,
    #[serde(rename = "x-amz-expires")]
    expires: String,
    #[serde(rename = "x-amz-security-token", default)]
    security_token: Option<String>,
    #[serde(rename = "x-amz-signedheaders")]
    signed_headers: String,
    #[serde(rename = "x-amz-signature")]
    signature: String,
}

/// The host an `AWS_MSK_IAM` payload was signed for, if the payload parses (the signature is
/// not checked here: only use it together with a successful authentication of the same bytes).
pub fn msk_iam_signed_host(bytes: &[u8]) -> Option<String> {
    MskIamPayload::parse(bytes).ok().map(|p| p.host)
}

impl MskIamPayload {
    /// Parses the JSON and checks its version.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, AuthError> {
        const M: &str = "AWS_MSK_IAM";
        let text = std::str::from_utf8(bytes).map_err(|_| malformed(M, "payload is not UTF-8"))?;
        let payload: Self =
            serde_json::from_str(text).map_err(|e| malformed(M, format!("invalid JSON: {e}")))?;
        if payload.version != MSK_IAM_VERSION {
            return Err(AuthError::UnsupportedVersion(
                payload.version.chars().take(32).collect(),
            ));
        }
        Ok(payload)
    }

    /// The signed parameters (the host is the one the client dialled and signed).
    pub(crate) fn presigned(&self) -> PresignedRequest<'_> {
        PresignedRequest {
            host: &self.host,
            action: &self.action,
            algorithm: &self.algorithm,
            credential: &self.credential,
            date: &self.date,
            expires: &self.expires,
            security_token: self.security_token.as_deref(),
            signed_headers: &self.signed_headers,
            signature: &self.signature,
            extra_params: Vec::new(),
        }
    }
}

/// The MSK IAM presigned URL carried by an `OAUTHBEARER` token, decoded.
pub(crate) struct OAuthToken {
    host: String,
    params: Vec<(String, String)>,
}

impl OAuthToken {
    /// Parses an RFC 7628 client initial response and decodes the bearer token in it.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, AuthError> {
        const M: &str = "OAUTHBEARER";
        let text = std::str::from_utf8(bytes).map_err(|_| malformed(M, "payload is not UTF-8"))?;
        let (gs2, kvpairs) = text
            .split_once('\x01')
            .ok_or_else(|| malformed(M, "missing \\x01 after the GS2 header"))?;
        check_gs2_header(gs2)?;
        let mut auth = None;
        for pair in kvpairs.split('\x01').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| malformed(M, "key/value pair without '='"))?;
            if key == "auth" {
                if auth.is_some() {
                    return Err(malformed(M, "more than one auth value"));
                }
                auth = Some(value);
            }
        }
        let auth = auth.ok_or_else(|| malformed(M, "no auth=Bearer <token> value"))?;
        let token = match auth.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(malformed(M, "auth value is not \"Bearer <token>\"")),
        };
        let url = TOKEN_BASE64
            .decode(token)
            .map_err(|_| malformed(M, "token is not base64url"))?;
        let url = String::from_utf8(url).map_err(|_| malformed(M, "token URL is not UTF-8"))?;
        Self::parse_url(&url)
    }

    /// Splits `https://<host>/?<query>` into the host and decoded query parameters.
    fn parse_url(url: &str) -> Result<Self, AuthError> {
        const M: &str = "OAUTHBEARER";
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| malformed(M, "token URL does not start with https://"))?;
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_query) = rest.split_at(authority_end);
        let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
        if path != "/" && !path.is_empty() {
            return Err(malformed(M, "token URL path is not /"));
        }
        if authority.contains('@') || authority.is_empty() {
            return Err(malformed(M, "token URL has no valid host"));
        }
        // A signer drops the default port from the host it signs (aws-sigv4, botocore).
        let host = authority
            .strip_suffix(":443")
            .unwrap_or(authority)
            .to_owned();
        let mut params: Vec<(String, String)> = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode_component(name)?;
            let value = decode_component(value)?;
            if params.iter().any(|(n, _)| *n == name) {
                return Err(malformed(
                    M,
                    format!("duplicate query parameter {:?}", truncate(&name)),
                ));
            }
            params.push((name, value));
        }
        Ok(Self { host, params })
    }

    /// The signed parameters. `User-Agent` is appended after signing by every MSK signer and
    /// so is not part of the signature; every other unknown parameter is treated as signed.
    pub(crate) fn presigned(&self) -> Result<PresignedRequest<'_>, AuthError> {
        let mut req = PresignedRequest {
            host: &self.host,
            ..PresignedRequest::default()
        };
        let mut seen_signature = false;
        for (name, value) in &self.params {
            let value = value.as_str();
            match name.as_str() {
                "Action" => req.action = value,
                "X-Amz-Algorithm" => req.algorithm = value,
                "X-Amz-Credential" => req.credential = value,
                "X-Amz-Date" => req.date = value,
                "X-Amz-Expires" => req.expires = value,
                "X-Amz-Security-Token" => req.security_token = Some(value),
                "X-Amz-SignedHeaders" => req.signed_headers = value,
                "X-Amz-Signature" => {
                    req.signature = value;
                    seen_signature = true;
                }
                "User-Agent" => {}
                other => req.extra_params.push((other, value)),
            }
        }
        for (name, value) in req.required_params() {
            if value.is_empty() {
                return Err(malformed("OAUTHBEARER", format!("token URL lacks {name}")));
            }
        }
        if !seen_signature {
            return Err(malformed("OAUTHBEARER", "token URL lacks X-Amz-Signature"));
        }
        Ok(req)
    }
}

/// Accepts `n,,`, `y,,` and `n,a=<authzid>,` (the authzid is informational here: the identity
/// comes from the signature). Channel binding (`p=`) cannot be offered over Kafka's SASL.
fn check_gs2_header(gs2: &str) -> Result<(), AuthError> {
    const M: &str = "OAUTHBEARER";
    let mut fields = gs2.splitn(3, ',');
    let (Some(cb), Some(authzid), Some(rest)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(malformed(M, "GS2 header is not \"n,[a=<authzid>],\""));
    };
    if cb != "n" && cb != "y" {
        return Err(malformed(M, "channel binding is not supported"));
    }
    if !(authzid.is_empty() || authzid.starts_with("a=")) || !rest.is_empty() {
        return Err(malformed(M, "GS2 header is not \"n,[a=<authzid>],\""));
    }
    Ok(())
}

/// Percent-decodes a query component. `+` stays `+`: SigV4 signers encode a space as `%20`
/// and a plus as `%2B`, so form decoding would corrupt tokens that contain a raw `+`.
fn decode_component(s: &str) -> Result<String, AuthError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| malformed("OAUTHBEARER", "query parameter is not UTF-8"))
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Parses a `PLAIN` payload `[authzid] \0 authcid \0 password` into (access key id, secret).
pub(crate) fn parse_plain(bytes: &[u8]) -> Result<(&str, &str), AuthError> {
    const M: &str = "PLAIN";
    let text = std::str::from_utf8(bytes).map_err(|_| malformed(M, "payload is not UTF-8"))?;
    let mut fields = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(malformed(
            M,
            "expected [authzid]\\0<access key id>\\0<secret>",
        ));
    };
    if user.is_empty() || password.is_empty() {
        return Err(malformed(M, "access key id and secret must not be empty"));
    }
    if !crate::sigv4::valid_key_id(user) {
        return Err(malformed(
            M,
            "the user name must be an access key id (ASCII letters and digits)",
        ));
    }
    if !authzid.is_empty() && authzid != user {
        return Err(malformed(
            M,
            "authorization identity must be empty or the access key id",
        ));
    }
    Ok((user, password))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing unwrap is a failing test
mod tests {
    use super::*;

    #[test]
    fn gs2_headers() {
        assert!(check_gs2_header("n,,").is_ok());
        assert!(check_gs2_header("y,,").is_ok());
        assert!(check_gs2_header("n,a=user,").is_ok());
        for bad in ["", "n", "n,", "p=tls-unique,,", "n,b=x,", "n,,x"] {
            assert!(check_gs2_header(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn url_parsing_keeps_plus_and_drops_default_port() {
        let t = OAuthToken::parse_url("https://h.example:443/?A=a+b%2B&B=&C").unwrap();
        assert_eq!(t.host, "h.example");
        assert_eq!(
            t.params,
            vec![
                ("A".into(), "a+b+".into()),
                ("B".into(), String::new()),
                ("C".into(), String::new())
            ]
        );
        assert!(OAuthToken::parse_url("https://h/?A=1&A=2").is_err());
        assert!(OAuthToken::parse_url("http://h/?A=1").is_err());
        assert!(OAuthToken::parse_url("https://u@h/?A=1").is_err());
        assert!(OAuthToken::parse_url("https://h/x?A=1").is_err());
        assert!(OAuthToken::parse_url("https://h/?A=%FF").is_err());
    }

    #[test]
    fn plain_fields() {
        assert_eq!(parse_plain(b"\0AKIA\0secret").unwrap(), ("AKIA", "secret"));
        assert_eq!(
            parse_plain(b"AKIA\0AKIA\0secret").unwrap(),
            ("AKIA", "secret")
        );
        for bad in [
            &b"AKIA\0secret"[..],
            b"\0\0secret",
            b"\0AKIA\0",
            b"other\0AKIA\0s",
            b"\0a\0b\0c",
        ] {
            assert!(parse_plain(bad).is_err());
        }
    }
}
