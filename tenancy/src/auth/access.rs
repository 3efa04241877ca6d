//! Cached authorization data: what a principal may do (its parsed IAM policies and SCRAM
//! credential), what a cluster is (its ARN parts) and which Kafka ACLs it has.
//!
//! Entries live until the auth epoch changes ([`super::Authenticator::poll_auth_epoch`] drops
//! them all) and at most [`ACCESS_TTL`], so that changes which grant access without raising the
//! epoch (a new principal or policy) are seen within that time too. ACL creations and deletions
//! both raise the epoch.

use std::sync::Arc;
use std::time::Duration;

use fjord_metadata::MetadataStore;
use uuid::Uuid;

use super::acl_codec;
use super::AuthError;
use crate::acl::AclBinding;
use crate::policy::{ClusterRef, PolicySet};
use crate::scram::ScramCredential;

/// Longest time a cached principal, cluster or ACL list is used without re-reading it.
pub const ACCESS_TTL: Duration = Duration::from_secs(30);
const PRINCIPAL_CAPACITY: u64 = 100_000;
const CLUSTER_CAPACITY: u64 = 10_000;

/// What a principal may do, as stored.
#[derive(Debug)]
pub struct PrincipalAccess {
    /// Whether the principal record exists; a missing principal is denied everything.
    pub exists: bool,
    /// Its inline policies, parsed; `Err` names a stored policy that does not parse (the
    /// principal is then denied everything rather than judged by the remaining policies, which
    /// could wrongly allow what the broken one denies).
    pub policies: Result<PolicySet, String>,
    /// Its SCRAM-SHA-512 credential, if it has a valid one.
    pub scram: Option<ScramCredential>,
}

impl PrincipalAccess {
    fn missing() -> Self {
        Self {
            exists: false,
            policies: Ok(PolicySet::default()),
            scram: None,
        }
    }
}

/// The caches; owned by the [`super::Authenticator`].
pub(super) struct AccessCache {
    principals: moka::future::Cache<(String, String), Arc<PrincipalAccess>>,
    clusters: moka::future::Cache<Uuid, Option<Arc<ClusterRef>>>,
    acls: moka::future::Cache<Uuid, Arc<Vec<AclBinding>>>,
}

impl AccessCache {
    pub(super) fn new() -> Self {
        Self {
            principals: moka::future::Cache::builder()
                .max_capacity(PRINCIPAL_CAPACITY)
                .time_to_live(ACCESS_TTL)
                .build(),
            clusters: moka::future::Cache::builder()
                .max_capacity(CLUSTER_CAPACITY)
                .time_to_live(ACCESS_TTL)
                .build(),
            acls: moka::future::Cache::builder()
                .max_capacity(CLUSTER_CAPACITY)
                .time_to_live(ACCESS_TTL)
                .build(),
        }
    }

    pub(super) fn invalidate_all(&self) {
        self.principals.invalidate_all();
        self.clusters.invalidate_all();
        self.acls.invalidate_all();
    }

    pub(super) async fn invalidate_acls(&self, cluster: Uuid) {
        self.acls.invalidate(&cluster).await;
    }

    pub(super) async fn principal(
        &self,
        store: &Arc<dyn MetadataStore>,
        account_id: &str,
        name: &str,
    ) -> Result<Arc<PrincipalAccess>, AuthError> {
        let key = (account_id.to_owned(), name.to_owned());
        self.principals
            .try_get_with(key, async move {
                let Some(p) = store.get_principal(account_id, name).await? else {
                    return Ok(Arc::new(PrincipalAccess::missing()));
                };
                let policies = PolicySet::parse(
                    p.policies
                        .iter()
                        .map(|(n, doc)| (n.as_str(), doc.as_str())),
                )
                .map_err(|(policy, e)| {
                    tracing::warn!(account_id, principal = name, %policy, error = %e, "stored policy does not parse; denying the principal everything");
                    format!("the stored policy {policy:?} of {name} is invalid: {e}")
                });
                let scram = p.scram.as_deref().and_then(|json| {
                    serde_json::from_str::<ScramCredential>(json)
                        .map_err(|e| tracing::warn!(account_id, principal = name, error = %e, "stored SCRAM credential does not parse"))
                        .ok()
                });
                Ok::<_, fjord_metadata::MetadataError>(Arc::new(PrincipalAccess {
                    exists: true,
                    policies,
                    scram,
                }))
            })
            .await
            .map_err(|e| AuthError::Backend(e.to_string()))
    }

    pub(super) async fn cluster(
        &self,
        store: &Arc<dyn MetadataStore>,
        id: Uuid,
    ) -> Result<Option<Arc<ClusterRef>>, AuthError> {
        self.clusters
            .try_get_with(id, async move {
                let c = store.get_cluster(id).await?;
                Ok::<_, fjord_metadata::MetadataError>(c.map(|c| {
                    Arc::new(ClusterRef {
                        region: c.region,
                        account_id: c.account_id,
                        name: c.name,
                        id: c.id,
                    })
                }))
            })
            .await
            .map_err(|e| AuthError::Backend(e.to_string()))
    }

    pub(super) async fn acls(
        &self,
        store: &Arc<dyn MetadataStore>,
        cluster: Uuid,
    ) -> Result<Arc<Vec<AclBinding>>, AuthError> {
        self.acls
            .try_get_with(cluster, async move {
                let stored = store.list_acls(cluster).await.map_err(|e| e.to_string())?;
                // One undecodable binding fails the whole list: skipping it could drop a Deny
                // and so grant access, so SCRAM principals of the cluster are refused instead.
                let acls = stored
                    .iter()
                    .map(|s| acl_codec::decode(s).map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, String>>()
                    .inspect_err(|e| tracing::error!(%cluster, error = %e, "undecodable ACL"))?;
                Ok::<_, String>(Arc::new(acls))
            })
            .await
            .map_err(|e| AuthError::Backend(e.to_string()))
    }
}
