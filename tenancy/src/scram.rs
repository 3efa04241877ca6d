//! SASL SCRAM-SHA-512 (RFC 5802 message formats, SHA-512 as RFC 7677 does SHA-256), server side.
//!
//! Flow for one SaslAuthenticate exchange, driven by the gateway:
//! 1. [`ScramServer::client_first`] parses `n,,n=<user>,r=<nonce>` and returns the user name;
//! 2. the caller looks the user's [`ScramCredential`] up and hands it (or `None`) to
//!    [`ScramServer::server_first`], which answers `r=<nonce>,s=<salt>,i=<iterations>`;
//! 3. [`ScramServer::client_final`] checks `c=`, `r=` and the ClientProof and answers
//!    `v=<ServerSignature>` with the authenticated user name.
//!
//! An unknown user gets a mock credential whose salt is derived from the user name and a server
//! secret, so the answers look the same for existing and missing users (stable salt, same
//! iteration count, failure only at the last step, same message). No SASLprep is applied to names
//! or passwords, as Kafka does not apply it either.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};
use subtle::ConstantTimeEq;

/// The mechanism name in SaslHandshake.
pub const MECHANISM: &str = "SCRAM-SHA-512";
/// Fewest PBKDF2 iterations accepted (Kafka's minimum for SCRAM-SHA-512).
pub const MIN_ITERATIONS: u32 = 4096;
/// Most PBKDF2 iterations accepted (Kafka's maximum), bounding the work a stored credential costs.
pub const MAX_ITERATIONS: u32 = 16384;
/// Iterations for new credentials and for the mock credential of unknown users; keeping the two
/// equal is what makes unknown users indistinguishable.
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// Salt length for new credentials and the mock credential.
pub const SALT_LEN: usize = 32;
/// Bytes of server randomness per exchange (the RFC asks for a fresh, unpredictable nonce).
pub const SERVER_NONCE_LEN: usize = 24;
/// Largest client message accepted; real ones are well under 300 bytes.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Kafka's text for a failed SCRAM authentication, sent as the SaslAuthenticate error message.
pub const INVALID_CREDENTIALS_MESSAGE: &str = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";

const KEY_LEN: usize = 64;

/// A user's stored SCRAM-SHA-512 credential: enough to verify a login, not to recover the
/// password. Serialized with the byte fields in base64.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramCredential {
    /// The PBKDF2 salt.
    #[serde(with = "b64_vec")]
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    #[serde(with = "b64_key")]
    pub stored_key: [u8; KEY_LEN],
    /// `HMAC(SaltedPassword, "Server Key")`.
    #[serde(with = "b64_key")]
    pub server_key: [u8; KEY_LEN],
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .field("keys", &"<redacted>")
            .finish()
    }
}

impl ScramCredential {
    /// Derives the credential for `password` (PBKDF2-HMAC-SHA512).
    pub fn derive(password: &[u8], salt: &[u8], iterations: u32) -> Result<Self, ScramError> {
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::BadIterations(iterations));
        }
        if salt.is_empty() {
            return Err(ScramError::Malformed("the salt must not be empty"));
        }
        let mut salted = [0u8; KEY_LEN];
        // In range per the check above, so non-zero.
        let n = std::num::NonZeroU32::new(iterations).ok_or(ScramError::BadIterations(0))?;
        pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA512, n, salt, password, &mut salted);
        let key = hmac::Key::new(hmac::HMAC_SHA512, &salted);
        let client_key = hmac::sign(&key, b"Client Key");
        Ok(Self {
            salt: salt.to_vec(),
            iterations,
            stored_key: sha512(client_key.as_ref()),
            server_key: to_key(hmac::sign(&key, b"Server Key").as_ref()),
        })
    }

    /// The indistinguishable stand-in for a user that does not exist.
    fn mock(mock_key: &hmac::Key, username: &str) -> Self {
        let tagged = |tag: &[u8]| {
            let mut ctx = hmac::Context::with_key(mock_key);
            ctx.update(tag);
            ctx.update(username.as_bytes());
            to_key(ctx.sign().as_ref())
        };
        let salt = tagged(b"salt\0");
        Self {
            salt: salt[..SALT_LEN].to_vec(),
            iterations: DEFAULT_ITERATIONS,
            stored_key: tagged(b"stored\0"),
            server_key: tagged(b"server\0"),
        }
    }
}

