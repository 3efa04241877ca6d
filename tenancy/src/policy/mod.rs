//! IAM-style authorization as MSK does it: policies attached to a principal, checked for each
//! `kafka-cluster:*` action on an MSK resource ARN.
//!
//! Layout:
//! - [`arn`]: building and parsing MSK ARNs ([`ClusterRef`]).
//! - [`document`]: parsing and validating IAM JSON policy documents.
//! - [`eval`]: the evaluation logic (explicit Deny wins, then Allow, default deny; wildcards).
//! - [`actions`]: the action enum, MSK's prerequisites, and the Kafka API → action table.
//!
//! [`PolicySet`] is the facade the gateway and control plane use: built from the documents
//! attached to one principal (loaded by the caller), it answers single checks and whole-request
//! checks with prerequisites.

pub mod actions;
pub mod arn;
pub mod document;
pub mod eval;

use std::collections::HashMap;
use std::sync::Arc;

pub use actions::{api_requirements, Action, Requirement, When};
pub use arn::{
    parse_arn, parse_cluster_arn, ArnError, ArnResource, ClusterRef, Resource, ResourceKind,
};
pub use document::{Effect, Patterns, PolicyDocument, PolicyError, Statement};
pub use eval::{Decision, NamedPolicy, StatementRef};

/// The policies attached to one principal.
#[derive(Clone, Debug, Default)]
pub struct PolicySet {
    policies: Vec<NamedPolicy>,
    memo: Memo,
}

/// Whole-request decisions [`PolicySet::check_all`] already made, so that the request path
/// (one check per produce or fetch) skips building ARNs and matching wildcards: that was 8% of
/// the gateway's CPU at 5,000 small produces a second. The set is rebuilt whenever the
/// principal's policies change (the auth caches reload it), which empties the memo with it.
#[derive(Default)]
struct Memo(parking_lot::Mutex<HashMap<MemoKey, Result<(), Denied>>>);

/// A cluster's ARN and the `(action, resource kind, resource name)` pairs of one request.
type MemoKey = (String, Vec<(Action, ResourceKind, Box<str>)>);

/// Decisions kept at most; the memo starts over when full (a principal rarely touches more
/// distinct resources than this between policy changes).
const MEMO_ENTRIES: usize = 4096;

/// Requests naming more pairs than this are not memoized (large Metadata requests).
const MEMO_MAX_PAIRS: usize = 8;

impl Clone for Memo {
    fn clone(&self) -> Self {
        Memo::default()
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Memo({} decisions)", self.0.lock().len())
    }
}

/// A request refused by [`PolicySet::check_all`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not authorized to perform {action} on {arn}{}: {}", prerequisite_suffix(.prerequisite_of), decision_text(.decision))]
pub struct Denied {
    /// The action that was refused.
    pub action: Action,
    /// The resource it was checked on (for a prerequisite on "any resource of a kind", the kind's
    /// ARN prefix followed by `*`).
    pub arn: String,
    /// When the refused action is a prerequisite, the action that required it.
    pub prerequisite_of: Option<Action>,
    /// Why: an explicit Deny (with its statement) or no Allow.
    pub decision: Decision,
    /// The kind of the requested resource the refusal is about (a Fetch refused for lack of a
    /// prerequisite group action is still a refusal of the topic).
    pub requested: ResourceKind,
}

impl Denied {
    /// The Kafka error for the refused resource: TOPIC_, GROUP_, CLUSTER_ or
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
    pub fn error_code(&self) -> i16 {
        self.requested.authorization_failed_code()
    }
}

fn prerequisite_suffix(of: &Option<Action>) -> String {
    of.map(|a| format!(" (required by {a})"))
        .unwrap_or_default()
}

fn decision_text(d: &Decision) -> String {
    match d {
        Decision::ExplicitDeny(s) => format!("explicitly denied by {s}"),
        Decision::ImplicitDeny | Decision::Allow(_) => "no policy allows it".into(),
    }
}

impl PolicySet {
    /// A set from named, parsed documents.
    pub fn new(policies: Vec<NamedPolicy>) -> Self {
        Self {
            policies,
            memo: Memo::default(),
        }
    }

