//! The socket-free core: one request frame in, what to send (and whether to close) out.
//!
//! Order of checks, so that nothing a client sends before authenticating reaches a decoder
//! that allocates from wire counts: the fixed prefix (api key, version, correlation id), the
//! version range, the authentication state, then the header and body decoders.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fjord_tenancy::{Identity, Mechanism};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;
use tracing::{debug, info_span, warn, Instrument};
use uuid::Uuid;

use crate::authz::{Access, PrincipalKind};
use crate::error::ConnectionError;
use crate::frame::{encode_response, response_header_version, unsupported_frame, Prefix};
use crate::handlers::Ctx;
use crate::quota::{wire, ClusterEntry, ConnectionSlot, Refusal};
use crate::server::Gateway;
use crate::session::Session;
use crate::transport::PeerIdentity;
use crate::versions;

/// Longest throttle: a larger debt is paid over several requests.
pub const MAX_THROTTLE: Duration = Duration::from_secs(10);

/// What a connection holds besides its SASL [`Session`]: what the transport established, the
/// identity it alone authenticated (mutual TLS), and the connection's slot in its cluster's
/// connection limit.
#[derive(Debug, Default)]
pub struct ConnState {
    /// What the transport established (listener, SNI, client certificate).
    pub peer: PeerIdentity,
    transport_identity: Option<Identity>,
    slot: Option<ConnectionSlot>,
    entry: Option<Arc<ClusterEntry>>,
}

impl ConnState {
    /// State for a connection whose transport established `peer`.
    pub fn new(peer: PeerIdentity) -> Self {
        Self {
            peer,
            ..Self::default()
        }
    }

    /// The identity the transport authenticated (mutual TLS), if any.
    pub fn transport_identity(&self) -> Option<&Identity> {
        self.transport_identity.as_ref()
    }

    /// The identity requests run as: SASL's, else the transport's.
    pub fn identity<'a>(&'a self, session: &'a Session) -> Option<&'a Identity> {
        session.identity().or(self.transport_identity.as_ref())
    }

    /// Whether the connection holds a slot of its cluster's connection limit.
    pub fn admitted(&self) -> bool {
        self.slot.is_some()
    }
}

/// What the connection must do after a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send this frame and read the next request.
    Respond(Bytes),
    /// Send nothing (a produce with acks=0) and read the next request.
    Silent,
    /// The request exceeded a quota: send `frame` (its `throttle_time_ms` says how long), then
    /// read nothing until `mute` has passed since `from`, as a Kafka broker mutes a throttled
    /// channel (KIP-219). Clients back off by themselves; the mute holds those that do not to
    /// the rate.
    Throttled {
        /// The response, absent for a produce with acks=0.
        frame: Option<Bytes>,
        /// How long the connection reads nothing, counted from `from`.
        mute: Duration,
        /// When the request was charged. Pipelined requests are charged one after the other,
        /// each with the debt so far, so their mutes overlap: the connection waits until the
        /// latest deadline, not for the sum of them.
        from: tokio::time::Instant,
    },
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

