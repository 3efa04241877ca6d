//! The SASL state of one connection: SaslHandshake, SaslAuthenticate, re-authentication
//! (KIP-368) and session expiry. No sockets and no clock: the caller passes `now_ms`.
//!
//! Only the v1 handshake flow is carried out (SaslAuthenticate requests after the handshake);
//! a v0 handshake is answered the same way, and a client that then sends raw SASL tokens
//! instead of SaslAuthenticate is closed when its token fails to decode as a request.
//!
//! Mechanisms: `AWS_MSK_IAM`, `OAUTHBEARER` and `PLAIN` authenticate an access key in one
//! SaslAuthenticate, and then need `kafka-cluster:Connect` on the cluster (refused as MSK does,
//! "Access denied"). `SCRAM-SHA-512` takes two: the SCRAM user name `<name>` is the principal
//! `user/<name>` of the account that owns the connection's cluster (so a SCRAM user is scoped to
//! one account, like an IAM user), and its credential is that principal's stored
//! `Principal.scram`. An unknown user fails exactly like a wrong password, at the last step.
//! Whatever the mechanism, a re-authentication (KIP-368) must keep the principal and cluster.

use std::net::SocketAddr;

use fjord_tenancy::auth::{mechanism_name, msk_iam_response};
use fjord_tenancy::scram::{ScramError, ScramServer, SERVER_NONCE_LEN};
use fjord_tenancy::{Authenticator, Identity, Mechanism};
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::authz::{Access, PrincipalKind};
use crate::error::ConnectionError;

/// The mechanisms offered, in the order listed to clients.
pub const MECHANISMS: &[&str] = &["AWS_MSK_IAM", "OAUTHBEARER", "PLAIN", "SCRAM-SHA-512"];

/// A SCRAM exchange between its first and final message.
struct ScramExchange {
    server: ScramServer,
    account_id: String,
    cluster_id: Uuid,
}

