//! The socket-free core: one request frame in, what to send (and whether to close) out.
//!
//! Order of checks, so that nothing a client sends before authenticating reaches a decoder
//! that allocates from wire counts: the fixed prefix (api key, version, correlation id), the
//! version range, the authentication state, then the header and body decoders.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, RequestHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError;
use tracing::{debug, info_span, warn, Instrument};

use crate::error::ConnectionError;
use crate::frame::{encode_response, unsupported_frame, Prefix};
use crate::handlers::Ctx;
use crate::server::Gateway;
use crate::session::Session;
use crate::versions;

/// What the connection must do after a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send this frame and read the next request.
    Respond(Bytes),
    /// Send nothing (a produce with acks=0) and read the next request.
    Silent,
    /// Optionally send a frame (after `delay`), then close the connection.
    Close {
        /// The last response, if any.
        frame: Option<Bytes>,
        /// How long to wait before sending it (failed authentication).
        delay: Duration,
        /// Why, for the log.
        reason: ConnectionError,
    },
}

impl Outcome {
    fn close(reason: ConnectionError) -> Self {
        Outcome::Close {
            frame: None,
            delay: Duration::ZERO,
            reason,
        }
    }

    fn from_encoded(r: Result<Bytes, ConnectionError>) -> Self {
        match r {
            Ok(frame) => Outcome::Respond(frame),
            Err(e) => Outcome::close(e),
        }
    }
}

/// Decodes a request body, turning failure into a close.
pub(crate) fn decode<T: Decodable>(
    api: ApiKey,
    version: i16,
    body: &mut Bytes,
) -> Result<T, ConnectionError> {
    T::decode(body, version).map_err(|e| ConnectionError::Decode {
        api: format!("{api:?}"),
        version,
        reason: e.to_string(),
    })
}

impl Gateway {
    /// The largest frame this session may send next.
    pub fn frame_limit(&self, session: &Session) -> usize {
        if session.identity().is_some() {
            self.config.max_frame_bytes
        } else {
            self.config.max_unauthenticated_frame_bytes
        }
    }

    /// Handles one request frame (the bytes after the size prefix) at time `now_ms`.
    pub async fn handle_frame(&self, session: &mut Session, frame: Bytes, now_ms: i64) -> Outcome {
        let prefix = match Prefix::parse(&frame) {
            Ok(p) => p,
            Err(e) => return Outcome::close(e),
        };
        let Ok(api) = ApiKey::try_from(prefix.api_key) else {
            let frame = session
                .identity()
                .is_some()
                .then(|| unsupported_frame(prefix.correlation_id));
            let reason = ConnectionError::UnknownApi(prefix.api_key);
            return Outcome::Close {
                frame,
                delay: Duration::ZERO,
                reason,
            };
        };
        let version = prefix.api_version;
        if !versions::is_supported(api, version) {
            if api == ApiKey::ApiVersions {
                // The client retries with a version from the ranges in this v0 response.
                let body = versions::api_versions_response(Some(ResponseError::UnsupportedVersion));
                return Outcome::from_encoded(encode_response(
                    api,
                    0,
                    prefix.correlation_id,
                    &body,
                ));
            }
            let reason = ConnectionError::UnsupportedVersion {
                api: format!("{api:?}"),
                version,
            };
            let frame = session
                .identity()
                .is_some()
                .then(|| unsupported_frame(prefix.correlation_id));
            return Outcome::Close {
                frame,
                delay: Duration::ZERO,
                reason,
            };
        }
        let is_sasl = matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate);
        if !is_sasl && api != ApiKey::ApiVersions {
            if session.identity().is_none() {
                return Outcome::close(ConnectionError::Unauthenticated(format!("{api:?}")));
            }
            if session.expired(now_ms) {
                return Outcome::close(ConnectionError::SessionExpired);
            }
        }
        let mut body = frame;
        let header: RequestHeader =
            match RequestHeader::decode(&mut body, api.request_header_version(version)) {
                Ok(h) => h,
                Err(e) => {
                    return Outcome::close(ConnectionError::Decode {
                        api: format!("{api:?} header"),
                        version,
                        reason: e.to_string(),
                    })
                }
            };
        let span = info_span!(
            "request",
            api = ?api,
            version,
            correlation_id = header.correlation_id,
            client_id = header.client_id.as_deref().unwrap_or(""),
        );
        async move {
            debug!("request");
            let outcome = self
                .dispatch(session, api, version, &header, body, now_ms)
                .await;
            if let Outcome::Close { reason, .. } = &outcome {
                warn!(%reason, "closing connection");
            }
            outcome
        }
        .instrument(span)
        .await
    }

    async fn dispatch(
        &self,
        session: &mut Session,
        api: ApiKey,
        version: i16,
        header: &RequestHeader,
        mut body: Bytes,
        now_ms: i64,
    ) -> Outcome {
        let correlation_id = header.correlation_id;
        match api {
            ApiKey::ApiVersions => {
                // The request carries only the client's name; still decode it, so that garbage
                // is refused like in any other request.
                if let Err(e) = decode::<ApiVersionsRequest>(api, version, &mut body) {
                    return Outcome::close(e);
                }
                let resp = versions::api_versions_response(None);
                Outcome::from_encoded(encode_response(api, version, correlation_id, &resp))
            }
            ApiKey::SaslHandshake => {
                let req: SaslHandshakeRequest = match decode(api, version, &mut body) {
                    Ok(r) => r,
                    Err(e) => return Outcome::close(e),
                };
                let (resp, close) = session.handshake(&req);
                let frame = encode_response(api, version, correlation_id, &resp);
                match (frame, close) {
                    (Ok(frame), None) => Outcome::Respond(frame),
                    (Ok(frame), Some(reason)) => Outcome::Close {
                        frame: Some(frame),
                        delay: Duration::ZERO,
                        reason,
                    },
                    (Err(e), _) => Outcome::close(e),
                }
            }
            ApiKey::SaslAuthenticate => {
                let req: SaslAuthenticateRequest = match decode(api, version, &mut body) {
                    Ok(r) => r,
                    Err(e) => return Outcome::close(e),
                };
                let out = session
                    .authenticate(&self.auth, version, &req, now_ms)
                    .await;
                let frame = match encode_response(api, version, correlation_id, &out.response) {
                    Ok(f) => f,
                    Err(e) => return Outcome::close(e),
                };
                match out.close {
                    None => {
                        if let Some(id) = session.identity() {
                            tracing::info!(principal = %id.principal, cluster = %id.cluster_id, "authenticated");
                        }
                        Outcome::Respond(frame)
                    }
                    Some(reason) => {
                        let delay = if out.delayed {
                            self.config.auth_failure_delay
                        } else {
                            Duration::ZERO
                        };
                        Outcome::Close {
                            frame: Some(frame),
                            delay,
                            reason,
                        }
                    }
                }
            }
            _ => {
                let Some(identity) = session.identity() else {
                    return Outcome::close(ConnectionError::Unauthenticated(format!("{api:?}")));
                };
                let ctx = Ctx {
                    gw: self,
                    cluster: identity.cluster_id,
                    version,
                    now_ms,
                    client_id: header.client_id.as_deref().unwrap_or(""),
                    client_host: session.client_host(),
                };
                self.handle_authenticated(ctx, api, correlation_id, body)
                    .await
            }
        }
    }
}