/// Why a SCRAM exchange failed. `Display` is the SaslAuthenticate error message; it never says
/// whether the user exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// Wrong password, unknown user, or a proof that does not verify.
    #[error("{INVALID_CREDENTIALS_MESSAGE}")]
    InvalidCredentials,
    /// A message that does not follow RFC 5802.
    #[error("Invalid SCRAM-SHA-512 message: {0}")]
    Malformed(&'static str),
    /// The client asked for channel binding (`p=`), which Fjord does not offer.
    #[error("Invalid SCRAM-SHA-512 message: channel binding is not supported")]
    ChannelBindingUnsupported,
    /// A mandatory extension (`m=`) or an extension Fjord cannot honour (`tokenauth`).
    #[error("Invalid SCRAM-SHA-512 message: unsupported extension `{0}`")]
    UnsupportedExtension(String),
    /// An authorization identity different from the user name.
    #[error("Invalid SCRAM-SHA-512 message: the authorization id must be the user name")]
    AuthzidMismatch,
    /// `c=` does not repeat the GS2 header of the first message.
    #[error("Invalid SCRAM-SHA-512 message: channel binding data does not match")]
    ChannelBindingMismatch,
    /// `r=` is not the nonce of this exchange.
    #[error("Invalid SCRAM-SHA-512 message: nonce does not match")]
    NonceMismatch,
    /// Iteration count outside [`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`].
    #[error("SCRAM iteration count {0} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}")]
    BadIterations(u32),
    /// Over [`MAX_MESSAGE_LEN`] bytes.
    #[error("Invalid SCRAM-SHA-512 message: longer than {MAX_MESSAGE_LEN} bytes")]
    TooLarge,
    /// A step called out of order, or after a failure.
    #[error("SCRAM-SHA-512 exchange is not expecting this message")]
    OutOfOrder,
}

impl ScramError {
    /// The Kafka error code for the SaslAuthenticate response: ILLEGAL_SASL_STATE (34) for a
    /// message out of order, SASL_AUTHENTICATION_FAILED (58) otherwise.
    pub fn error_code(&self) -> i16 {
        match self {
            Self::OutOfOrder => 34,
            _ => 58,
        }
    }
}

enum State {
    Initial,
    FirstReceived {
        username: String,
        client_first_bare: String,
        gs2_header: String,
        client_nonce: String,
    },
    FirstSent {
        username: String,
        auth_prefix: String,
        gs2_header: String,
        nonce: String,
        /// Length of the client's part of `nonce`, to recognise librdkafka's doubled form.
        client_nonce_len: usize,
        credential: ScramCredential,
        known: bool,
    },
    Done,
}

/// The server side of one SCRAM-SHA-512 exchange.
pub struct ScramServer {
    server_nonce: String,
    mock_key: hmac::Key,
    state: State,
}

impl ScramServer {
    /// A new exchange. `server_nonce` is fresh randomness for this exchange (sent
    /// base64-encoded; passed in so tests are reproducible). `mock_secret` keys the mock
    /// credentials of unknown users: use the same deployment-wide secret on every gateway so that
    /// their salts are stable.
    pub fn new(server_nonce: &[u8; SERVER_NONCE_LEN], mock_secret: &[u8]) -> Self {
        Self {
            server_nonce: B64.encode(server_nonce),
            mock_key: hmac::Key::new(hmac::HMAC_SHA512, mock_secret),
            state: State::Initial,
        }
    }

    /// Parses the client-first message and returns the user name to look up.
    pub fn client_first(&mut self, msg: &[u8]) -> Result<&str, ScramError> {
        if !matches!(self.state, State::Initial) {
            return Err(self.fail(ScramError::OutOfOrder));
        }
        let parsed = parse_client_first(msg).map_err(|e| self.fail(e))?;
        self.state = State::FirstReceived {
            username: parsed.username,
            client_first_bare: parsed.bare,
            gs2_header: parsed.gs2_header,
            client_nonce: parsed.nonce,
        };
        match &self.state {
            State::FirstReceived { username, .. } => Ok(username),
            _ => Err(ScramError::OutOfOrder),
        }
    }

