//! Group requests reach the coordinator node of their group with the client's body unchanged;
//! multi-group requests are split by node and merged; node failures become retriable errors.

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use super::*;
use crate::coordinator::coordinator_for;
use crate::handlers::groups::encode_body;

fn gid(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_owned()))
}

/// Group names that land on different nodes of `nodes`.
fn groups_on_each(env: &Env, nodes: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in 0.. {
        let g = format!("group-{i}");
        let node = coordinator_for(env.tenant.cluster.id, &g, nodes).unwrap();
        if !out
            .iter()
            .any(|o| coordinator_for(env.tenant.cluster.id, o, nodes).unwrap() == node)
        {
            out.push(g);
        }
        if out.len() == nodes.len() {
            return out;
        }
    }
    unreachable!()
}

#[tokio::test]
async fn heartbeat_is_forwarded_verbatim_to_the_coordinator() {
    let env = Env::new(&["n1", "n2", "n3"]).await;
    let ids: Vec<String> = env.nodes.keys().cloned().collect();
    let reply = encode_body(&HeartbeatResponse::default().with_error_code(27), 4).unwrap();
    for n in env.nodes.values() {
        *n.group_reply.lock() = reply.clone();
    }
    let mut c = env.authed().await;
    for g in groups_on_each(&env, &ids) {
        let req = HeartbeatRequest::default()
            .with_group_id(gid(&g))
            .with_generation_id(3)
            .with_member_id(StrBytes::from_static_str("m"));
        let resp: HeartbeatResponse = c.call(ApiKey::Heartbeat, 4, &req).await;
        assert_eq!(resp.error_code, 27, "the node's answer is passed through");
        let owner = coordinator_for(env.tenant.cluster.id, &g, &ids).unwrap();
        let seen = env.nodes[owner]
            .groups
            .lock()
            .pop()
            .expect("coordinator got it");
        assert_eq!(
            (seen.api_key, seen.api_version, seen.cluster_id),
            (ApiKey::Heartbeat as i16, 4, env.tenant.cluster.id)
        );
        // The body is the client's, byte for byte.
        assert_eq!(seen.body, encode_body(&req, 4).unwrap());
        // The header's client id travels with it; this session was made without a peer.
        assert_eq!(
            (seen.client_id.as_str(), seen.client_host.as_str()),
            ("test", "")
        );
        for (id, n) in &env.nodes {
            assert!(n.groups.lock().is_empty(), "{id} got a request for {g}");
        }
    }
}

#[tokio::test]
async fn describe_groups_is_split_by_node_and_merged_in_order() {
    let env = Env::new(&["n1", "n2"]).await;
    let ids: Vec<String> = env.nodes.keys().cloned().collect();
    let groups = groups_on_each(&env, &ids);
    // Each node describes the groups it is asked about as "Stable", tagged with its own id.
    for (id, n) in &env.nodes {
        let mine: Vec<DescribedGroup> = groups
            .iter()
            .filter(|g| coordinator_for(env.tenant.cluster.id, g, &ids).unwrap() == id)
            .map(|g| {
                DescribedGroup::default()
                    .with_group_id(gid(g))
                    .with_group_state(StrBytes::from_string(format!("Stable@{id}")))
            })
            .collect();
        *n.group_reply.lock() =
            encode_body(&DescribeGroupsResponse::default().with_groups(mine), 5).unwrap();
    }
    let mut c = env.authed().await;
    let asked: Vec<GroupId> = groups.iter().rev().map(|g| gid(g)).collect();
    let resp: DescribeGroupsResponse = c
        .call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(asked.clone()),
        )
        .await;
    let got: Vec<GroupId> = resp.groups.iter().map(|g| g.group_id.clone()).collect();
    assert_eq!(got, asked);
    for g in &resp.groups {
        let owner = coordinator_for(env.tenant.cluster.id, g.group_id.as_str(), &ids).unwrap();
        assert_eq!(g.group_state.as_str(), format!("Stable@{owner}"));
    }
    // Each node was asked only about its own group.
    for n in env.nodes.values() {
        let seen = n.groups.lock();
        assert_eq!(seen.len(), 1);
        let mut body = seen[0].body.clone();
        let sub = DescribeGroupsRequest::decode(&mut body, 5).unwrap();
        assert_eq!(sub.groups.len(), 1);
    }
}

#[tokio::test]
async fn list_groups_asks_every_node() {
    let env = Env::new(&["n1", "n2"]).await;
    for (id, n) in &env.nodes {
        let listed = vec![ListedGroup::default()
            .with_group_id(gid(&format!("g-{id}")))
            .with_protocol_type(StrBytes::from_static_str("consumer"))];
        *n.group_reply.lock() =
            encode_body(&ListGroupsResponse::default().with_groups(listed), 4).unwrap();
    }
    let mut c = env.authed().await;
    let resp: ListGroupsResponse = c
        .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    let mut names: Vec<String> = resp.groups.iter().map(|g| g.group_id.to_string()).collect();
    names.sort();
    assert_eq!(names, ["g-n1", "g-n2"]);
}

