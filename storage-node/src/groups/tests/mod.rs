//! Coordinator tests: encoded requests in, encoded responses out, against a real SQLite
//! metadata file.

// Tests may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod admin;
mod membership;
mod offsets;
mod wire;

use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use fjord_metadata::SqliteStore;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tempfile::TempDir;
use uuid::Uuid;

use super::{ClientInfo, GroupConfig, GroupCoordinator};
use crate::api::{GroupRequest, NodeError};

/// A coordinator over a fresh SQLite file.
pub(super) struct Harness {
    pub coord: Arc<GroupCoordinator>,
    pub cluster: Uuid,
    pub dir: TempDir,
}

pub(super) fn test_config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 100,
        min_session_timeout_ms: 1000,
        ..GroupConfig::default()
    }
}

pub(super) fn open_store(dir: &Path) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(&dir.join("meta.db")).unwrap())
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        Self {
            coord: Arc::new(GroupCoordinator::with_config(store, test_config())),
            cluster: Uuid::new_v4(),
            dir,
        }
    }

    /// A new coordinator over the same metadata file (a restart).
    pub fn restart(&self) -> Arc<GroupCoordinator> {
        Arc::new(GroupCoordinator::with_config(
            open_store(self.dir.path()),
            test_config(),
        ))
    }
}

pub(super) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub(super) fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

/// Sends one request to `coord` in `cluster` and decodes the answer.
pub(super) async fn call_in<Req: Encodable, Resp: Decodable>(
    coord: &GroupCoordinator,
    cluster: Uuid,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> Result<Resp, NodeError> {
    let mut buf = BytesMut::new();
    req.encode(&mut buf, version).unwrap();
    let client = ClientInfo {
        client_id: "test-client".into(),
        client_host: "/127.0.0.1".into(),
    };
    let resp = coord
        .handle_from(
            GroupRequest {
                cluster_id: cluster,
                api_key: key as i16,
                api_version: version,
                body: buf.freeze(),
                client_id: String::new(),
                client_host: String::new(),
            },
            &client,
            1_700_000_000_000,
        )
        .await?;
    let mut body: Bytes = resp.body;
    let decoded = Resp::decode(&mut body, version).unwrap();
    assert!(body.is_empty(), "trailing bytes in response");
    Ok(decoded)
}

/// [`call_in`] for the harness' cluster, unwrapped.
pub(super) async fn call<Req: Encodable, Resp: Decodable>(
    h: &Harness,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> Resp {
    call_in(&h.coord, h.cluster, key, version, req)
        .await
        .unwrap()
}

/// A consumer-style JoinGroup offering `protocols` with their metadata.
pub(super) fn join_req(group: &str, member: &str, protocols: &[(&str, &str)]) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(5_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(
            protocols
                .iter()
                .map(|(name, meta)| {
                    JoinGroupRequestProtocol::default()
                        .with_name(s(name))
                        .with_metadata(Bytes::from(meta.to_string()))
                })
                .collect(),
        )
}

/// DescribeGroups of the one `group` at `version`.
pub(super) async fn describe(h: &Harness, version: i16, group: &str) -> DescribeGroupsResponse {
    let req = DescribeGroupsRequest::default().with_groups(vec![gid(group)]);
    call(h, ApiKey::DescribeGroups, version, &req).await
}

pub(super) const RANGE: &[(&str, &str)] = &[("range", "meta")];

/// JoinGroup v5 as a new dynamic member: MEMBER_ID_REQUIRED, then the real join (which may
/// wait for the rebalance). Returns the join response.
pub(super) async fn join_new(h: &Harness, group: &str) -> JoinGroupResponse {
    let first: JoinGroupResponse = call(h, ApiKey::JoinGroup, 5, &join_req(group, "", RANGE)).await;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED first");
    assert!(!first.member_id.is_empty());
    let id = first.member_id.to_string();
    call(h, ApiKey::JoinGroup, 5, &join_req(group, &id, RANGE)).await
}

pub(super) async fn sync(
    h: &Harness,
    group: &str,
    member: &str,
    generation: i32,
    assignments: &[(&str, &str)],
) -> SyncGroupResponse {
    let req = SyncGroupRequest::default()
        .with_group_id(gid(group))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::from(a.to_string()))
                })
                .collect(),
        );
    call(h, ApiKey::SyncGroup, 3, &req).await
}

pub(super) async fn heartbeat(h: &Harness, group: &str, member: &str, generation: i32) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_generation_id(generation)
        .with_member_id(s(member));
    let resp: HeartbeatResponse = call(h, ApiKey::Heartbeat, 4, &req).await;
    resp.error_code
}

/// Two members joined and synced: (leader id, follower id, generation).
pub(super) async fn stable_pair(h: &Arc<Harness>, group: &str) -> (String, String, i32) {
    let (a, b) = tokio::join!(join_new(h, group), join_new(h, group));
    assert_eq!(a.error_code, 0);
    assert_eq!(b.error_code, 0);
    assert_eq!(a.generation_id, b.generation_id);
    let (leader, follower) = if a.leader == a.member_id {
        (a, b)
    } else {
        (b, a)
    };
    let gen = leader.generation_id;
    let (l, f) = (leader.member_id.to_string(), follower.member_id.to_string());
    let assignment = [(l.as_str(), "L"), (f.as_str(), "F")];
    let (ls, fs) = tokio::join!(
        sync(h, group, &l, gen, &assignment),
        sync(h, group, &f, gen, &[])
    );
    assert_eq!((ls.error_code, fs.error_code), (0, 0));
    (l, f, gen)
}