    /// Answers the server-first message, given the user's credential (`None` if the user does
    /// not exist: the exchange continues with a mock credential and fails at the end).
    pub fn server_first(
        &mut self,
        credential: Option<ScramCredential>,
    ) -> Result<Vec<u8>, ScramError> {
        let State::FirstReceived {
            username,
            client_first_bare,
            gs2_header,
            client_nonce,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramError::OutOfOrder);
        };
        let known = credential.is_some();
        let credential =
            credential.unwrap_or_else(|| ScramCredential::mock(&self.mock_key, &username));
        let client_nonce_len = client_nonce.len();
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        let auth_prefix = format!("{client_first_bare},{server_first}");
        self.state = State::FirstSent {
            username,
            auth_prefix,
            gs2_header,
            nonce,
            client_nonce_len,
            credential,
            known,
        };
        Ok(server_first.into_bytes())
    }

    /// Verifies the client-final message; on success returns the server-final message and the
    /// authenticated user name.
    pub fn client_final(&mut self, msg: &[u8]) -> Result<(Vec<u8>, String), ScramError> {
        let State::FirstSent {
            username,
            auth_prefix,
            gs2_header,
            nonce,
            client_nonce_len,
            credential,
            known,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramError::OutOfOrder);
        };
        let parsed = parse_client_final(msg)?;
        if parsed.channel_binding != gs2_header.as_bytes() {
            return Err(ScramError::ChannelBindingMismatch);
        }
        if !nonce_matches(parsed.nonce, &nonce, client_nonce_len) {
            return Err(ScramError::NonceMismatch);
        }
        // The proof covers client-final-without-proof exactly as sent, so a doubled nonce is
        // signed by the client as it appears here and verifies like any other.
        let auth_message = format!("{auth_prefix},{}", parsed.without_proof);
        let stored = hmac::Key::new(hmac::HMAC_SHA512, &credential.stored_key);
        let client_signature = hmac::sign(&stored, auth_message.as_bytes());
        let mut client_key = [0u8; KEY_LEN];
        for (i, b) in client_key.iter_mut().enumerate() {
            *b = parsed.proof[i] ^ client_signature.as_ref()[i];
        }
        let proof_ok = sha512(&client_key).ct_eq(&credential.stored_key);
        if !bool::from(proof_ok & subtle::Choice::from(u8::from(known))) {
            tracing::debug!(known, "SCRAM proof refused");
            return Err(ScramError::InvalidCredentials);
        }
        let server_key = hmac::Key::new(hmac::HMAC_SHA512, &credential.server_key);
        let signature = hmac::sign(&server_key, auth_message.as_bytes());
        Ok((
            format!("v={}", B64.encode(signature.as_ref())).into_bytes(),
            username,
        ))
    }

    fn fail(&mut self, e: ScramError) -> ScramError {
        self.state = State::Done;
        e
    }
}

/// Whether the client-final `r=` is this exchange's nonce: exactly, or in the form librdkafka
/// before 2.6.1 sends (librdkafka issue #4895: it prefixes the whole server `r=` with its own
/// nonce again, giving client_nonce + client_nonce + server_nonce; e.g. Debian's kcat 1.7.1 on
/// librdkafka 2.0.2). Kafka 3.8.1+ only checks that `r=` ends with the server's nonce and older
/// brokers did not check at all; accepting exactly the doubled form is stricter than both while
/// letting those clients in. `nonce` is ASCII (checked in `parse_client_first`, plus base64), so
/// `client_nonce_len` is a character boundary in it; `received` is sliced with `get`, which
/// refuses non-boundaries rather than panicking.
fn nonce_matches(received: &str, nonce: &str, client_nonce_len: usize) -> bool {
    if received == nonce {
        return true;
    }
    received.len() == client_nonce_len + nonce.len()
        && received.get(..client_nonce_len) == nonce.get(..client_nonce_len)
        && received.get(client_nonce_len..) == Some(nonce)
}

struct ClientFirst {
    gs2_header: String,
    bare: String,
    username: String,
    nonce: String,
}