#[tokio::test]
async fn list_groups_lists_each_group_once_with_its_coordinators_state() {
    let env = Env::new(&["n1", "n2"]).await;
    let listed = |id: &str, state: &'static str, ptype: &'static str| {
        ListedGroup::default()
            .with_group_id(gid(id))
            .with_protocol_type(StrBytes::from_static_str(ptype))
            .with_group_state(StrBytes::from_static_str(state))
    };
    // Every node lists groups that only have committed offsets as Empty; "a" is coordinated
    // (Stable) by n1 and "b" by n2, so the live entry comes first for one and last for the
    // other.
    let answers = [
        (
            "n1",
            vec![
                listed("a", "Stable", "consumer"),
                listed("b", "Empty", ""),
                listed("only-offsets", "Empty", ""),
            ],
        ),
        (
            "n2",
            vec![
                listed("a", "Empty", ""),
                listed("b", "PreparingRebalance", "consumer"),
                listed("only-offsets", "Empty", ""),
            ],
        ),
    ];
    for (id, groups) in answers {
        *env.nodes[id].group_reply.lock() =
            encode_body(&ListGroupsResponse::default().with_groups(groups), 4).unwrap();
    }
    let mut c = env.authed().await;
    let resp: ListGroupsResponse = c
        .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    assert_eq!(resp.error_code, 0);
    let mut got: Vec<(String, String, String)> = resp
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.to_string(),
                g.group_state.to_string(),
                g.protocol_type.to_string(),
            )
        })
        .collect();
    got.sort();
    let want = [
        ("a", "Stable", "consumer"),
        ("b", "PreparingRebalance", "consumer"),
        ("only-offsets", "Empty", ""),
    ]
    .map(|(g, s, p)| (g.to_owned(), s.to_owned(), p.to_owned()));
    assert_eq!(got, want);
}

#[tokio::test]
async fn coordinator_failure_is_retriable() {
    let env = Env::new(&["n1"]).await;
    *env.nodes["n1"].down.lock() = true;
    let mut c = env.authed().await;
    let join = JoinGroupRequest::default()
        .with_group_id(gid("g"))
        .with_session_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"));
    for v in [0, 4, 7] {
        let resp: JoinGroupResponse = c.call(ApiKey::JoinGroup, v, &join).await;
        assert_eq!(resp.error_code, 15, "v{v}");
    }
    let resp: DescribeGroupsResponse = c
        .call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![gid("a"), gid("b")]),
        )
        .await;
    assert!(resp.groups.iter().all(|g| g.error_code == 15));
    assert_eq!(resp.groups.len(), 2);
}

#[tokio::test]
async fn no_registered_node_means_coordinator_not_available() {
    let env = Env::new(&[]).await;
    let mut c = env.authed().await;
    let req = HeartbeatRequest::default().with_group_id(gid("g"));
    let resp: HeartbeatResponse = c.call(ApiKey::Heartbeat, 3, &req).await;
    assert_eq!(resp.error_code, 15);
}

/// With the coordinator down, every group API at every advertised version still gets a
/// well-formed answer carrying COORDINATOR_NOT_AVAILABLE.
#[tokio::test]
async fn error_answers_encode_at_every_version() {
    let env = Env::new(&["n1"]).await;
    *env.nodes["n1"].down.lock() = true;
    let mut c = env.authed().await;
    macro_rules! check {
        ($api:expr, $req:expr, $resp:ty, |$r:ident| $code:expr) => {{
            let range = crate::versions::supported($api).expect("group api advertised");
            for v in range.min..=range.max {
                let $r: $resp = c.call($api, v, &$req).await;
                let code: i16 = $code;
                assert_eq!(code, 15, "{:?} v{v}", $api);
            }
        }};
    }
    let g = || gid("g");
    check!(
        ApiKey::JoinGroup,
        JoinGroupRequest::default().with_group_id(g()),
        JoinGroupResponse,
        |r| r.error_code
    );
    check!(
        ApiKey::SyncGroup,
        SyncGroupRequest::default().with_group_id(g()),
        SyncGroupResponse,
        |r| r.error_code
    );
    check!(
        ApiKey::Heartbeat,
        HeartbeatRequest::default().with_group_id(g()),
        HeartbeatResponse,
        |r| r.error_code
    );
    check!(
        ApiKey::LeaveGroup,
        LeaveGroupRequest::default().with_group_id(g()),
        LeaveGroupResponse,
        |r| r.error_code
    );
    check!(
        ApiKey::ListGroups,
        ListGroupsRequest::default(),
        ListGroupsResponse,
        |r| r.error_code
    );
    check!(
        ApiKey::DescribeGroups,
        DescribeGroupsRequest::default().with_groups(vec![g()]),
        DescribeGroupsResponse,
        |r| r.groups[0].error_code
    );
    check!(
        ApiKey::DeleteGroups,
        DeleteGroupsRequest::default().with_groups_names(vec![g()]),
        DeleteGroupsResponse,
        |r| r.results[0].error_code
    );
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    let commit = OffsetCommitRequest::default()
        .with_group_id(g())
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![
                OffsetCommitRequestPartition::default().with_partition_index(0)
            ])]);
    // v10 names topics by id only; the error answer mirrors whatever the request held.
    check!(ApiKey::OffsetCommit, commit, OffsetCommitResponse, |r| r
        .topics[0]
        .partitions[0]
        .error_code);
    let range = crate::versions::supported(ApiKey::OffsetFetch).unwrap();
    for v in range.min..=range.max {
        let resp: OffsetFetchResponse = if v >= 8 {
            use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
            let req = OffsetFetchRequest::default()
                .with_groups(vec![OffsetFetchRequestGroup::default().with_group_id(g())]);
            c.call(ApiKey::OffsetFetch, v, &req).await
        } else {
            use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
            let req = OffsetFetchRequest::default()
                .with_group_id(g())
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partition_indexes(vec![0])]));
            c.call(ApiKey::OffsetFetch, v, &req).await
        };
        let code = if v >= 8 {
            resp.groups[0].error_code
        } else {
            resp.topics[0].partitions[0].error_code
        };
        assert_eq!(code, 15, "OffsetFetch v{v}");
    }
}
