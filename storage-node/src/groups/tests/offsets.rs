//! OffsetCommit / OffsetFetch: validation, durability, restart.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    TopicName,
};

use super::*;

fn commit_req(
    group: &str,
    generation: i32,
    member: &str,
    parts: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(
            parts
                .iter()
                .map(|(t, p, o)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partitions(vec![OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*o)
                            .with_committed_leader_epoch(3)
                            .with_committed_metadata(Some(s("m")))])
                })
                .collect(),
        )
}

async fn commit(
    h: &Harness,
    group: &str,
    generation: i32,
    member: &str,
    parts: &[(&str, i32, i64)],
) -> Vec<i16> {
    let r: OffsetCommitResponse = call(
        h,
        ApiKey::OffsetCommit,
        8,
        &commit_req(group, generation, member, parts),
    )
    .await;
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// OffsetFetch v7 of specific partitions: (offset, leader epoch) per partition.
async fn fetch_v7(
    coord: &GroupCoordinator,
    cluster: Uuid,
    group: &str,
    topic: &str,
    parts: &[i32],
) -> Vec<(i64, i32)> {
    let req = OffsetFetchRequest::default()
        .with_group_id(gid(group))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(parts.to_vec())]));
    let r: OffsetFetchResponse = call_in(coord, cluster, ApiKey::OffsetFetch, 7, &req)
        .await
        .unwrap();
    assert_eq!(r.error_code, 0);
    r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.committed_offset, p.committed_leader_epoch))
        .collect()
}

#[tokio::test]
async fn simple_commits_persist_and_survive_a_restart() {
    let h = Harness::new();
    let codes = commit(&h, "g", -1, "", &[("t", 0, 42), ("t", 1, 7), ("u", 0, 1)]).await;
    assert_eq!(codes, vec![0, 0, 0]);
    assert_eq!(
        fetch_v7(&h.coord, h.cluster, "g", "t", &[0, 1, 2]).await,
        vec![(42, 3), (7, 3), (-1, -1)]
    );

    // A new coordinator over the same metadata file (a node restart) sees them.
    let restarted = h.restart();
    assert_eq!(
        fetch_v7(&restarted, h.cluster, "g", "t", &[1, 0]).await,
        vec![(7, 3), (42, 3)]
    );

    // v8 multi-group form; topics null = everything committed.
    let req = OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(gid("g"))
            .with_topics(None),
        OffsetFetchRequestGroup::default()
            .with_group_id(gid("none"))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(TopicName(s("t")))
                .with_partition_indexes(vec![0])])),
    ]);
    let r: OffsetFetchResponse = call_in(&restarted, h.cluster, ApiKey::OffsetFetch, 8, &req)
        .await
        .unwrap();
    assert_eq!(r.groups.len(), 2);
    let all: Vec<(String, i32, i64)> = r.groups[0]
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index, p.committed_offset))
        })
        .collect();
    assert_eq!(
        all,
        vec![("t".into(), 0, 42), ("t".into(), 1, 7), ("u".into(), 0, 1)]
    );
    assert_eq!(r.groups[1].topics[0].partitions[0].committed_offset, -1);
}

#[tokio::test(start_paused = true)]
async fn group_commits_are_validated_against_membership() {
    let h = Arc::new(Harness::new());
    let (l, f, gen) = stable_pair(&h, "g").await;
    assert_eq!(commit(&h, "g", gen, &l, &[("t", 0, 10)]).await, vec![0]);
    assert_eq!(commit(&h, "g", gen, &f, &[("t", 1, 20)]).await, vec![0]);
    assert_eq!(
        commit(&h, "g", gen + 5, &f, &[("t", 1, 99)]).await,
        vec![22],
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        commit(&h, "g", gen, "stranger", &[("t", 1, 99)]).await,
        vec![25],
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(
        commit(&h, "g", -1, "", &[("t", 1, 99)]).await,
        vec![25],
        "no simple commits into a live group"
    );
    assert_eq!(
        commit(&h, "nogroup", 3, "x", &[("t", 1, 99)]).await,
        vec![22]
    );
    let v9: OffsetCommitResponse = call(
        &h,
        ApiKey::OffsetCommit,
        9,
        &commit_req("nogroup", 3, "x", &[("t", 1, 99)]),
    )
    .await;
    assert_eq!(
        v9.topics[0].partitions[0].error_code, 69,
        "GROUP_ID_NOT_FOUND from v9"
    );
    assert_eq!(
        fetch_v7(&h.coord, h.cluster, "g", "t", &[0, 1]).await,
        vec![(10, 3), (20, 3)]
    );

    // Metadata over the limit is refused per partition; the rest is stored.
    let mut req = commit_req("g", gen, &l, &[("t", 0, 11), ("t", 1, 21)]);
    req.topics[1].partitions[0].committed_metadata = Some(s(&"x".repeat(5000)));
    let r: OffsetCommitResponse = call(&h, ApiKey::OffsetCommit, 8, &req).await;
    let codes: Vec<i16> = r
        .topics
        .iter()
        .map(|t| t.partitions[0].error_code)
        .collect();
    assert_eq!(codes, vec![0, 12]);
    assert_eq!(
        fetch_v7(&h.coord, h.cluster, "g", "t", &[0, 1]).await,
        vec![(11, 3), (20, 3)]
    );
}

#[tokio::test]
async fn offsets_are_isolated_per_cluster() {
    let h = Harness::new();
    assert_eq!(commit(&h, "g", -1, "", &[("t", 0, 5)]).await, vec![0]);
    let other = Uuid::new_v4();
    assert_eq!(
        fetch_v7(&h.coord, other, "g", "t", &[0]).await,
        vec![(-1, -1)]
    );
    assert_eq!(
        fetch_v7(&h.coord, h.cluster, "g", "t", &[0]).await,
        vec![(5, 3)]
    );
}