fn parse_client_first(msg: &[u8]) -> Result<ClientFirst, ScramError> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(ScramError::TooLarge);
    }
    let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let (flag, rest) = msg
        .split_once(',')
        .ok_or(ScramError::Malformed("no GS2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramError::ChannelBindingUnsupported),
        _ => return Err(ScramError::Malformed("bad channel binding flag")),
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or(ScramError::Malformed("no GS2 header"))?;
    let gs2_header = &msg[..flag.len() + authzid.len() + 2];
    let mut attrs = bare.split(',');
    let mut first = attrs.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(ScramError::UnsupportedExtension("m".into()));
    }
    let username = first
        .strip_prefix("n=")
        .ok_or(ScramError::Malformed("expected n=<user>"))?;
    let username = unescape_saslname(username)?;
    first = attrs.next().unwrap_or_default();
    let nonce = first
        .strip_prefix("r=")
        .ok_or(ScramError::Malformed("expected r=<nonce>"))?;
    if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(ScramError::Malformed("invalid nonce"));
    }
    for ext in attrs {
        let key = ext.split_once('=').map_or(ext, |(k, _)| k);
        // Kafka's delegation-token extension asks for semantics Fjord does not have.
        if key == "tokenauth" || key.is_empty() {
            return Err(ScramError::UnsupportedExtension(
                key.chars().take(32).collect(),
            ));
        }
    }
    if !authzid.is_empty() {
        let a = authzid
            .strip_prefix("a=")
            .ok_or(ScramError::Malformed("bad authzid"))?;
        if unescape_saslname(a)? != username {
            return Err(ScramError::AuthzidMismatch);
        }
    }
    Ok(ClientFirst {
        gs2_header: gs2_header.to_string(),
        bare: bare.to_string(),
        username,
        nonce: nonce.to_string(),
    })
}

struct ClientFinal<'a> {
    channel_binding: Vec<u8>,
    nonce: &'a str,
    without_proof: &'a str,
    proof: [u8; KEY_LEN],
}

fn parse_client_final(msg: &[u8]) -> Result<ClientFinal<'_>, ScramError> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(ScramError::TooLarge);
    }
    let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let idx = msg.rfind(",p=").ok_or(ScramError::Malformed("no proof"))?;
    let (without_proof, proof) = (&msg[..idx], &msg[idx + 3..]);
    let mut attrs = without_proof.split(',');
    let c = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .ok_or(ScramError::Malformed("expected c="))?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(ScramError::Malformed("expected r="))?;
    let channel_binding = B64
        .decode(c)
        .map_err(|_| ScramError::Malformed("c= is not base64"))?;
    let proof = B64
        .decode(proof)
        .map_err(|_| ScramError::Malformed("p= is not base64"))?;
    let proof: [u8; KEY_LEN] = proof
        .try_into()
        .map_err(|_| ScramError::Malformed("proof has the wrong length"))?;
    Ok(ClientFinal {
        channel_binding,
        nonce,
        without_proof,
        proof,
    })
}

/// Decodes `=2C` and `=3D`; any other `=` is an error (RFC 5802 saslname).
fn unescape_saslname(s: &str) -> Result<String, ScramError> {
    if s.is_empty() {
        return Err(ScramError::Malformed("empty user name"));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i + 1..i + 3) {
            Some("2C") => out.push(','),
            Some("3D") => out.push('='),
            _ => return Err(ScramError::Malformed("invalid escape in user name")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn sha512(data: &[u8]) -> [u8; KEY_LEN] {
    to_key(digest::digest(&digest::SHA512, data).as_ref())
}

/// Copies a SHA-512 or HMAC-SHA512 output. Every caller passes one of those, which are exactly
/// 64 bytes, so the slice cannot be short; zero-padding keeps this panic-free regardless.
fn to_key(b: &[u8]) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    let n = b.len().min(KEY_LEN);
    k[..n].copy_from_slice(&b[..n]);
    k
}

mod b64_vec {
    use super::B64;
    use base64::Engine as _;
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        B64.decode(s).map_err(serde::de::Error::custom)
    }
}

mod b64_key {
    use super::{B64, KEY_LEN};
    use base64::Engine as _;
    pub fn serialize<S: serde::Serializer>(v: &[u8; KEY_LEN], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; KEY_LEN], D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        let v = B64.decode(s).map_err(serde::de::Error::custom)?;
        v.try_into()
            .map_err(|_| serde::de::Error::custom("a SCRAM key must be 64 bytes"))
    }
}

#[cfg(test)]
#[path = "scram_tests.rs"]
mod tests;