/// Decodes a request body, turning failure into a close. Public for the benchmarks
/// (`benches/protocol.rs`), which measure the handlers' decode through it.
pub fn decode<T: Decodable>(
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
        self.frame_limit_on(session, &ConnState::default())
    }

    /// The largest frame the connection may send next.
    pub fn frame_limit_on(&self, session: &Session, conn: &ConnState) -> usize {
        if conn.identity(session).is_some() {
            self.config.max_frame_bytes
        } else {
            self.config.max_unauthenticated_frame_bytes
        }
    }

    /// Handles one request frame (the bytes after the size prefix) at time `now_ms`, for a
    /// connection without transport information (as from [`Gateway::serve`]); the connection
    /// slot taken at authentication is released on return.
    pub async fn handle_frame(&self, session: &mut Session, frame: Bytes, now_ms: i64) -> Outcome {
        self.handle_frame_on(session, &mut ConnState::default(), frame, now_ms)
            .await
    }

    /// Counts the connection against `cluster`'s connection limits (once per connection).
    pub async fn admit_connection(
        &self,
        conn: &mut ConnState,
        cluster: Uuid,
        now_ms: i64,
    ) -> Result<(), Refusal> {
        if conn.slot.is_some() {
            return Ok(());
        }
        let entry = match self.quotas.cluster(cluster, now_ms).await {
            Ok(Some(e)) => e,
            Ok(None) => return Err(Refusal::UnknownCluster(cluster)),
            Err(e) => {
                // A metadata outage must not lock every client out; limits resume after it.
                warn!(%cluster, error = %e, "cluster lookup failed; connection admitted unlimited");
                return Ok(());
            }
        };
        conn.slot = Some(self.quotas.admit(&entry, now_ms)?);
        conn.entry = Some(entry);
        Ok(())
    }

    /// Everything that follows the transport handshake and precedes the first request: admits
    /// the connection to the cluster its transport names (SNI, listener default), and
    /// authenticates mutual-TLS (and dangerous unauthenticated) connections as
    /// `User:<CN>` (`User:ANONYMOUS`) in the account owning that cluster.
    pub async fn establish(&self, conn: &mut ConnState, now_ms: i64) -> Result<(), Refusal> {
        let transport_auth = conn.peer.transport_authenticated();
        let cluster = match conn.peer.cluster_hint() {
            Some(c) => c,
            None if transport_auth => self.auth.config().default_cluster,
            None => return Ok(()),
        };
        self.admit_connection(conn, cluster, now_ms).await?;
        if transport_auth {
            let entry = match &conn.entry {
                Some(e) => e.clone(),
                None => match self.quotas.cluster(cluster, now_ms).await {
                    Ok(Some(e)) => e,
                    _ => return Err(Refusal::UnknownCluster(cluster)),
                },
            };
            let principal = conn
                .peer
                .principal()
                .unwrap_or_else(|| "User:ANONYMOUS".to_owned());
            conn.transport_identity = Some(Identity {
                account_id: entry.cluster.account_id.clone(),
                principal,
                access_key_id: String::new(),
                cluster_id: cluster,
                expires_ms: None,
            });
        }
        Ok(())
    }

    /// Handles one request frame (the bytes after the size prefix) of connection `conn` at
    /// time `now_ms`.
    pub async fn handle_frame_on(
        &self,
        session: &mut Session,
        conn: &mut ConnState,
        frame: Bytes,
        now_ms: i64,
    ) -> Outcome {
        let parsed = match self.preamble(session, conn, frame, now_ms) {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        let span = parsed.span();
        async move {
            debug!("request");
            let outcome = match parsed.api {
                ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => {
                    self.dispatch(session, conn, &parsed, now_ms).await
                }
                _ => {
                    self.dispatch_authenticated(session, conn, parsed, now_ms, None)
                        .await
                }
            };
            log_close(&outcome);
            outcome
        }
        .instrument(span)
        .await
    }

    /// Handles a request that changes nothing in the connection's state (anything but
    /// ApiVersions and SASL), so that several can run at once on one connection (see
    /// [`crate::pipeline`]). Answers a SASL or ApiVersions frame by closing the connection:
    /// callers route those through [`Gateway::handle_frame_on`]. A produce drops `sequenced`
    /// once its storage nodes have fixed its order (any other request when it is answered).
    pub async fn handle_frame_shared(
        &self,
        session: &Session,
        conn: &ConnState,
        frame: Bytes,
        now_ms: i64,
        sequenced: Option<oneshot::Sender<()>>,
    ) -> Outcome {
        let parsed = match self.preamble(session, conn, frame, now_ms) {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        if matches!(
            parsed.api,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        ) {
            return Outcome::close(ConnectionError::Sasl(format!(
                "{:?} cannot run alongside other requests",
                parsed.api
            )));
        }
        let span = parsed.span();
        async move {
            debug!("request");
            let outcome = self
                .dispatch_authenticated(session, conn, parsed, now_ms, sequenced)
                .await;
            log_close(&outcome);
            outcome
        }
        .instrument(span)
        .await
    }

    /// The checks every frame passes before its API's handler: a known API at a supported
    /// version, authenticated unless it is ApiVersions or SASL, a session not expired, and a
    /// header that decodes. `Err` is the answer to give instead.
    fn preamble(
        &self,
        session: &Session,
        conn: &ConnState,
        frame: Bytes,
        now_ms: i64,
    ) -> Result<Parsed, Outcome> {
        let frame_len = frame.len() + 4;
        let prefix = Prefix::parse(&frame).map_err(Outcome::close)?;
        let Ok(api) = ApiKey::try_from(prefix.api_key) else {
            let frame = conn
                .identity(session)
                .is_some()
                .then(|| unsupported_frame(prefix.correlation_id));
            let reason = ConnectionError::UnknownApi(prefix.api_key);
            return Err(Outcome::Close {
                frame,
                delay: Duration::ZERO,
                reason,
            });
        };
        let version = prefix.api_version;
        if !versions::is_supported(api, version) {
            if api == ApiKey::ApiVersions {
                // The client retries with a version from the ranges in this v0 response.
                let body = versions::api_versions_response(Some(ResponseError::UnsupportedVersion));
                return Err(Outcome::from_encoded(encode_response(
                    api,
                    0,
                    prefix.correlation_id,
                    &body,
                )));
            }
            let reason = ConnectionError::UnsupportedVersion {
                api: format!("{api:?}"),
                version,
            };
            let frame = conn
                .identity(session)
                .is_some()
                .then(|| unsupported_frame(prefix.correlation_id));
            return Err(Outcome::Close {
                frame,
                delay: Duration::ZERO,
                reason,
            });
        }
        let is_sasl = matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate);
        if !is_sasl && api != ApiKey::ApiVersions {
            if conn.identity(session).is_none() {
                return Err(Outcome::close(ConnectionError::Unauthenticated(format!(
                    "{api:?}"
                ))));
            }
            if session.expired(now_ms) {
                return Err(Outcome::close(ConnectionError::SessionExpired));
            }
        }
        let mut body = frame;
        let header = RequestHeader::decode(&mut body, api.request_header_version(version))
            .map_err(|e| {
                Outcome::close(ConnectionError::Decode {
                    api: format!("{api:?} header"),
                    version,
                    reason: e.to_string(),
                })
            })?;
        Ok(Parsed {
            api,
            version,
            header,
            body,
            frame_len,
        })
    }

    /// ApiVersions and SASL: the requests that change the connection's state.
    async fn dispatch(
        &self,
        session: &mut Session,
        conn: &mut ConnState,
        parsed: &Parsed,
        now_ms: i64,
    ) -> Outcome {
        let (api, version) = (parsed.api, parsed.version);
        let correlation_id = parsed.header.correlation_id;
        let mut body = parsed.body.clone();
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
                let (resp, close) = match listener_handshake(conn, &req) {
                    Some(refused) => refused,
                    None => {
                        let (mut resp, close) = session.handshake(&req);
                        // Offer only what this listener allows.
                        if let Some(offered) = conn.peer.mechanisms() {
                            resp.mechanisms =
                                offered.into_iter().map(StrBytes::from_static_str).collect();
                        }
                        (resp, close)
                    }
                };
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
                // The login's cluster: TLS SNI, else the host an AWS_MSK_IAM payload was signed
                // for (clients sign the name they dialled), else the listener's default. The
                // host is trusted only because the same bytes must pass SigV4 just below.
                if conn.peer.sni_cluster.is_none()
                    && session.pending_mechanism() == Some(Mechanism::AwsMskIam)
                {
                    if let Some(cluster) = fjord_tenancy::msk_iam_signed_host(&req.auth_bytes)
                        .and_then(|host| self.cluster_from_host(&host))
                    {
                        session.set_cluster_hint(Some(cluster));
                    }
                }
                let mut out = session
                    .authenticate(&self.auth, version, &req, now_ms)
                    .await;
                if out.close.is_none() {
                    if let Some(cluster) = session.identity().map(|i| i.cluster_id) {
                        if let Err(msg) = self.after_sasl(conn, cluster, now_ms).await {
                            out.response = SaslAuthenticateResponse::default()
                                .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                                .with_error_message(Some(StrBytes::from_string(msg.clone())));
                            out.close = Some(ConnectionError::Sasl(msg));
                            out.delayed = true;
                        }
                    }
                }
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
            _ => Outcome::close(ConnectionError::Sasl(format!(
                "{api:?} is not a connection-state request"
            ))),
        }
    }

    /// Every API but ApiVersions and SASL: authorized for the connection's principal, counted
    /// against the cluster's quotas, then handled.
    async fn dispatch_authenticated(
        &self,
        session: &Session,
        conn: &ConnState,
        parsed: Parsed,
        now_ms: i64,
        sequenced: Option<oneshot::Sender<()>>,
    ) -> Outcome {
        let Parsed {
            api,
            version,
            header,
            body,
            frame_len,
        } = parsed;
        let correlation_id = header.correlation_id;
        let Some(identity) = conn.identity(session) else {
            return Outcome::close(ConnectionError::Unauthenticated(format!("{api:?}")));
        };
        let cluster = identity.cluster_id;
        // SASL access-key logins are authorized by IAM policies; SCRAM and the
        // transport's identities (mutual TLS) by Kafka ACLs.
        let kind = session.principal_kind().unwrap_or(PrincipalKind::Acl);
        let access = Access::load(&self.auth, cluster, identity, kind, session.client_host()).await;
        let entry = self.cluster_entry(cluster, now_ms).await;
        let charged_at = tokio::time::Instant::now();
        let mut throttle = entry.as_ref().map_or(0, |e| {
            self.quotas
                .on_request(e, api, version, &body, frame_len, now_ms)
        });
        let ctx = Ctx {
            gw: self,
            cluster,
            version,
            now_ms,
            client_id: header.client_id.as_deref().unwrap_or(""),
            client_host: session.client_host(),
            peer: &conn.peer,
            access: &access,
        };
        let outcome = self
            .handle_authenticated(ctx, api, correlation_id, body, sequenced)
            .await;
        if let (Some(e), Outcome::Respond(frame)) = (&entry, &outcome) {
            throttle = throttle.max(self.quotas.on_response(e, api, version, frame, now_ms));
        }
        throttled(outcome, api, version, throttle, charged_at)
    }

    /// Checks a successful SASL authentication for `cluster` against the transport: a
    /// connection whose TLS SNI named a cluster may only authenticate for that cluster (a
    /// credential signed for another cluster's host is not replayable here), and the
    /// connection is admitted to the cluster's connection limits. The error is the message
    /// for the client.
    async fn after_sasl(
        &self,
        conn: &mut ConnState,
        cluster: Uuid,
        now_ms: i64,
    ) -> Result<(), String> {
        if let Some(named) = conn.peer.sni_cluster {
            if named != cluster {
                warn!(sni_cluster = %named, %cluster, "authenticated for another cluster than the TLS server name");
                return Err(format!(
                    "Access denied: the credential is for cluster {cluster}, not {named} named by TLS SNI"
                ));
            }
        }
        match self.admit_connection(conn, cluster, now_ms).await {
            Ok(()) => Ok(()),
            // MSK's words, which clients show to users.
            Err(r @ (Refusal::Connections { .. } | Refusal::Rate { .. })) => {
                Err(format!("Too many connects ({r})"))
            }
            Err(r) => Err(format!("Access denied ({r})")),
        }
    }

    /// The quota entry of `cluster` (loaded on first use, limits kept fresh).
    async fn cluster_entry(&self, cluster: Uuid, now_ms: i64) -> Option<Arc<ClusterEntry>> {
        match self.quotas.cluster(cluster, now_ms).await {
            Ok(found) => found,
            Err(e) => {
                warn!(%cluster, error = %e, "cluster lookup failed; request not metered");
                None
            }
        }
    }
}

