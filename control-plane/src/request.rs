//! What every handler gets ([`Req`]: caller, path and query parameters, time) and the small
//! helpers they share: JSON bodies in and out, pagination tokens.

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::authz::Caller;
use crate::error::{ApiError, ApiResult};
use crate::server::AppState;

/// Most query parameters read.
const MAX_QUERY_PARAMS: usize = 64;

/// Per-request context the authentication middleware leaves in the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    /// The request id (also in `x-amzn-RequestId`).
    pub request_id: String,
    /// The authenticated caller.
    pub caller: Arc<Caller>,
    /// The request time used for every decision.
    pub now_ms: i64,
}

/// The extractor every handler takes.
pub(crate) struct Req {
    /// The authenticated caller.
    pub caller: Arc<Caller>,
    /// The request id.
    pub request_id: String,
    /// The request time.
    pub now_ms: i64,
    params: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

impl Req {
    /// A path parameter (percent-decoded).
    pub fn param(&self, name: &str) -> ApiResult<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::Internal(format!("route has no path parameter {name}")))
    }

    /// A query parameter (percent-decoded); the first if repeated.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An integer query parameter within `range`.
    pub fn query_int(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> ApiResult<Option<i64>> {
        let Some(raw) = self.query(name) else {
            return Ok(None);
        };
        match raw.parse::<i64>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::BadRequest(format!(
                "{name} must be an integer from {} to {}",
                range.start(),
                range.end()
            ))),
        }
    }
}

impl FromRequestParts<AppState> for Req {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ctx = parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .ok_or_else(|| {
                ApiError::Internal("request reached a handler unauthenticated".into())
            })?;
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("invalid path parameter: {e}")))?;
        let params = raw
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let query = parse_query(parts.uri.query().unwrap_or(""))?;
        Ok(Req {
            caller: ctx.caller,
            request_id: ctx.request_id,
            now_ms: ctx.now_ms,
            params,
            query,
        })
    }
}

/// Decodes `a=1&b=2` (percent-decoding; `+` stays `+`, as AWS clients encode spaces as `%20`).
pub(crate) fn parse_query(query: &str) -> ApiResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if out.len() >= MAX_QUERY_PARAMS {
            return Err(ApiError::BadRequest("too many query parameters".into()));
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| ApiError::BadRequest("query parameters must be UTF-8".into()))
        };
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

/// Parses a JSON request body; an empty body is `{}`.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}")))
}

/// A 200 answer with a JSON body.
pub(crate) fn json<T: Serialize>(value: &T) -> ApiResult<Response> {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError::Internal(format!("encoding the response: {e}")))?;
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// An opaque pagination token for "continue after `key`".
pub(crate) fn next_token(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Decodes a token made by [`next_token`].
pub(crate) fn decode_token(token: &str) -> ApiResult<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::BadRequest("invalid nextToken".into()))
}

/// One page of `items` (sorted by `key`) after the token's key, at most `max` long, and the
/// token of the next page.
pub(crate) fn paginate<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> &str,
    token: Option<&str>,
    max: usize,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let after = token.map(decode_token).transpose()?;
    let mut page: Vec<T> = items
        .into_iter()
        .filter(|i| after.as_deref().is_none_or(|a| key(i) > a))
        .take(max + 1)
        .collect();
    let next = if page.len() > max {
        page.truncate(max);
        page.last().map(|last| next_token(key(last)))
    } else {
        None
    };
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_walks_every_item_once() {
        let items: Vec<String> = (0..7).map(|i| format!("c{i}")).collect();
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let (page, next) =
                paginate(items.clone(), |s| s.as_str(), token.as_deref(), 3).expect("page");
            assert!(page.len() <= 3);
            seen.extend(page);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert!(paginate(items, |s| s.as_str(), Some("!!"), 3).is_err());
    }

    #[test]
    fn query_decoding() {
        let q = parse_query("a=1&b=x%20y&c&d=a+b").expect("query");
        assert_eq!(
            q,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "".into()),
                ("d".into(), "a+b".into())
            ]
        );
        assert!(parse_query("a=%FF").is_err());
    }
}
