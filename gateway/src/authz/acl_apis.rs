//! CreateAcls (30), DescribeAcls (29) and DeleteAcls (31), versions 1–3.
//!
//! ACLs are stored per cluster through [`fjord_metadata::MetadataStore::create_acls`] and
//! friends as the canonical strings of [`fjord_tenancy::auth::acl_codec`]. Callers need
//! `kafka-cluster:AlterCluster` (create, delete) or `DescribeCluster` (describe) when they are IAM
//! principals, and ALTER / DESCRIBE on the CLUSTER resource by ACL otherwise — checked here for
//! the whole request, answered with CLUSTER_AUTHORIZATION_FAILED in each result. This process's
//! ACL cache is dropped after a change; other gateways see additions and deletions alike at
//! their next auth-epoch poll (about a second), because the store raises the epoch for both.

use std::collections::BTreeMap;

use fjord_tenancy::acl::{AclBinding, AclBindingFilter};
use fjord_tenancy::auth::acl_codec;
use fjord_tenancy::policy::{Action, Resource};
use fjord_tenancy::Authenticator;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::Access;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn storage_error(e: impl std::fmt::Display) -> (i16, String) {
    tracing::warn!(error = %e, "ACL store failed");
    (
        ResponseError::KafkaStorageError.code(),
        format!("ACL storage unavailable: {e}"),
    )
}

/// The bindings of a cluster, read from the store (not the cache: an ACL API answers with what
/// is stored now).
async fn stored(
    auth: &Authenticator,
    cluster: Uuid,
) -> Result<Vec<(String, AclBinding)>, (i16, String)> {
    let raw = auth
        .store()
        .list_acls(cluster)
        .await
        .map_err(storage_error)?;
    raw.into_iter()
        .map(|s| {
            acl_codec::decode(&s)
                .map(|b| (s, b))
                .map_err(|e| (ResponseError::UnknownServerError.code(), e.to_string()))
        })
        .collect()
}

/// Handles CreateAcls.
pub(crate) async fn create_acls(
    access: &Access,
    auth: &Authenticator,
    cluster: Uuid,
    req: CreateAclsRequest,
) -> CreateAclsResponse {
    let result = |code: i16, msg: Option<String>| {
        AclCreationResult::default()
            .with_error_code(code)
            .with_error_message(msg.map(StrBytes::from_string))
    };
    if let Err(refused) = access.allow(Action::AlterCluster, Resource::Cluster) {
        let results = req
            .creations
            .iter()
            .map(|_| result(refused.code, Some(refused.message.clone())))
            .collect();
        return CreateAclsResponse::default().with_results(results);
    }
    // Validate each creation; store the valid ones in one call.
    let parsed: Vec<Result<AclBinding, (i16, String)>> = req
        .creations
        .iter()
        .map(|c| {
            AclBinding::from_wire(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
            .map_err(|e| (e.error_code(), e.to_string()))
        })
        .collect();
    let strings: Vec<String> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().map(acl_codec::encode))
        .collect();
    let stored = if strings.is_empty() {
        Ok(0)
    } else {
        auth.store().create_acls(cluster, &strings).await
    };
    auth.invalidate_acls(cluster).await;
    let results = parsed
        .into_iter()
        .map(|p| match (p, &stored) {
            (Err((code, msg)), _) => result(code, Some(msg)),
            (Ok(_), Ok(_)) => result(0, None),
            (Ok(_), Err(e)) => {
                let (code, msg) = storage_error(e);
                result(code, Some(msg))
            }
        })
        .collect();
    tracing::info!(%cluster, created = ?stored.as_ref().ok(), "CreateAcls");
    CreateAclsResponse::default().with_results(results)
}

/// Groups bindings by resource pattern, as DescribeAcls answers them.
fn by_resource<'a>(bindings: impl Iterator<Item = &'a AclBinding>) -> Vec<DescribeAclsResource> {
    let mut groups: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in bindings {
        groups
            .entry((
                b.resource_type.code(),
                b.resource_name.clone(),
                b.pattern_type.code(),
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(text(&b.principal))
                    .with_host(text(&b.host))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
    }
    groups
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(rt)
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(pt)
                .with_acls(acls)
        })
        .collect()
}

/// Handles DescribeAcls.
pub(crate) async fn describe_acls(
    access: &Access,
    auth: &Authenticator,
    cluster: Uuid,
    req: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let fail = |code: i16, msg: String| {
        DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(msg)))
    };
    if let Err(refused) = access.allow(Action::DescribeCluster, Resource::Cluster) {
        return fail(refused.code, refused.message);
    }
    let filter = match AclBindingFilter::from_wire(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    ) {
        Ok(f) => f,
        Err(e) => return fail(e.error_code(), e.to_string()),
    };
    match stored(auth, cluster).await {
        Ok(all) => DescribeAclsResponse::default().with_resources(by_resource(
            all.iter().map(|(_, b)| b).filter(|b| filter.matches(b)),
        )),
        Err((code, msg)) => fail(code, msg),
    }
}

/// Handles DeleteAcls.
pub(crate) async fn delete_acls(
    access: &Access,
    auth: &Authenticator,
    cluster: Uuid,
    req: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let fail = |code: i16, msg: &str| {
        DeleteAclsFilterResult::default()
            .with_error_code(code)
            .with_error_message(Some(text(msg)))
    };
    if let Err(refused) = access.allow(Action::AlterCluster, Resource::Cluster) {
        let results = req
            .filters
            .iter()
            .map(|_| fail(refused.code, &refused.message))
            .collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let all = match stored(auth, cluster).await {
        Ok(all) => all,
        Err((code, msg)) => {
            let results = req.filters.iter().map(|_| fail(code, &msg)).collect();
            return DeleteAclsResponse::default().with_filter_results(results);
        }
    };
    let mut results = Vec::with_capacity(req.filters.len());
    for f in &req.filters {
        let filter = match AclBindingFilter::from_wire(
            f.resource_type_filter,
            f.resource_name_filter.as_deref(),
            f.pattern_type_filter,
            f.principal_filter.as_deref(),
            f.host_filter.as_deref(),
            f.operation,
            f.permission_type,
        ) {
            Ok(filter) => filter,
            Err(e) => {
                results.push(fail(e.error_code(), &e.to_string()));
                continue;
            }
        };
        let matching: Vec<&(String, AclBinding)> =
            all.iter().filter(|(_, b)| filter.matches(b)).collect();
        let strings: Vec<String> = matching.iter().map(|(s, _)| s.clone()).collect();
        let removed = if strings.is_empty() {
            Ok(Vec::new())
        } else {
            auth.store().delete_acls(cluster, &strings).await
        };
        match removed {
            Ok(removed) => {
                let acls = matching
                    .iter()
                    // A binding another caller removed meanwhile is not reported as deleted here.
                    .filter(|(s, _)| removed.contains(s))
                    .map(|(_, b)| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type.code())
                            .with_resource_name(text(&b.resource_name))
                            .with_pattern_type(b.pattern_type.code())
                            .with_principal(text(&b.principal))
                            .with_host(text(&b.host))
                            .with_operation(b.operation.code())
                            .with_permission_type(b.permission.code())
                    })
                    .collect();
                results.push(DeleteAclsFilterResult::default().with_matching_acls(acls));
            }
            Err(e) => {
                let (code, msg) = storage_error(e);
                results.push(fail(code, &msg));
            }
        }
    }
    auth.invalidate_acls(cluster).await;
    tracing::info!(%cluster, filters = req.filters.len(), "DeleteAcls");
    DeleteAclsResponse::default().with_filter_results(results)
}
