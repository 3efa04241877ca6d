//! DescribeGroups / ListGroups / DeleteGroups and cluster isolation.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, TopicName,
};

use super::*;

async fn simple_commit(h: &Harness, group: &str) {
    let req = OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)])]);
    let r: OffsetCommitResponse = call(h, ApiKey::OffsetCommit, 6, &req).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
}

async fn delete(h: &Harness, groups: &[&str]) -> Vec<i16> {
    let req =
        DeleteGroupsRequest::default().with_groups_names(groups.iter().map(|g| gid(g)).collect());
    let r: DeleteGroupsResponse = call(h, ApiKey::DeleteGroups, 2, &req).await;
    r.results.iter().map(|r| r.error_code).collect()
}

async fn list(
    coord: &GroupCoordinator,
    cluster: Uuid,
    version: i16,
    states: &[&str],
) -> Vec<(String, String)> {
    let req =
        ListGroupsRequest::default().with_states_filter(states.iter().map(|x| s(x)).collect());
    let r: ListGroupsResponse = call_in(coord, cluster, ApiKey::ListGroups, version, &req)
        .await
        .unwrap();
    assert_eq!(r.error_code, 0);
    r.groups
        .iter()
        .map(|g| (g.group_id.to_string(), g.group_state.to_string()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn delete_groups_only_removes_groups_without_members() {
    let h = Arc::new(Harness::new());
    stable_pair(&h, "active").await;
    simple_commit(&h, "active-offsets-only").await;
    assert_eq!(
        delete(&h, &["active", "missing", "active-offsets-only"]).await,
        vec![68, 69, 0],
        "NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, deleted"
    );
    // Its offsets are gone from metadata, so it is gone from listings too.
    let listed = list(&h.coord, h.cluster, 4, &[]).await;
    assert_eq!(listed, vec![("active".to_string(), "Stable".to_string())]);
    assert_eq!(delete(&h, &["active-offsets-only"]).await, vec![69]);
}

#[tokio::test(start_paused = true)]
async fn describe_and_list_show_state_members_and_filters() {
    let h = Arc::new(Harness::new());
    let (l, f, _) = stable_pair(&h, "g").await;
    simple_commit(&h, "idle").await;

    let d = describe(&h, 5, "g").await;
    let g = &d.groups[0];
    assert_eq!((g.error_code, g.group_state.as_str()), (0, "Stable"));
    assert_eq!(
        (g.protocol_type.as_str(), g.protocol_data.as_str()),
        ("consumer", "range")
    );
    let mut members: Vec<(String, Bytes, String)> = g
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.member_assignment.clone(),
                m.client_host.to_string(),
            )
        })
        .collect();
    members.sort();
    let mut expected = vec![
        (l.clone(), Bytes::from("L"), "/127.0.0.1".to_string()),
        (f.clone(), Bytes::from("F"), "/127.0.0.1".to_string()),
    ];
    expected.sort();
    assert_eq!(members, expected);

    // A group known only through its offsets is Empty; an unknown one Dead (v6: not found).
    assert_eq!(
        describe(&h, 5, "idle").await.groups[0].group_state.as_str(),
        "Empty"
    );
    let unknown = describe(&h, 5, "nope").await;
    assert_eq!(
        (
            unknown.groups[0].error_code,
            unknown.groups[0].group_state.as_str()
        ),
        (0, "Dead")
    );
    assert_eq!(describe(&h, 6, "nope").await.groups[0].error_code, 69);

    let all = list(&h.coord, h.cluster, 4, &[]).await;
    assert_eq!(
        all,
        vec![
            ("g".to_string(), "Stable".to_string()),
            ("idle".to_string(), "Empty".to_string())
        ]
    );
    assert_eq!(
        list(&h.coord, h.cluster, 4, &["empty"]).await.len(),
        1,
        "states match case-insensitively"
    );
    let typed = ListGroupsRequest::default().with_types_filter(vec![s("consumer")]);
    let r: ListGroupsResponse = call(&h, ApiKey::ListGroups, 5, &typed).await;
    assert!(r.groups.is_empty(), "every group here is classic");
    let typed = ListGroupsRequest::default().with_types_filter(vec![s("Classic")]);
    let r: ListGroupsResponse = call(&h, ApiKey::ListGroups, 5, &typed).await;
    assert_eq!(r.groups.len(), 2);
    assert!(r.groups.iter().all(|g| g.group_type.as_str() == "classic"));
}

#[tokio::test(start_paused = true)]
async fn groups_are_invisible_across_clusters() {
    let h = Arc::new(Harness::new());
    let (l, _, gen) = stable_pair(&h, "g").await;
    let other = Uuid::new_v4();
    assert!(list(&h.coord, other, 3, &[]).await.is_empty());
    let req = DescribeGroupsRequest::default().with_groups(vec![gid("g")]);
    let d: DescribeGroupsResponse = call_in(&h.coord, other, ApiKey::DescribeGroups, 5, &req)
        .await
        .unwrap();
    assert_eq!(d.groups[0].group_state.as_str(), "Dead");
    let hb = kafka_protocol::messages::HeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id(gen)
        .with_member_id(s(&l));
    let r: kafka_protocol::messages::HeartbeatResponse =
        call_in(&h.coord, other, ApiKey::Heartbeat, 4, &hb)
            .await
            .unwrap();
    assert_eq!(r.error_code, 25);
    let req = DeleteGroupsRequest::default().with_groups_names(vec![gid("g")]);
    let r: DeleteGroupsResponse = call_in(&h.coord, other, ApiKey::DeleteGroups, 2, &req)
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, 69);
    assert_eq!(
        heartbeat(&h, "g", &l, gen).await,
        0,
        "the real group is untouched"
    );
}