/// Refuses a SaslHandshake the listener does not allow: any on a connection the transport
/// authenticated, and mechanisms the listener does not offer. `None` lets the session handle
/// it.
fn listener_handshake(
    conn: &ConnState,
    req: &SaslHandshakeRequest,
) -> Option<(SaslHandshakeResponse, Option<ConnectionError>)> {
    let offered = conn.peer.mechanisms()?;
    let listed = offered
        .iter()
        .map(|m| StrBytes::from_static_str(m))
        .collect();
    let resp = SaslHandshakeResponse::default().with_mechanisms(listed);
    let requested = req.mechanism.as_str();
    if conn.peer.transport_authenticated() {
        let why = ConnectionError::Sasl(format!(
            "SaslHandshake ({requested}) on a listener authenticated by TLS"
        ));
        return Some((
            resp.with_error_code(ResponseError::IllegalSaslState.code()),
            Some(why),
        ));
    }
    if !conn.peer.allows_mechanism(requested) {
        let why = ConnectionError::Sasl(format!(
            "mechanism {requested:?} is not offered on this listener"
        ));
        return Some((
            resp.with_error_code(ResponseError::UnsupportedSaslMechanism.code()),
            Some(why),
        ));
    }
    None
}

/// Puts a throttle of `throttle_ms` into a response (its `throttle_time_ms`, raised, never
/// lowered) and turns it into [`Outcome::Throttled`]; other outcomes pass unchanged.
pub(crate) fn throttled(
    outcome: Outcome,
    api: ApiKey,
    version: i16,
    throttle_ms: u64,
    from: tokio::time::Instant,
) -> Outcome {
    if throttle_ms == 0 {
        return outcome;
    }
    let mute = Duration::from_millis(throttle_ms).min(MAX_THROTTLE);
    let ms = i32::try_from(mute.as_millis()).unwrap_or(i32::MAX);
    match outcome {
        Outcome::Respond(frame) => {
            let hv = response_header_version(api, version);
            let Some(at) = wire::throttle_offset(api, version, hv, &frame) else {
                return Outcome::Throttled {
                    frame: Some(frame),
                    mute,
                    from,
                };
            };
            // The frame was just encoded and is not shared, so this does not copy.
            let mut buf = frame
                .try_into_mut()
                .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
            wire::raise_throttle(&mut buf, at, ms);
            debug!(throttle_ms = ms, "request throttled");
            Outcome::Throttled {
                frame: Some(buf.freeze()),
                mute,
                from,
            }
        }
        Outcome::Silent => Outcome::Throttled {
            frame: None,
            mute,
            from,
        },
        other => other,
    }
}

/// A frame past [`Gateway::preamble`]'s checks.
struct Parsed {
    api: ApiKey,
    version: i16,
    header: RequestHeader,
    /// The request body, after the header.
    body: Bytes,
    /// The frame's size on the wire, prefix included (for the byte quotas).
    frame_len: usize,
}

impl Parsed {
    fn span(&self) -> tracing::Span {
        info_span!(
            "request",
            api = ?self.api,
            version = self.version,
            correlation_id = self.header.correlation_id,
            client_id = self.header.client_id.as_deref().unwrap_or(""),
        )
    }
}

fn log_close(outcome: &Outcome) {
    if let Outcome::Close { reason, .. } = outcome {
        warn!(%reason, "closing connection");
    }
}
