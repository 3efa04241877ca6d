//! SASL authentication: `AWS_MSK_IAM`, `OAUTHBEARER` (MSK IAM token) and `PLAIN`, verified
//! against the access keys in metadata.
//!
//! [`Authenticator::authenticate`] is a function of (mechanism, payload bytes, now): it does no
//! network I/O of its own besides reading the key from the [`MetadataStore`] (through a short
//! cache), so the gateway's SASL state machine can call it per SaslAuthenticate request. The
//! `Display` text of [`AuthError`] says exactly why a client was refused and is meant to be
//! sent back as the SaslAuthenticate error message; it never contains a secret.
//!
//! Temporary credentials (keys with an expiry, from AssumeRole) must present their session
//! token (`x-amz-security-token` / `X-Amz-Security-Token`), checked with
//! [`crate::session::verify`]; a long-term key presenting one is refused, as is a temporary key
//! over `PLAIN` (which has no place for a token).
//!
//! The authenticator also caches what the gateway authorizes with ([`access`]: principals'
//! policies and SCRAM credentials, cluster ARNs, Kafka ACLs). Everything cached is dropped when
//! the store's auth epoch changes: [`Authenticator::poll_auth_epoch`], run every second by the
//! task of [`Authenticator::ensure_epoch_watcher`], and connections learn of it through
//! [`Authenticator::subscribe_invalidations`] to re-check their credential
//! ([`Authenticator::revalidate`]).

pub mod access;
pub mod acl_codec;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use fjord_metadata::{KeyStatus, MetadataStore};
use subtle::ConstantTimeEq;
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

use crate::acl::AclBinding;
use crate::policy::ClusterRef;
use crate::scram::ScramCredential;
use crate::session::{self, TokenError};
pub use access::PrincipalAccess;

use crate::payload::{self, MskIamPayload, OAuthToken, MSK_IAM_VERSION};
use crate::secrets::{SecretSealer, SecretString};
use crate::sigv4::{self, SigV4Error};

/// Largest SaslAuthenticate payload accepted, checked before any parsing. Real payloads are
/// about 0.5–2 KiB (a session token makes them larger); 8 KiB leaves ample room.
pub const MAX_AUTH_BYTES: usize = 8 * 1024;

/// How long an unsealed key stays cached. Short, so that deactivating or deleting a key takes
/// effect on every gateway within seconds without any invalidation protocol, while a client
/// reconnecting in a loop (librdkafka retries ~20 times a second) costs no store read each time.
const KEY_CACHE_TTL: Duration = Duration::from_secs(10);
/// Bound on cached keys, so a flood of distinct valid keys cannot grow memory without limit.
const KEY_CACHE_CAPACITY: u64 = 100_000;
/// How often the auth epoch is polled by default: a deleted key or a changed policy takes
/// effect on every gateway within about this long.
pub const DEFAULT_EPOCH_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Label of the key derived from the sealing key for SCRAM mock credentials.
const SCRAM_MOCK_LABEL: &[u8] = b"fjord-scram-mock-credential:v1";

/// The SASL mechanisms Fjord accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// `AWS_MSK_IAM`: a signed JSON payload.
    AwsMskIam,
    /// `OAUTHBEARER` carrying an MSK IAM presigned-URL token.
    OAuthBearer,
    /// `PLAIN`: username = access key id, password = secret (dev and tools without IAM plugins).
    Plain,
    /// `SCRAM-SHA-512`: a multi-step exchange driven by the gateway with
    /// [`crate::scram::ScramServer`] and [`Authenticator::scram_credential`];
    /// [`Authenticator::authenticate`] refuses it.
    ScramSha512,
}

impl Mechanism {
    /// Parses a SaslHandshake mechanism name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "AWS_MSK_IAM" => Some(Self::AwsMskIam),
            "OAUTHBEARER" => Some(Self::OAuthBearer),
            "PLAIN" => Some(Self::Plain),
            crate::scram::MECHANISM => Some(Self::ScramSha512),
            _ => None,
        }
    }
}

/// Settings of the authenticator.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Region the signatures must be scoped to.
    pub region: String,
    /// The cluster a connection belongs to when nothing else names one (dev listener).
    pub default_cluster: Uuid,
    /// Largest accepted distance between a signature's date and now, in ms.
    pub max_clock_skew_ms: i64,
}

/// Who an authenticated connection is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Account of the key.
    pub account_id: String,
    /// Principal of the key (e.g. `user/dev`).
    pub principal: String,
    /// The access key id used; empty for a SCRAM login (no access key).
    pub access_key_id: String,
    /// The cluster the connection talks to.
    pub cluster_id: Uuid,
    /// When this authentication stops being valid (signature or credential expiry), if ever.
    pub expires_ms: Option<i64>,
}