impl std::fmt::Debug for ScramExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramExchange")
            .field("account_id", &self.account_id)
            .field("cluster_id", &self.cluster_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum State {
    /// Nothing yet.
    Start,
    /// A mechanism was chosen; SaslAuthenticate is next.
    Handshaken(Mechanism),
    /// Authenticated; `reauth` is set by a handshake that starts re-authentication.
    Authenticated {
        identity: Identity,
        mechanism: Mechanism,
        reauth: Option<Mechanism>,
    },
}

/// The authentication state of one connection.
#[derive(Debug)]
pub struct Session {
    /// Seed of the request ids returned to AWS_MSK_IAM clients (ids are passed in, not drawn).
    request_id_seed: Uuid,
    authentications: u64,
    state: State,
    /// The peer's address in Kafka's notation (`/10.0.0.7`), empty when unknown.
    client_host: String,
    /// The cluster the transport named (SNI, listener default); else the authenticator's.
    cluster_hint: Option<Uuid>,
    /// A SCRAM exchange waiting for its final message.
    scram: Option<ScramExchange>,
}

/// The result of a SaslAuthenticate.
#[derive(Debug)]
pub struct AuthOutcome {
    /// The response to send.
    pub response: SaslAuthenticateResponse,
    /// Set when the connection must close after the response; `delayed` failures are answered
    /// only after the configured failure delay.
    pub close: Option<ConnectionError>,
    /// Whether the response must wait for the authentication-failure delay.
    pub delayed: bool,
}

impl Session {
    /// A new, unauthenticated session. `request_id_seed` should be unique per connection.
    pub fn new(request_id_seed: Uuid) -> Self {
        Self {
            request_id_seed,
            authentications: 0,
            state: State::Start,
            client_host: String::new(),
            cluster_hint: None,
            scram: None,
        }
    }

    /// Sets the cluster the connection's transport named (TLS SNI, the listener's default):
    /// SASL logins on this connection are to that cluster.
    pub fn set_cluster_hint(&mut self, cluster: Option<Uuid>) {
        self.cluster_hint = cluster;
    }

    /// The mechanism the next SaslAuthenticate is for (after a handshake), if any.
    pub fn pending_mechanism(&self) -> Option<Mechanism> {
        match &self.state {
            State::Handshaken(m) => Some(*m),
            State::Authenticated { reauth, .. } => *reauth,
            State::Start => None,
        }
    }

    /// The mechanism of the current authentication, if authenticated.
    pub fn mechanism(&self) -> Option<Mechanism> {
        match &self.state {
            State::Authenticated { mechanism, .. } => Some(*mechanism),
            _ => None,
        }
    }

    /// How the authenticated principal is authorized (IAM policies or Kafka ACLs).
    pub fn principal_kind(&self) -> Option<PrincipalKind> {
        self.mechanism().map(PrincipalKind::of)
    }

    /// Records the address the connection comes from; group coordinators report it as the
    /// client host of the members this connection joins.
    pub fn with_peer(mut self, peer: SocketAddr) -> Self {
        // Kafka renders `InetAddress.toString()` with an empty host name: `/ip`. A dual-stack
        // listener sees IPv4 clients as `::ffff:a.b.c.d`; show them as the IPv4 they are.
        self.client_host = format!("/{}", peer.ip().to_canonical());
        self
    }

    /// The peer's address as Kafka's DescribeGroups shows it (`/10.0.0.7`); empty when the
    /// session was created without one.
    pub fn client_host(&self) -> &str {
        &self.client_host
    }

    /// The authenticated identity, if any.
    pub fn identity(&self) -> Option<&Identity> {
        match &self.state {
            State::Authenticated { identity, .. } => Some(identity),
            _ => None,
        }
    }

    /// When the current authentication stops being valid, if it ever does.
    pub fn expires_ms(&self) -> Option<i64> {
        self.identity().and_then(|i| i.expires_ms)
    }

    /// Whether the session is authenticated but its credential has expired.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_ms().is_some_and(|e| now_ms >= e)
    }

    /// Handles a SaslHandshake. Returns the response and, if the connection must close after
    /// it, why.
    pub fn handshake(
        &mut self,
        req: &SaslHandshakeRequest,
    ) -> (SaslHandshakeResponse, Option<ConnectionError>) {
        let offered: Vec<StrBytes> = MECHANISMS
            .iter()
            .map(|m| StrBytes::from_static_str(m))
            .collect();
        let respond = |code: i16| {
            SaslHandshakeResponse::default()
                .with_error_code(code)
                .with_mechanisms(offered.clone())
        };
        let requested = req.mechanism.as_str();
        let Some(mechanism) =
            Mechanism::from_name(requested).filter(|_| MECHANISMS.contains(&requested))
        else {
            let why = ConnectionError::Sasl(format!("unsupported mechanism {requested:?}"));
            return (
                respond(ResponseError::UnsupportedSaslMechanism.code()),
                Some(why),
            );
        };
        match &mut self.state {
            State::Start => {
                self.state = State::Handshaken(mechanism);
                (respond(0), None)
            }
            State::Handshaken(_) => {
                let why = ConnectionError::Sasl("second handshake before authentication".into());
                (respond(ResponseError::IllegalSaslState.code()), Some(why))
            }
            State::Authenticated {
                mechanism: current,
                reauth,
                ..
            } => {
                // KIP-368: re-authentication must use the mechanism of the first one.
                if *current != mechanism {
                    let why = ConnectionError::Sasl(format!(
                        "re-authentication with {requested} after {}",
                        mechanism_name(*current)
                    ));
                    return (
                        respond(ResponseError::UnsupportedSaslMechanism.code()),
                        Some(why),
                    );
                }
                *reauth = Some(mechanism);
                (respond(0), None)
            }
        }
    }

    /// Handles a SaslAuthenticate at `version`, verifying the payload with `auth`.
    pub async fn authenticate(
        &mut self,
        auth: &Authenticator,
        version: i16,
        req: &SaslAuthenticateRequest,
        now_ms: i64,
    ) -> AuthOutcome {
        let mechanism = match &self.state {
            State::Handshaken(m) => *m,
            State::Authenticated {
                reauth: Some(m), ..
            } => *m,
            State::Start | State::Authenticated { reauth: None, .. } => {
                return failure(
                    ResponseError::IllegalSaslState,
                    "SaslAuthenticate without a preceding SaslHandshake".into(),
                    false,
                );
            }
        };
        let (mut identity, server_final) = if mechanism == Mechanism::ScramSha512 {
            match self.scram_step(auth, &req.auth_bytes).await {
                ScramStep::Challenge(bytes) => {
                    let response = SaslAuthenticateResponse::default()
                        .with_auth_bytes(bytes::Bytes::from(bytes));
                    return AuthOutcome {
                        response,
                        close: None,
                        delayed: false,
                    };
                }
                ScramStep::Done(identity, server_final) => (identity, Some(server_final)),
                ScramStep::Failed(code, msg) => return failure(code, msg, true),
            }
        } else {
            match auth.authenticate(mechanism, &req.auth_bytes, now_ms).await {
                Ok(identity) => (identity, None),
                Err(e) => {
                    return failure(ResponseError::SaslAuthenticationFailed, e.to_string(), true);
                }
            }
        };
        if let Some(cluster) = self.cluster_hint {
            identity.cluster_id = cluster;
        }
        if let State::Authenticated {
            identity: previous, ..
        } = &self.state
        {
            if !same_principal(previous, &identity) {
                let msg = format!(
                    "re-authentication as {} does not keep the principal {}",
                    identity.principal, previous.principal
                );
                return failure(ResponseError::SaslAuthenticationFailed, msg, true);
            }
        }
        if PrincipalKind::of(mechanism) == PrincipalKind::Iam {
            // MSK checks kafka-cluster:Connect at login and answers only "Access denied".
            let access =
                Access::load(auth, identity.cluster_id, &identity, PrincipalKind::Iam, "").await;
            if let Err(refused) = access.connect() {
                tracing::info!(principal = %identity.principal, reason = %refused, "login refused");
                return failure(
                    ResponseError::SaslAuthenticationFailed,
                    "Access denied".into(),
                    true,
                );
            }
        }
        self.authentications += 1;
        let request_id = Uuid::from_u128(
            self.request_id_seed
                .as_u128()
                .wrapping_add(u128::from(self.authentications)),
        );
        let auth_bytes = if mechanism == Mechanism::AwsMskIam {
            bytes::Bytes::from(msk_iam_response(&request_id.to_string()))
        } else {
            server_final.map(bytes::Bytes::from).unwrap_or_default()
        };
        let mut response = SaslAuthenticateResponse::default().with_auth_bytes(auth_bytes);
        if version >= 1 {
            // KIP-368: tell the client when to re-authenticate; 0 means never.
            let lifetime = identity.expires_ms.map_or(0, |e| (e - now_ms).max(1));
            response = response.with_session_lifetime_ms(lifetime);
        }
        self.state = State::Authenticated {
            identity,
            mechanism,
            reauth: None,
        };
        AuthOutcome {
            response,
            close: None,
            delayed: false,
        }
    }
}

