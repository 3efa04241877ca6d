//! Authorization of every Kafka request.
//!
//! Two kinds of principals, as on MSK:
//! - **IAM** (`AWS_MSK_IAM`, `OAUTHBEARER`, and `PLAIN` with an access key): the principal's
//!   inline policies ([`fjord_tenancy::policy`]), checked for the MSK action of each resource a
//!   request names, with MSK's prerequisite actions, on the cluster's MSK ARNs. A principal
//!   without a stored record or without policies is denied everything (default deny).
//! - **ACL** (SCRAM logins and mutual-TLS certificates): the cluster's Kafka ACLs with Kafka's
//!   authorizer semantics ([`fjord_tenancy::acl`]). As with Kafka's
//!   `allow.everyone.if.no.acl.found=false` (its default), a cluster without ACLs denies these
//!   principals everything, the ACL APIs included: grant them with an IAM principal first.
//!   A SCRAM user `<name>` is the Kafka principal `User:<name>`.
//!
//! [`Access`] is built once per request from cached data ([`fjord_tenancy::Authenticator`]
//! caches principals, cluster ARNs and ACLs, all dropped when the auth epoch changes) and
//! answers "may this request do `action` on `resource`". A refusal is a [`Refusal`]: the Kafka
//! error code of the resource the client asked about (TOPIC_ 29, GROUP_ 30, CLUSTER_ 31,
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED 53) and a message naming the action; handlers put it in
//! that resource's slot of their response, never closing the connection.
//!
//! Layout: this file (the decision), [`acl_apis`] (CreateAcls, DescribeAcls, DeleteAcls),
//! [`admin`] (the admin APIs' per-item checks in front of [`crate::admin`]).

pub(crate) mod acl_apis;
pub(crate) mod admin;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use fjord_tenancy::acl::{self, AclBinding, AclOperation, ResourceType};
use fjord_tenancy::auth::PrincipalAccess;
use fjord_tenancy::policy::{Action, ClusterRef, Resource, ResourceKind};
use fjord_tenancy::{Authenticator, Identity, Mechanism};
use uuid::Uuid;

/// How a principal is authorized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// IAM policies (access keys: `AWS_MSK_IAM`, `OAUTHBEARER`, `PLAIN`).
    Iam,
    /// Kafka ACLs (SCRAM, mutual TLS).
    Acl,
}

impl PrincipalKind {
    /// The kind of a SASL mechanism's principals.
    pub fn of(mechanism: Mechanism) -> Self {
        match mechanism {
            Mechanism::ScramSha512 => Self::Acl,
            _ => Self::Iam,
        }
    }
}

/// The Kafka principal (`User:<name>`) of an ACL-authorized identity: SCRAM identities are
/// stored as `user/<name>`, mutual-TLS ones already carry `User:<CN>`.
pub fn kafka_principal(identity_principal: &str) -> String {
    match identity_principal.strip_prefix("user/") {
        Some(name) => format!("User:{name}"),
        None => identity_principal.to_owned(),
    }
}

/// A refused authorization: the Kafka error code for the slot of the resource asked about, and
/// a message naming the action (for responses that carry one, and for logs).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// TOPIC_ (29), GROUP_ (30), CLUSTER_ (31) or TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).
    pub code: i16,
    /// Why, naming the refused action.
    pub message: String,
}

impl Refusal {
    fn new(kind: ResourceKind, message: String) -> Self {
        Self {
            code: kind.authorization_failed_code(),
            message,
        }
    }
}

enum Who {
    Iam {
        principal: String,
        access: Arc<PrincipalAccess>,
    },
    Acl {
        principal: String,
        host: String,
        acls: Arc<Vec<AclBinding>>,
    },
    /// Nothing can be allowed (cluster unknown, metadata unavailable); the reason.
    Nobody(String),
}

/// What one request's principal may do in its cluster.
pub struct Access {
    cluster: Option<Arc<ClusterRef>>,
    who: Who,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match &self.who {
            Who::Iam { principal, .. } => format!("iam {principal}"),
            Who::Acl { principal, .. } => format!("acl {principal}"),
            Who::Nobody(why) => format!("nobody ({why})"),
        };
        f.debug_struct("Access").field("who", &who).finish()
    }
}

impl Access {
    /// Loads what `identity` may do in `cluster` (cached by `auth`). `host` is the client's IP
    /// address (for ACL host matching). Failures to load deny everything, naming why.
    pub async fn load(
        auth: &Authenticator,
        cluster: Uuid,
        identity: &Identity,
        kind: PrincipalKind,
        host: &str,
    ) -> Self {
        let cluster_ref = match auth.cluster_ref(cluster).await {
            Ok(Some(c)) => c,
            Ok(None) => return Self::nobody(format!("cluster {cluster} does not exist")),
            Err(e) => return Self::nobody(e.to_string()),
        };
        // A principal of another account can never act on this cluster, whatever its policies
        // say (they are written with wildcards, and ARNs of this cluster carry its account).
        if kind == PrincipalKind::Iam && identity.account_id != cluster_ref.account_id {
            return Self::nobody(format!(
                "{} belongs to another account than cluster {}",
                identity.principal, cluster_ref.name
            ));
        }
        let who = match kind {
            PrincipalKind::Iam => {
                match auth
                    .principal_access(&identity.account_id, &identity.principal)
                    .await
                {
                    Ok(access) => Who::Iam {
                        principal: identity.principal.clone(),
                        access,
                    },
                    Err(e) => Who::Nobody(e.to_string()),
                }
            }
            PrincipalKind::Acl => match auth.cluster_acls(cluster).await {
                Ok(acls) => Who::Acl {
                    principal: kafka_principal(&identity.principal),
                    host: host.trim_start_matches('/').to_owned(),
                    acls,
                },
                Err(e) => Who::Nobody(e.to_string()),
            },
        };
        Self {
            cluster: Some(cluster_ref),
            who,
        }
    }

