//! The error type of the control plane and its one mapping to the wire.
//!
//! REST-JSON operations (MSK's and Fjord's own) answer AWS's REST-JSON error shape: the error
//! code in the `x-amzn-ErrorType` header and `{"message": …}` in the body, with the status the
//! botocore model gives the code, so boto3 raises a `ClientError` with that code. STS answers
//! its XML `ErrorResponse` instead (see [`ApiError::sts_code`]).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fjord_gateway::topics::TopicError;
use fjord_metadata::MetadataError;

use crate::sigv4::SigV4Error;

/// Why a control-plane request failed. The `Display` text is the message sent to the client,
/// except for [`ApiError::Internal`], whose detail is only logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A malformed or invalid request (400 `BadRequestException`).
    #[error("{0}")]
    BadRequest(String),
    /// The request's signature or credentials could not be validated (401
    /// `UnauthorizedException`).
    #[error("{0}")]
    Unauthorized(#[from] SigV4Error),
    /// The caller's policies do not allow the request (403 `ForbiddenException`).
    #[error("{0}")]
    Forbidden(String),
    /// The named resource does not exist, or belongs to another account (404
    /// `NotFoundException`).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (409 `ConflictException`).
    #[error("{0}")]
    Conflict(String),
    /// A topic of that name exists already (409 `TopicExistsException`).
    #[error("{0}")]
    TopicExists(String),
    /// A rate or concurrency limit refused the request (429 `TooManyRequestsException`).
    #[error("{0}")]
    TooManyRequests(String),
    /// A dependency failed or is momentarily unable to serve (503
    /// `ServiceUnavailableException`); retrying may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// A failure of Fjord itself (500 `InternalServerErrorException`); the detail is logged,
    /// the client gets a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result alias of this crate's handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The HTTP status of the REST-JSON answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::TopicExists(_) => StatusCode::CONFLICT,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The REST-JSON error code (`x-amzn-ErrorType`), one of the botocore kafka model's
    /// exception shapes.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BadRequestException",
            Self::Unauthorized(_) => "UnauthorizedException",
            Self::Forbidden(_) => "ForbiddenException",
            Self::NotFound(_) => "NotFoundException",
            Self::Conflict(_) => "ConflictException",
            Self::TopicExists(_) => "TopicExistsException",
            Self::TooManyRequests(_) => "TooManyRequestsException",
            Self::Unavailable(_) => "ServiceUnavailableException",
            Self::Internal(_) => "InternalServerErrorException",
        }
    }

    /// The STS (query protocol) error code and HTTP status, as STS itself uses them.
    pub fn sts_code(&self) -> (&'static str, StatusCode) {
        match self {
            Self::BadRequest(_) => ("ValidationError", StatusCode::BAD_REQUEST),
            Self::Unauthorized(e) => match e {
                SigV4Error::UnknownKey | SigV4Error::InactiveKey => {
                    ("InvalidClientTokenId", StatusCode::FORBIDDEN)
                }
                SigV4Error::ExpiredKey | SigV4Error::ExpiredToken => {
                    ("ExpiredToken", StatusCode::BAD_REQUEST)
                }
                SigV4Error::SignatureMismatch
                | SigV4Error::WrongRegion { .. }
                | SigV4Error::WrongService { .. } => {
                    ("SignatureDoesNotMatch", StatusCode::FORBIDDEN)
                }
                SigV4Error::Skew { .. } => ("RequestExpired", StatusCode::BAD_REQUEST),
                _ => ("IncompleteSignature", StatusCode::BAD_REQUEST),
            },
            Self::Forbidden(_) => ("AccessDenied", StatusCode::FORBIDDEN),
            Self::NotFound(_) => ("NoSuchEntity", StatusCode::NOT_FOUND),
            Self::Conflict(_) | Self::TopicExists(_) => {
                ("EntityAlreadyExists", StatusCode::CONFLICT)
            }
            Self::TooManyRequests(_) => ("Throttling", StatusCode::BAD_REQUEST),
            Self::Unavailable(_) => ("ServiceUnavailable", StatusCode::SERVICE_UNAVAILABLE),
            Self::Internal(_) => ("InternalFailure", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The message sent to the client: the error's text, except that internal details stay in
    /// the log.
    pub fn client_message(&self) -> String {
        match self {
            Self::Internal(_) => "internal error; see the control plane's log".to_string(),
            other => other.to_string(),
        }
    }

    /// Logs the error at the level its kind deserves (failures of Fjord loudly, refusals of
    /// the client quietly).
    pub fn log(&self) {
        match self {
            Self::Internal(detail) => tracing::error!(error = %detail, "request failed"),
            Self::Unavailable(detail) => tracing::warn!(error = %detail, "request failed"),
            other => tracing::info!(code = other.code(), error = %other, "request refused"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let body = serde_json::json!({ "message": self.client_message() }).to_string();
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert("x-amzn-ErrorType", HeaderValue::from_static(self.code()));
        response
    }
}

impl From<MetadataError> for ApiError {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::AlreadyExists { .. } => Self::Conflict(e.to_string()),
            MetadataError::NotFound { .. } => Self::NotFound(e.to_string()),
            MetadataError::Conflict(_) => Self::Conflict(format!(
                "{e}; another request changed the same object, retry"
            )),
            MetadataError::Backend(_) => Self::Unavailable(format!("metadata store: {e}")),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<TopicError> for ApiError {
    fn from(e: TopicError) -> Self {
        match e {
            TopicError::AlreadyExists(_) => Self::TopicExists(e.to_string()),
            TopicError::UnknownTopic(_) | TopicError::UnknownTopicId(_) => {
                Self::NotFound(e.to_string())
            }
            TopicError::InvalidName(_)
            | TopicError::InvalidPartitions(_)
            | TopicError::InvalidReplicaAssignment(_)
            | TopicError::InvalidConfig(_)
            | TopicError::PolicyViolation(_)
            | TopicError::InvalidRequest(_) => Self::BadRequest(e.to_string()),
            TopicError::NoLiveNodes { .. } => Self::Unavailable(e.to_string()),
            TopicError::Contended { .. } => Self::Conflict(e.to_string()),
            TopicError::Metadata(m) => m.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_follow_the_botocore_model() {
        let cases = [
            (ApiError::BadRequest("x".into()), 400, "BadRequestException"),
            (
                ApiError::Unauthorized(SigV4Error::UnknownKey),
                401,
                "UnauthorizedException",
            ),
            (ApiError::Forbidden("x".into()), 403, "ForbiddenException"),
            (ApiError::NotFound("x".into()), 404, "NotFoundException"),
            (ApiError::Conflict("x".into()), 409, "ConflictException"),
            (
                ApiError::TopicExists("x".into()),
                409,
                "TopicExistsException",
            ),
            (
                ApiError::TooManyRequests("x".into()),
                429,
                "TooManyRequestsException",
            ),
            (
                ApiError::Internal("secret detail".into()),
                500,
                "InternalServerErrorException",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert_eq!(e.code(), code);
        }
        let internal = ApiError::Internal("secret detail".into());
        assert!(!internal.client_message().contains("secret"));
    }

    #[test]
    fn topic_errors_map_to_client_errors() {
        let e: ApiError = TopicError::AlreadyExists("t".into()).into();
        assert_eq!(e.code(), "TopicExistsException");
        let e: ApiError = TopicError::UnknownTopic("t".into()).into();
        assert_eq!(e.code(), "NotFoundException");
        let e: ApiError = TopicError::InvalidConfig("bad".into()).into();
        assert_eq!(e.code(), "BadRequestException");
        let e: ApiError = MetadataError::Backend("down".into()).into();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
