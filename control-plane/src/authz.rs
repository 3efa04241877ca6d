//! Who is calling ([`Caller`], from [`authenticate`]) and what they may do.
//!
//! Every request is SigV4-verified against an access key from the store; the key's principal
//! must still exist, and its inline policies decide every operation with IAM's logic (explicit
//! Deny wins, then Allow, default deny), evaluated by `fjord_tenancy::policy`. Nothing is
//! cached: a key or principal deleted or changed takes effect on the next request.

use fjord_metadata::{KeyStatus, MetadataStore};
use fjord_tenancy::policy::{eval, Action, ClusterRef, Decision, PolicySet, Resource};
use fjord_tenancy::session::{self, TokenError};
use fjord_tenancy::SecretSealer;

use crate::error::{ApiError, ApiResult};
use crate::sigv4::{self, ReceivedRequest, SigV4Error};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller's account.
    pub account_id: String,
    /// The principal the key authenticates as (`user/<name>` or `role/<name>`).
    pub principal: String,
    /// The access key that signed the request.
    pub access_key_id: String,
    /// The principal's policies.
    pub policies: PolicySet,
    /// For temporary credentials, when they expire.
    pub session_expires_ms: Option<i64>,
}

impl Caller {
    /// The caller's IAM ARN (`arn:aws:iam::<account>:user/<name>`).
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{}:{}", self.account_id, self.principal)
    }

    /// Requires the caller's policies to allow `action` on `resource`.
    pub fn require(&self, action: &str, resource: &str) -> ApiResult<()> {
        match eval::evaluate(self.policies.policies(), action, resource) {
            Decision::Allow(_) => Ok(()),
            Decision::ExplicitDeny(statement) => Err(ApiError::Forbidden(format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} with an explicit deny in {statement}",
                self.arn()
            ))),
            Decision::ImplicitDeny => Err(ApiError::Forbidden(format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action",
                self.arn()
            ))),
        }
    }

    /// Requires the `kafka-cluster:*` actions of a request and their MSK prerequisites
    /// (Connect, DescribeTopic, …): the same check the gateway makes for the Kafka API.
    pub fn require_kafka(
        &self,
        cluster: &ClusterRef,
        wanted: &[(Action, Resource<'_>)],
    ) -> ApiResult<()> {
        self.policies
            .check_all(cluster, wanted)
            .map_err(|denied| ApiError::Forbidden(format!("User: {} is {denied}", self.arn())))
    }

    /// Whether [`Caller::require_kafka`] would pass (for filtering lists).
    pub fn allows_kafka(&self, cluster: &ClusterRef, wanted: &[(Action, Resource<'_>)]) -> bool {
        self.policies.check_all(cluster, wanted).is_ok()
    }
}

/// Verifies a request's SigV4 signature and loads its caller.
///
/// Order: the cheap checks that need no secret ([`sigv4::check`]), then the key lookup and the
/// signature, and only then the key's status, expiry and session token, so that nothing about a
/// key is revealed to a request that was not signed with its secret.
pub async fn authenticate(
    store: &dyn MetadataStore,
    sealer: &SecretSealer,
    req: &ReceivedRequest<'_>,
    region: &str,
    service: &'static str,
    now_ms: i64,
    max_skew_ms: i64,
) -> ApiResult<Caller> {
    let checked = sigv4::check(req, region, service, now_ms, max_skew_ms)?;
    let key_id = checked.authorization.access_key_id.as_str();
    let key = store
        .get_access_key(key_id)
        .await?
        .ok_or(SigV4Error::UnknownKey)?;
    let secret = sealer.unseal(&key.id, &key.sealed_secret).map_err(|e| {
        ApiError::Internal(format!("access key {} cannot be unsealed: {e}", key.id))
    })?;
    checked.verify(secret.expose())?;
    if key.status != KeyStatus::Active {
        return Err(SigV4Error::InactiveKey.into());
    }
    match (key.expires_ms, checked.security_token.as_deref()) {
        (Some(expires_ms), _) if now_ms >= expires_ms => return Err(SigV4Error::ExpiredKey.into()),
        (Some(_), None) => return Err(SigV4Error::MissingToken.into()),
        (Some(_), Some(token)) => {
            session::verify(sealer, token, &key.id, now_ms).map_err(|e| match e {
                TokenError::Expired { .. } => SigV4Error::ExpiredToken,
                _ => SigV4Error::InvalidToken,
            })?;
        }
        // A long-lived key has no session; a token with it is someone else's.
        (None, Some(_)) => return Err(SigV4Error::InvalidToken.into()),
        (None, None) => {}
    }
    let principal = store
        .get_principal(&key.account_id, &key.principal)
        .await?
        .ok_or(SigV4Error::UnknownPrincipal)?;
    let policies = PolicySet::parse(
        principal
            .policies
            .iter()
            .map(|(name, doc)| (name.as_str(), doc.as_str())),
    )
    .map_err(|(name, e)| {
        ApiError::Internal(format!(
            "stored policy {name} of {} is invalid: {e}",
            principal.name
        ))
    })?;
    Ok(Caller {
        account_id: key.account_id,
        principal: principal.name,
        access_key_id: key.id,
        policies,
        session_expires_ms: key.expires_ms,
    })
}
