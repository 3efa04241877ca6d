//! The consumer-group count limit (MSK Serverless: 500 per cluster; JoinGroup of a new group
//! beyond it fails).
//!
//! Groups live on the storage nodes that coordinate them, so the gateway keeps a census per
//! cluster: the groups every coordinator lists plus those with committed offsets, loaded on
//! the first JoinGroup and re-read after the limits refresh interval. A JoinGroup for a group
//! in the census passes; a new group is added if the count allows and refused otherwise. The
//! census lags deletions by at most one refresh interval and, like every limit here, holds per
//! gateway process.
//!
//! The refusal is INVALID_REQUEST: the reference gives no code for this limit, JoinGroup
//! responses carry no message, and GROUP_MAX_SIZE_REACHED would tell the client that the group
//! has too many members, which is a different limit. The log names the limit.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use fjord_storage_node::GroupRequest;
use kafka_protocol::messages::{
    ApiKey, JoinGroupRequest, JoinGroupResponse, ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use tracing::warn;
use uuid::Uuid;

use crate::error::RequestError;
use crate::frame::encode_response;
use crate::handlers::Ctx;
use crate::request::Outcome;

/// The groups known to exist in one cluster.
#[derive(Debug, Default)]
pub struct GroupCensus {
    names: Mutex<HashSet<String>>,
}

impl GroupCensus {
    /// Admits `group`: true if it is known, or new and within `max`; false if it is new and the
    /// cluster already has `max` groups.
    pub fn admit(&self, group: &str, max: u64) -> bool {
        let mut names = self.names.lock();
        if names.contains(group) {
            return true;
        }
        if names.len() as u64 >= max {
            return false;
        }
        names.insert(group.to_owned());
        true
    }

    /// Groups counted.
    pub fn len(&self) -> usize {
        self.names.lock().len()
    }

    /// Whether no group is counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Census caches, one entry per cluster.
pub(crate) type Censuses = moka::future::Cache<Uuid, Arc<GroupCensus>>;

async fn load(ctx: Ctx<'_>) -> Result<Arc<GroupCensus>, RequestError> {
    let mut names: HashSet<String> = ctx
        .gw
        .store
        .list_offset_groups(ctx.cluster)
        .await?
        .into_iter()
        .collect();
    let version = crate::versions::supported(ApiKey::ListGroups)
        .map(|r| r.max)
        .ok_or(RequestError::Unsupported("ListGroups is not answered"))?;
    let body = crate::handlers::groups::encode_body(&ListGroupsRequest::default(), version)
        .map_err(|e| RequestError::Invalid(e.to_string()))?;
    for node in ctx.gw.coordinators.nodes(ctx.now_ms).await?.iter() {
        let req = GroupRequest {
            cluster_id: ctx.cluster,
            api_key: ApiKey::ListGroups as i16,
            api_version: version,
            body: body.clone(),
            client_id: "fjord-gateway".into(),
            client_host: String::new(),
        };
        let mut answer = ctx.node(node).await?.group(req).await?.body;
        let resp = ListGroupsResponse::decode(&mut answer, version)
            .map_err(|e| RequestError::Invalid(format!("ListGroups from {node}: {e}")))?;
        names.extend(resp.groups.into_iter().map(|g| g.group_id.to_string()));
    }
    Ok(Arc::new(GroupCensus {
        names: Mutex::new(names),
    }))
}

/// For a JoinGroup of a group the cluster does not have yet, when the cluster is at its
/// consumer-group limit: the refusal to send instead of forwarding. `None` lets the request
/// through (also when the census cannot be taken: a coordinator outage must not block
/// existing groups, and the forwarded request will report it).
pub(crate) async fn refuse_new_group(
    ctx: Ctx<'_>,
    api: ApiKey,
    corr: i32,
    body: &Bytes,
) -> Option<Outcome> {
    if api != ApiKey::JoinGroup {
        return None;
    }
    let req = JoinGroupRequest::decode(&mut body.clone(), ctx.version).ok()?;
    let entry = ctx
        .gw
        .quotas
        .cluster(ctx.cluster, ctx.now_ms)
        .await
        .ok()??;
    let max = entry.limits().max_consumer_groups;
    let census = match ctx
        .gw
        .group_censuses
        .try_get_with(ctx.cluster, load(ctx))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "consumer groups could not be counted; not enforcing the group limit");
            return None;
        }
    };
    if census.admit(req.group_id.as_str(), max) {
        return None;
    }
    let limit = fjord_tenancy::quota::CountLimit::new("cluster consumer group limit", max);
    if let Err(e) = limit.check(census.len() as u64, 1) {
        warn!(group = %req.group_id.as_str(), "JoinGroup refused: {e}");
    }
    let mut resp = JoinGroupResponse::default()
        .with_error_code(ResponseError::InvalidRequest.code())
        .with_member_id(req.member_id.clone());
    if ctx.version < 7 {
        resp = resp.with_protocol_name(Some(StrBytes::default()));
    }
    Some(match encode_response(api, ctx.version, corr, &resp) {
        Ok(frame) => Outcome::Respond(frame),
        Err(reason) => Outcome::Close {
            frame: None,
            delay: Default::default(),
            reason,
        },
    })
}