    /// Access that allows nothing, for `why`.
    pub fn nobody(why: String) -> Self {
        Self {
            cluster: None,
            who: Who::Nobody(why),
        }
    }

    /// Whether the principal is authorized with IAM policies.
    pub fn is_iam(&self) -> bool {
        matches!(self.who, Who::Iam { .. })
    }

    /// Checks one request's `(action, resource)` pairs together (an IAM principal also needs
    /// each action's prerequisites, checked on the resources named alongside). A refusal gets
    /// the code of `kind`: the resource whose response slot it fills.
    pub fn check(
        &self,
        wanted: &[(Action, Resource<'_>)],
        kind: ResourceKind,
    ) -> Result<(), Refusal> {
        let Some(cluster) = &self.cluster else {
            let why = match &self.who {
                Who::Nobody(why) => why.clone(),
                _ => "no cluster".into(),
            };
            return Err(Refusal::new(kind, format!("Access denied: {why}")));
        };
        match &self.who {
            Who::Nobody(why) => Err(Refusal::new(kind, format!("Access denied: {why}"))),
            Who::Iam { principal, access } => {
                let policies = match (&access.policies, access.exists) {
                    (_, false) => {
                        return Err(Refusal::new(
                            kind,
                            format!("Access denied: principal {principal} does not exist"),
                        ))
                    }
                    (Err(broken), true) => {
                        return Err(Refusal::new(kind, format!("Access denied: {broken}")))
                    }
                    (Ok(p), true) => p,
                };
                policies.check_all(cluster, wanted).map_err(|denied| {
                    tracing::debug!(%principal, %denied, "IAM authorization refused");
                    Refusal::new(kind, format!("Access denied: {principal} is {denied}"))
                })
            }
            Who::Acl {
                principal,
                host,
                acls,
            } => {
                for &(action, resource) in wanted {
                    if !acl_allows(acls, principal, host, action, resource) {
                        let (op, rt, name) = acl_terms(action, resource);
                        tracing::debug!(%principal, ?op, ?rt, name, "ACL authorization refused");
                        return Err(Refusal::new(
                            kind,
                            format!(
                                "Principal = {principal} is not authorized to {op:?} {rt:?} {name} \
                                 ({action}; Kafka ACLs)"
                            ),
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// [`Access::check`] of one action on one resource, refused with that resource's code.
    pub fn allow(&self, action: Action, resource: Resource<'_>) -> Result<(), Refusal> {
        self.check(&[(action, resource)], resource.kind())
    }

    /// Whether one action on one resource is allowed (for filtering listings).
    pub fn may(&self, action: Action, resource: Resource<'_>) -> bool {
        self.allow(action, resource).is_ok()
    }

    /// Checks the kafka-cluster:Connect action (at authentication; IAM principals only, as
    /// Kafka ACLs have no equivalent).
    pub fn connect(&self) -> Result<(), Refusal> {
        if matches!(self.who, Who::Acl { .. }) {
            return Ok(());
        }
        self.allow(Action::Connect, Resource::Cluster)
    }
}

/// The Kafka ACL (operation, resource type, name) equivalent to an MSK action on a resource,
/// as MSK documents each action. Connect has none (`None` operation: always allowed).
fn acl_terms<'a>(
    action: Action,
    resource: Resource<'a>,
) -> (Option<AclOperation>, ResourceType, &'a str) {
    use AclOperation as O;
    let op = match action {
        Action::Connect => None,
        Action::AlterCluster | Action::AlterTopic => Some(O::Alter),
        Action::DescribeCluster
        | Action::DescribeTopic
        | Action::DescribeGroup
        | Action::DescribeTransactionalId => Some(O::Describe),
        Action::AlterClusterDynamicConfiguration | Action::AlterTopicDynamicConfiguration => {
            Some(O::AlterConfigs)
        }
        Action::DescribeClusterDynamicConfiguration | Action::DescribeTopicDynamicConfiguration => {
            Some(O::DescribeConfigs)
        }
        Action::WriteData | Action::AlterTransactionalId => Some(O::Write),
        Action::WriteDataIdempotently => Some(O::IdempotentWrite),
        Action::ReadData | Action::AlterGroup => Some(O::Read),
        Action::CreateTopic => Some(O::Create),
        Action::DeleteTopic | Action::DeleteGroup => Some(O::Delete),
    };
    let (rt, name) = match resource {
        Resource::Cluster => (ResourceType::Cluster, acl::CLUSTER_NAME),
        Resource::Topic(t) => (ResourceType::Topic, t),
        Resource::Group(g) => (ResourceType::Group, g),
        Resource::TransactionalId(x) => (ResourceType::TransactionalId, x),
    };
    (op, rt, name)
}

fn acl_allows(
    acls: &[AclBinding],
    principal: &str,
    host: &str,
    action: Action,
    resource: Resource<'_>,
) -> bool {
    let (op, rt, name) = acl_terms(action, resource);
    let Some(op) = op else { return true };
    if acl::authorize(acls, principal, host, op, rt, name) {
        return true;
    }
    // Kafka lets CREATE on the cluster create any topic.
    action == Action::CreateTopic
        && acl::authorize(
            acls,
            principal,
            host,
            AclOperation::Create,
            ResourceType::Cluster,
            acl::CLUSTER_NAME,
        )
}