    /// Parses `(name, json)` pairs into a set; the first invalid document fails it all, with its
    /// name in the error.
    pub fn parse<'a>(
        docs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, (String, PolicyError)> {
        let policies = docs
            .into_iter()
            .map(|(name, json)| {
                PolicyDocument::parse(json)
                    .map(|document| NamedPolicy {
                        name: Arc::from(name),
                        document,
                    })
                    .map_err(|e| (name.to_string(), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(policies))
    }

    /// The policies in the set.
    pub fn policies(&self) -> &[NamedPolicy] {
        &self.policies
    }

    /// Evaluates one action on one ARN, without prerequisites.
    pub fn check(&self, action: Action, arn: &str) -> Decision {
        eval::evaluate(&self.policies, action.as_str(), arn)
    }

    /// Evaluates one action on "some resource of `kind` in `cluster`" (see [`eval::evaluate_any`]).
    pub fn check_any(&self, action: Action, cluster: &ClusterRef, kind: ResourceKind) -> Decision {
        match kind {
            ResourceKind::Cluster => self.check(action, &cluster.cluster_arn()),
            _ => eval::evaluate_any(&self.policies, action.as_str(), &cluster.kind_prefix(kind)),
        }
    }

    /// Checks every `(action, resource)` of one request in `cluster`, and every prerequisite of
    /// each action. Prerequisites are checked on: the same resource when of the same kind; the
    /// cluster for cluster actions (Connect); the resources of that kind the request names (an
    /// OffsetCommit's group for ReadData's AlterGroup); otherwise on "some resource of that kind"
    /// (a Fetch names no group, so ReadData's AlterGroup must be allowed on at least one group).
    /// Returns the first refusal, requested actions before prerequisites.
    pub fn check_all(
        &self,
        cluster: &ClusterRef,
        wanted: &[(Action, Resource<'_>)],
    ) -> Result<(), Denied> {
        if wanted.len() > MEMO_MAX_PAIRS {
            return self.check_all_uncached(cluster, wanted);
        }
        let key: MemoKey = (
            cluster.cluster_arn(),
            wanted
                .iter()
                .map(|(a, r)| (*a, r.kind(), Box::from(r.name())))
                .collect(),
        );
        if let Some(known) = self.memo.0.lock().get(&key) {
            return known.clone();
        }
        let decided = self.check_all_uncached(cluster, wanted);
        let mut memo = self.memo.0.lock();
        if memo.len() >= MEMO_ENTRIES {
            memo.clear();
        }
        memo.insert(key, decided.clone());
        decided
    }

    fn check_all_uncached(
        &self,
        cluster: &ClusterRef,
        wanted: &[(Action, Resource<'_>)],
    ) -> Result<(), Denied> {
        let mut done: Vec<(Action, String)> = Vec::new();
        for &(action, resource) in wanted {
            let arn = cluster.resource_arn(resource);
            self.check_one(action, arn, None, resource.kind(), &mut done)?;
        }
        for &(action, resource) in wanted {
            for &pre in action.required_with_prerequisites().iter().skip(1) {
                let kind = pre.resource_kind();
                if kind == resource.kind() {
                    let arn = cluster.resource_arn(resource);
                    self.check_one(pre, arn, Some(action), resource.kind(), &mut done)?;
                } else if kind == ResourceKind::Cluster {
                    let arn = cluster.cluster_arn();
                    self.check_one(pre, arn, Some(action), resource.kind(), &mut done)?;
                } else if wanted.iter().any(|(_, r)| r.kind() == kind) {
                    for (_, r) in wanted.iter().filter(|(_, r)| r.kind() == kind) {
                        let arn = cluster.resource_arn(*r);
                        self.check_one(pre, arn, Some(action), resource.kind(), &mut done)?;
                    }
                } else {
                    let arn = format!("{}*", cluster.kind_prefix(kind));
                    if done.iter().any(|(a, r)| *a == pre && *r == arn) {
                        continue;
                    }
                    let decision = self.check_any(pre, cluster, kind);
                    if !decision.is_allowed() {
                        return Err(Denied {
                            action: pre,
                            arn,
                            prerequisite_of: Some(action),
                            decision,
                            requested: resource.kind(),
                        });
                    }
                    done.push((pre, arn));
                }
            }
        }
        Ok(())
    }

    fn check_one(
        &self,
        action: Action,
        arn: String,
        prerequisite_of: Option<Action>,
        requested: ResourceKind,
        done: &mut Vec<(Action, String)>,
    ) -> Result<(), Denied> {
        if done.iter().any(|(a, r)| *a == action && *r == arn) {
            return Ok(());
        }
        let decision = self.check(action, &arn);
        if !decision.is_allowed() {
            tracing::debug!(%action, %arn, ?decision, "IAM policy refused");
            return Err(Denied {
                action,
                arn,
                prerequisite_of,
                decision,
                requested,
            });
        }
        done.push((action, arn));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