/// What one SCRAM SaslAuthenticate led to.
enum ScramStep {
    /// The server-first message: the exchange continues.
    Challenge(Vec<u8>),
    /// Authenticated, with the server-final message.
    Done(Identity, Vec<u8>),
    /// Refused: the code and message to answer.
    Failed(ResponseError, String),
}

impl Session {
    /// Runs the next step of a SCRAM exchange: client-first → server-first, then
    /// client-final → server-final and the identity.
    async fn scram_step(&mut self, auth: &Authenticator, msg: &[u8]) -> ScramStep {
        let scram_failed = |e: ScramError| {
            let code = ResponseError::try_from_code(e.error_code())
                .unwrap_or(ResponseError::SaslAuthenticationFailed);
            ScramStep::Failed(code, e.to_string())
        };
        if let Some(mut exchange) = self.scram.take() {
            return match exchange.server.client_final(msg) {
                Ok((server_final, user)) => ScramStep::Done(
                    Identity {
                        account_id: exchange.account_id,
                        principal: format!("user/{user}"),
                        access_key_id: String::new(),
                        cluster_id: exchange.cluster_id,
                        expires_ms: None,
                    },
                    server_final,
                ),
                Err(e) => scram_failed(e),
            };
        }
        // The exchange's one random input: the server nonce (RFC 5802 wants it unpredictable).
        let nonce: [u8; SERVER_NONCE_LEN] = rand::random();
        let mut server = ScramServer::new(&nonce, auth.scram_mock_secret());
        let user = match server.client_first(msg) {
            Ok(u) => u.to_owned(),
            Err(e) => return scram_failed(e),
        };
        let cluster_id = self.cluster_hint.unwrap_or(auth.config().default_cluster);
        let account_id = match auth.cluster_ref(cluster_id).await {
            Ok(Some(c)) => c.account_id.clone(),
            Ok(None) => {
                return ScramStep::Failed(
                    ResponseError::SaslAuthenticationFailed,
                    format!("cluster {cluster_id} does not exist"),
                )
            }
            Err(e) => {
                return ScramStep::Failed(ResponseError::SaslAuthenticationFailed, e.to_string())
            }
        };
        let credential = match auth
            .scram_credential(&account_id, &format!("user/{user}"))
            .await
        {
            Ok(c) => c,
            Err(e) => {
                return ScramStep::Failed(ResponseError::SaslAuthenticationFailed, e.to_string())
            }
        };
        match server.server_first(credential) {
            Ok(first) => {
                self.scram = Some(ScramExchange {
                    server,
                    account_id,
                    cluster_id,
                });
                ScramStep::Challenge(first)
            }
            Err(e) => scram_failed(e),
        }
    }
}

fn same_principal(a: &Identity, b: &Identity) -> bool {
    a.account_id == b.account_id && a.principal == b.principal && a.cluster_id == b.cluster_id
}

fn failure(code: ResponseError, message: String, delayed: bool) -> AuthOutcome {
    let response = SaslAuthenticateResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message.clone())));
    AuthOutcome {
        response,
        close: Some(ConnectionError::Sasl(message)),
        delayed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_host_is_the_peer_ip_in_kafka_notation() {
        let host = |peer: &str| {
            Session::new(Uuid::nil())
                .with_peer(peer.parse().unwrap())
                .client_host()
                .to_owned()
        };
        assert_eq!(host("10.0.0.7:50123"), "/10.0.0.7");
        assert_eq!(host("[2001:db8::1]:9098"), "/2001:db8::1");
        // An IPv4 client seen through a dual-stack listener.
        assert_eq!(host("[::ffff:10.0.0.7]:50123"), "/10.0.0.7");
        assert_eq!(Session::new(Uuid::nil()).client_host(), "");
    }
}