impl Identity {
    /// The KIP-368 `session_lifetime_ms` to answer SaslAuthenticate v1+ with: time left until
    /// [`Identity::expires_ms`], at least 1 ms while it lasts; 0 (no limit) if it never expires.
    pub fn session_lifetime_ms(&self, now_ms: i64) -> i64 {
        match self.expires_ms {
            Some(at) => at.saturating_sub(now_ms).max(1),
            None => 0,
        }
    }

    /// Whether a re-authentication (KIP-368) kept the same principal, as Kafka requires.
    pub fn same_principal(&self, other: &Identity) -> bool {
        self.account_id == other.account_id && self.principal == other.principal
    }
}

/// Why authentication failed; the `Display` text is sent to the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The payload could not be parsed.
    #[error("malformed {mechanism} payload: {reason}")]
    Malformed {
        /// Mechanism name.
        mechanism: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The payload exceeds [`MAX_AUTH_BYTES`].
    #[error("{mechanism} payload of {len} bytes exceeds the limit of {max} bytes")]
    PayloadTooLarge {
        /// Mechanism name.
        mechanism: &'static str,
        /// Size received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The `AWS_MSK_IAM` payload has another version than `2020_10_22`.
    #[error("unsupported AWS_MSK_IAM payload version {0:?}, expected \"2020_10_22\"")]
    UnsupportedVersion(String),
    /// The signature was refused (shape, scope, region, action, time window or mismatch).
    #[error(transparent)]
    Signature(#[from] SigV4Error),
    /// No access key with this id exists.
    #[error("unknown access key id {0:?}")]
    UnknownAccessKey(String),
    /// The access key exists but has been deactivated.
    #[error("access key {0:?} is inactive")]
    InactiveAccessKey(String),
    /// The (temporary) access key has expired.
    #[error("access key {0:?} has expired")]
    AccessKeyExpired(String),
    /// `PLAIN`: the password is not the key's secret.
    #[error("wrong secret for access key {0:?}")]
    WrongSecret(String),
    /// The key's stored secret cannot be unsealed (the server's key file does not match).
    #[error("access key {0:?} cannot be verified by this server (secret sealed with another key)")]
    SecretUnavailable(String),
    /// Metadata could not be read.
    #[error("authentication backend unavailable: {0}")]
    Backend(String),
    /// A temporary key was used without its session token.
    #[error("access key {0:?} is temporary and needs its session token (x-amz-security-token)")]
    SessionTokenRequired(String),
    /// A long-term key was used with a session token.
    #[error("access key {0:?} is a long-term key; a session token is not expected with it")]
    SessionTokenNotExpected(String),
    /// The session token does not belong to the key, or has expired.
    #[error("session token of access key {key:?} refused: {source}")]
    SessionToken {
        /// The key.
        key: String,
        /// Why.
        source: TokenError,
    },
    /// A mechanism that [`Authenticator::authenticate`] does not carry out in one step.
    #[error("{0} is not a single-step mechanism")]
    NotSingleStep(&'static str),
    /// A re-validated connection's principal no longer exists or may no longer log in.
    #[error("principal {0} no longer exists or may no longer log in")]
    PrincipalRevoked(String),
}

impl AuthError {
    /// True when the server, not the client, is at fault (metadata unreachable, key file
    /// mismatch): worth logging as an error rather than as a refused login.
    pub fn is_server_fault(&self) -> bool {
        matches!(
            self,
            AuthError::Backend(_) | AuthError::SecretUnavailable(_)
        )
    }
}

/// An access key as the authenticator needs it, with its secret unsealed.
struct KeyRecord {
    account_id: String,
    principal: String,
    status: KeyStatus,
    expires_ms: Option<i64>,
    secret: SecretString,
}

/// Why a key could not be loaded; cloned out of the cache's shared error.
#[derive(Debug, Clone)]
enum LoadError {
    Unknown,
    Unseal,
    Backend(String),
}

/// Verifies SASL payloads against the access keys in metadata, and caches the data
/// authorization needs.
pub struct Authenticator {
    store: Arc<dyn MetadataStore>,
    sealer: SecretSealer,
    config: AuthConfig,
    keys: moka::future::Cache<String, Arc<KeyRecord>>,
    access: access::AccessCache,
    /// The auth epoch last seen in the store (`None` before the first poll).
    seen_epoch: parking_lot::Mutex<Option<i64>>,
    /// Raised after every invalidation; connections watch it to re-check their credentials.
    generation: watch::Sender<u64>,
    poll_interval: Duration,
    watcher: OnceLock<tokio::task::JoinHandle<()>>,
    scram_mock_secret: [u8; 32],
}

impl Drop for Authenticator {
    fn drop(&mut self) {
        if let Some(task) = self.watcher.get() {
            task.abort();
        }
    }
}

impl Authenticator {
    /// Creates an authenticator.
    pub fn new(store: Arc<dyn MetadataStore>, sealer: SecretSealer, config: AuthConfig) -> Self {
        let keys = moka::future::Cache::builder()
            .max_capacity(KEY_CACHE_CAPACITY)
            .time_to_live(KEY_CACHE_TTL)
            .build();
        // Derived from the deployment-wide sealing key so that every gateway answers an unknown
        // user with the same mock salt: a per-process secret would let a client behind a load
        // balancer tell unknown users (salt changes between gateways) from known ones.
        let scram_mock_secret = sealer.derive_key(SCRAM_MOCK_LABEL);
        Self {
            store,
            sealer,
            config,
            keys,
            access: access::AccessCache::new(),
            seen_epoch: parking_lot::Mutex::new(None),
            generation: watch::channel(0).0,
            poll_interval: DEFAULT_EPOCH_POLL_INTERVAL,
            watcher: OnceLock::new(),
            scram_mock_secret,
        }
    }

    /// Sets how often [`Authenticator::ensure_epoch_watcher`]'s task polls the auth epoch
    /// (default [`DEFAULT_EPOCH_POLL_INTERVAL`]). Each poll is one small store read per gateway;
    /// shorter intervals revoke faster.
    pub fn with_epoch_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Sets the secret that keys the mock SCRAM credentials of unknown users. By default it is
    /// derived from the sealer's key ([`SecretSealer::derive_key`]), hence the same on every
    /// gateway sharing the sealing key, so an unknown user's salt does not change between
    /// gateways (a changing salt would tell unknown users from known ones). Override only to
    /// share another deployment-wide secret.
    pub fn with_scram_mock_secret(mut self, secret: [u8; 32]) -> Self {
        self.scram_mock_secret = secret;
        self
    }

    /// The secret for [`crate::scram::ScramServer::new`].
    pub fn scram_mock_secret(&self) -> &[u8] {
        &self.scram_mock_secret
    }

    /// The sealer (for session tokens).
    pub fn sealer(&self) -> &SecretSealer {
        &self.sealer
    }

    /// Starts, once per authenticator, the background task that calls
    /// [`Authenticator::poll_auth_epoch`] every poll interval. The task holds only a weak
    /// reference and ends with the authenticator. Must be called within a tokio runtime.
    pub fn ensure_epoch_watcher(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let interval = self.poll_interval;
        self.watcher.get_or_init(|| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(auth) = weak.upgrade() else { return };
                    if let Err(e) = auth.poll_auth_epoch().await {
                        tracing::warn!(error = %e, "polling the auth epoch failed");
                    }
                }
            })
        });
    }

    /// Reads the store's auth epoch; when it changed since the last poll, drops every cached
    /// key, principal, cluster and ACL list and tells the subscribers
    /// ([`Authenticator::subscribe_invalidations`]). Returns whether it changed. The first poll
    /// only records the epoch (nothing cached can predate the process's first read).
    pub async fn poll_auth_epoch(&self) -> Result<bool, AuthError> {
        let epoch = self
            .store
            .auth_epoch()
            .await
            .map_err(|e| AuthError::Backend(e.to_string()))?;
        let changed = {
            let mut seen = self.seen_epoch.lock();
            let changed = seen.is_some_and(|s| s != epoch);
            *seen = Some(epoch);
            changed
        };
        if changed {
            tracing::info!(
                epoch,
                "auth epoch changed; dropping cached credentials and permissions"
            );
            self.invalidate_all();
        }
        Ok(changed)
    }

    /// Drops everything cached and tells the subscribers.
    pub fn invalidate_all(&self) {
        self.keys.invalidate_all();
        self.access.invalidate_all();
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// A receiver that changes after every invalidation: a connection re-checks its credential
    /// with [`Authenticator::revalidate`] when it does.
    pub fn subscribe_invalidations(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Re-checks, against the store, that an authenticated identity may still be used at
    /// `now_ms`: its access key still exists, is active, unexpired and still names the same
    /// principal; for a SCRAM login, that the principal still has a SCRAM credential.
    pub async fn revalidate(&self, identity: &Identity, now_ms: i64) -> Result<(), AuthError> {
        if identity.access_key_id.is_empty() {
            let p = self
                .principal_access(&identity.account_id, &identity.principal)
                .await?;
            return match (p.exists, &p.scram) {
                (true, Some(_)) => Ok(()),
                _ => Err(AuthError::PrincipalRevoked(identity.principal.clone())),
            };
        }
        let key = self.load_key(&identity.access_key_id).await?;
        check_usable(&identity.access_key_id, &key, now_ms)?;
        if key.account_id != identity.account_id || key.principal != identity.principal {
            return Err(AuthError::PrincipalRevoked(identity.principal.clone()));
        }
        Ok(())
    }

    /// The principal's policies and SCRAM credential (cached).
    pub async fn principal_access(
        &self,
        account_id: &str,
        principal: &str,
    ) -> Result<Arc<PrincipalAccess>, AuthError> {
        self.access
            .principal(&self.store, account_id, principal)
            .await
    }

    /// The SCRAM credential of `principal`, if it exists and has one (`None` is treated like a
    /// wrong password by the SCRAM exchange).
    pub async fn scram_credential(
        &self,
        account_id: &str,
        principal: &str,
    ) -> Result<Option<ScramCredential>, AuthError> {
        let p = self.principal_access(account_id, principal).await?;
        Ok(p.scram.clone().filter(|_| p.exists))
    }

    /// The ARN parts of a cluster (cached); `None` if it does not exist.
    pub async fn cluster_ref(
        &self,
        cluster_id: Uuid,
    ) -> Result<Option<Arc<ClusterRef>>, AuthError> {
        self.access.cluster(&self.store, cluster_id).await
    }

    /// The Kafka ACLs of a cluster (cached; fails if a stored binding does not decode).
    pub async fn cluster_acls(&self, cluster_id: Uuid) -> Result<Arc<Vec<AclBinding>>, AuthError> {
        self.access.acls(&self.store, cluster_id).await
    }

    /// Drops this process's cached ACLs of a cluster after it changed them.
    pub async fn invalidate_acls(&self, cluster_id: Uuid) {
        self.access.invalidate_acls(cluster_id).await;
    }

    /// The metadata store (for ACL changes made by the gateway).
    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    /// The authenticator's settings.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Drops a key from this process's cache so a change to it (deactivation, deletion) takes
    /// effect here immediately rather than within the cache TTL.
    pub async fn invalidate_key(&self, access_key_id: &str) {
        self.keys.invalidate(access_key_id).await;
    }

    /// Verifies one SaslAuthenticate payload at time `now_ms`.
    pub async fn authenticate(
        &self,
        mechanism: Mechanism,
        auth_bytes: &[u8],
        now_ms: i64,
    ) -> Result<Identity, AuthError> {
        let span = tracing::debug_span!(
            "sasl_authenticate",
            mechanism = mechanism_name(mechanism),
            access_key_id = tracing::field::Empty,
        );
        async move {
            let result = self.authenticate_inner(mechanism, auth_bytes, now_ms).await;
            match &result {
                Ok(id) => {
                    tracing::Span::current().record("access_key_id", id.access_key_id.as_str());
                    tracing::debug!(principal = %id.principal, account = %id.account_id, "authenticated");
                }
                Err(e) => tracing::debug!(error = %e, "authentication refused"),
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn authenticate_inner(
        &self,
        mechanism: Mechanism,
        auth_bytes: &[u8],
        now_ms: i64,
    ) -> Result<Identity, AuthError> {
        if auth_bytes.len() > MAX_AUTH_BYTES {
            return Err(AuthError::PayloadTooLarge {
                mechanism: mechanism_name(mechanism),
                len: auth_bytes.len(),
                max: MAX_AUTH_BYTES,
            });
        }
        match mechanism {
            Mechanism::AwsMskIam => {
                let payload = MskIamPayload::parse(auth_bytes)?;
                self.verify_presign(&payload.presigned(), now_ms).await
            }
            Mechanism::OAuthBearer => {
                let token = OAuthToken::parse(auth_bytes)?;
                self.verify_presign(&token.presigned()?, now_ms).await
            }
            Mechanism::ScramSha512 => Err(AuthError::NotSingleStep(crate::scram::MECHANISM)),
            Mechanism::Plain => {
                let (access_key_id, password) = payload::parse_plain(auth_bytes)?;
                let key = self.load_key(access_key_id).await?;
                // Check the secret before revealing anything about the key's state.
                let matches: bool = key
                    .secret
                    .expose()
                    .as_bytes()
                    .ct_eq(password.as_bytes())
                    .into();
                if !matches {
                    return Err(AuthError::WrongSecret(access_key_id.to_owned()));
                }
                check_usable(access_key_id, &key, now_ms)?;
                if key.expires_ms.is_some() {
                    return Err(AuthError::SessionTokenRequired(access_key_id.to_owned()));
                }
                Ok(self.identity(access_key_id, &key, None))
            }
        }
    }

    async fn verify_presign(
        &self,
        req: &sigv4::PresignedRequest<'_>,
        now_ms: i64,
    ) -> Result<Identity, AuthError> {
        // Everything that needs no secret is refused before the store is touched.
        let checked = sigv4::check(
            req,
            &self.config.region,
            now_ms,
            self.config.max_clock_skew_ms,
        )?;
        let access_key_id = checked.access_key_id();
        let key = self.load_key(access_key_id).await?;
        // The signature first: only a holder of the secret learns that a key is inactive.
        checked.verify(key.secret.expose())?;
        check_usable(access_key_id, &key, now_ms)?;
        let expires_ms = match (key.expires_ms, req.security_token) {
            (Some(key_expiry), Some(token)) => {
                let token_expiry = session::verify(&self.sealer, token, access_key_id, now_ms)
                    .map_err(|source| AuthError::SessionToken {
                        key: access_key_id.to_owned(),
                        source,
                    })?;
                // KIP-368: the session ends with the credential, whichever part expires first.
                key_expiry.min(token_expiry).min(checked.expires_at_ms())
            }
            (Some(_), None) => {
                return Err(AuthError::SessionTokenRequired(access_key_id.to_owned()))
            }
            (None, Some(_)) => {
                return Err(AuthError::SessionTokenNotExpected(access_key_id.to_owned()))
            }
            (None, None) => checked.expires_at_ms(),
        };
        Ok(self.identity(access_key_id, &key, Some(expires_ms)))
    }

    fn identity(&self, access_key_id: &str, key: &KeyRecord, expires_ms: Option<i64>) -> Identity {
        Identity {
            account_id: key.account_id.clone(),
            principal: key.principal.clone(),
            access_key_id: access_key_id.to_owned(),
            // The gateway's session replaces this with the cluster its transport named (TLS SNI,
            // else the listener's default); the signed host does not choose a cluster yet.
            cluster_id: self.config.default_cluster,
            expires_ms,
        }
    }

    async fn load_key(&self, access_key_id: &str) -> Result<Arc<KeyRecord>, AuthError> {
        let store = &self.store;
        let sealer = &self.sealer;
        let loaded = self
            .keys
            // Concurrent logins with the same key share one store read.
            .try_get_with_by_ref(access_key_id, async move {
                let key = store
                    .get_access_key(access_key_id)
                    .await
                    .map_err(|e| LoadError::Backend(e.to_string()))?
                    .ok_or(LoadError::Unknown)?;
                let secret = sealer
                    .unseal(&key.id, &key.sealed_secret)
                    .map_err(|_| LoadError::Unseal)?;
                Ok::<_, LoadError>(Arc::new(KeyRecord {
                    account_id: key.account_id,
                    principal: key.principal,
                    status: key.status,
                    expires_ms: key.expires_ms,
                    secret,
                }))
            })
            .await;
        loaded.map_err(|e| match &*e {
            LoadError::Unknown => AuthError::UnknownAccessKey(access_key_id.to_owned()),
            LoadError::Unseal => {
                tracing::error!(
                    access_key_id,
                    "stored secret cannot be unsealed with this server's key file"
                );
                AuthError::SecretUnavailable(access_key_id.to_owned())
            }
            LoadError::Backend(msg) => AuthError::Backend(msg.clone()),
        })
    }
}

fn check_usable(access_key_id: &str, key: &KeyRecord, now_ms: i64) -> Result<(), AuthError> {
    if key.status != KeyStatus::Active {
        return Err(AuthError::InactiveAccessKey(access_key_id.to_owned()));
    }
    if key.expires_ms.is_some_and(|at| now_ms >= at) {
        return Err(AuthError::AccessKeyExpired(access_key_id.to_owned()));
    }
    Ok(())
}

/// The SASL name of a mechanism.
pub fn mechanism_name(m: Mechanism) -> &'static str {
    match m {
        Mechanism::AwsMskIam => "AWS_MSK_IAM",
        Mechanism::OAuthBearer => "OAUTHBEARER",
        Mechanism::Plain => "PLAIN",
        Mechanism::ScramSha512 => crate::scram::MECHANISM,
    }
}

/// The server's answer to a successful `AWS_MSK_IAM` authentication.
pub fn msk_iam_response(request_id: &str) -> Vec<u8> {
    serde_json::json!({"version": MSK_IAM_VERSION, "request-id": request_id})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests;
