//! The SASL state of one connection: SaslHandshake, SaslAuthenticate, re-authentication
//! (KIP-368) and session expiry. No sockets and no clock: the caller passes `now_ms`.
//!
//! Only the v1 handshake flow is carried out (SaslAuthenticate requests after the handshake);
//! a v0 handshake is answered the same way, and a client that then sends raw SASL tokens
//! instead of SaslAuthenticate is closed when its token fails to decode as a request.

use std::net::SocketAddr;

use fjord_tenancy::auth::{mechanism_name, msk_iam_response};
use fjord_tenancy::{Authenticator, Identity, Mechanism};
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::error::ConnectionError;

/// The mechanisms offered, in the order listed to clients.
pub const MECHANISMS: &[&str] = &["AWS_MSK_IAM", "OAUTHBEARER", "PLAIN"];

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
        }
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
        let identity = match auth.authenticate(mechanism, &req.auth_bytes, now_ms).await {
            Ok(identity) => identity,
            Err(e) => {
                return failure(ResponseError::SaslAuthenticationFailed, e.to_string(), true);
            }
        };
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
        self.authentications += 1;
        let request_id = Uuid::from_u128(
            self.request_id_seed
                .as_u128()
                .wrapping_add(u128::from(self.authentications)),
        );
        let auth_bytes = if mechanism == Mechanism::AwsMskIam {
            bytes::Bytes::from(msk_iam_response(&request_id.to_string()))
        } else {
            bytes::Bytes::new()
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
