//! JoinGroup / SyncGroup / Heartbeat / LeaveGroup behaviour.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::{
    ApiKey, HeartbeatRequest, HeartbeatResponse, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse,
};

use super::*;

#[tokio::test(start_paused = true)]
async fn two_members_share_a_generation_and_sync_distributes_assignments() {
    let h = Arc::new(Harness::new());
    let (a, b) = tokio::join!(join_new(&h, "g"), join_new(&h, "g"));
    assert_eq!((a.error_code, b.error_code), (0, 0));
    assert_eq!(a.generation_id, 1);
    assert_eq!(a.generation_id, b.generation_id);
    assert_eq!(a.leader, b.leader);
    assert_ne!(a.member_id, b.member_id);
    assert!(a.member_id.starts_with("test-client-"));
    assert_eq!(a.protocol_name.as_deref(), Some("range"));
    let (leader, follower) = if a.leader == a.member_id {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(leader.members.len(), 2, "the leader sees every member");
    assert!(follower.members.is_empty(), "followers see no members");
    assert!(leader.members.iter().all(|m| m.metadata == "meta"));

    let (l, f) = (leader.member_id.to_string(), follower.member_id.to_string());
    let gen = leader.generation_id;
    // The follower syncs first and must wait for the leader's assignment.
    let h2 = h.clone();
    let f2 = f.clone();
    let follower_sync = tokio::spawn(async move { sync(&h2, "g", &f2, gen, &[]).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !follower_sync.is_finished(),
        "follower waits for the leader"
    );
    let ls = sync(
        &h,
        "g",
        &l,
        gen,
        &[(&l, "for-leader"), (&f, "for-follower")],
    )
    .await;
    assert_eq!(ls.error_code, 0);
    assert_eq!(ls.assignment, Bytes::from("for-leader"));
    let fs = follower_sync.await.unwrap();
    assert_eq!(fs.error_code, 0);
    assert_eq!(fs.assignment, Bytes::from("for-follower"));

    assert_eq!(heartbeat(&h, "g", &l, gen).await, 0);
    assert_eq!(heartbeat(&h, "g", &f, gen).await, 0);
    assert_eq!(
        heartbeat(&h, "g", &f, gen + 1).await,
        22,
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        heartbeat(&h, "g", "nobody", gen).await,
        25,
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(heartbeat(&h, "other", &f, gen).await, 25, "unknown group");
}

#[tokio::test(start_paused = true)]
async fn a_new_member_makes_heartbeats_answer_rebalance_in_progress() {
    let h = Arc::new(Harness::new());
    let (l, f, gen) = stable_pair(&h, "g").await;

    let h2 = h.clone();
    let newcomer = tokio::spawn(async move { join_new(&h2, "g").await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        heartbeat(&h, "g", &l, gen).await,
        27,
        "REBALANCE_IN_PROGRESS"
    );
    assert_eq!(heartbeat(&h, "g", &f, gen).await, 27);
    // Commits and syncs of the old generation are refused meanwhile.
    let stale = sync(&h, "g", &f, gen, &[]).await;
    assert_eq!(stale.error_code, 27);

    let (jl, jf) = (join_req("g", &l, RANGE), join_req("g", &f, RANGE));
    let (rl, rf) = tokio::join!(
        call::<_, JoinGroupResponse>(&h, ApiKey::JoinGroup, 5, &jl),
        call::<_, JoinGroupResponse>(&h, ApiKey::JoinGroup, 5, &jf),
    );
    let rn = newcomer.await.unwrap();
    for r in [&rl, &rf, &rn] {
        assert_eq!(r.error_code, 0);
        assert_eq!(r.generation_id, gen + 1);
    }
    assert_eq!(rl.leader.as_str(), l, "the leader stays leader");
    assert_eq!(rl.members.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn leaving_triggers_a_rebalance() {
    let h = Arc::new(Harness::new());
    let (l, f, gen) = stable_pair(&h, "g").await;

    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_members(vec![
            MemberIdentity::default().with_member_id(s(&f)),
            MemberIdentity::default().with_member_id(s("ghost")),
        ]);
    let resp: LeaveGroupResponse = call(&h, ApiKey::LeaveGroup, 3, &leave).await;
    assert_eq!(resp.error_code, 0);
    let codes: Vec<i16> = resp.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![0, 25]);

    assert_eq!(heartbeat(&h, "g", &l, gen).await, 27);
    // The remaining member rejoins: everyone known has joined, so no waiting.
    let rejoin: JoinGroupResponse = call(&h, ApiKey::JoinGroup, 5, &join_req("g", &l, RANGE)).await;
    assert_eq!(rejoin.error_code, 0);
    assert_eq!(rejoin.generation_id, gen + 1);
    assert_eq!(rejoin.leader.as_str(), l);
    assert_eq!(rejoin.members.len(), 1);
    assert_eq!(
        heartbeat(&h, "g", &f, gen + 1).await,
        25,
        "the leaver is gone"
    );

    // v0-2 carry a single member and a top-level error.
    let old = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s("ghost"));
    let resp: LeaveGroupResponse = call(&h, ApiKey::LeaveGroup, 1, &old).await;
    assert_eq!(resp.error_code, 25);
}

#[tokio::test(start_paused = true)]
async fn silent_members_expire_after_their_session_timeout() {
    let h = Arc::new(Harness::new());
    let (l, f, gen) = stable_pair(&h, "g").await;
    // The leader keeps heartbeating; the follower goes silent (session timeout 10 s).
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(4)).await;
        let code = heartbeat(&h, "g", &l, gen).await;
        if code != 0 {
            assert_eq!(code, 27, "the follower's expiry starts a rebalance");
            break;
        }
    }
    assert_eq!(heartbeat(&h, "g", &l, gen).await, 27);
    assert_eq!(
        heartbeat(&h, "g", &f, gen).await,
        25,
        "the follower was removed"
    );
    let rejoin: JoinGroupResponse = call(&h, ApiKey::JoinGroup, 5, &join_req("g", &l, RANGE)).await;
    assert_eq!(rejoin.generation_id, gen + 1);
    assert_eq!(rejoin.members.len(), 1);
    let synced = sync(&h, "g", &l, gen + 1, &[(&l, "all")]).await;
    assert_eq!(synced.error_code, 0);

    // Then nobody heartbeats at all: the group empties by itself.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let d = describe(&h, 5, "g").await;
    // Emptied (as Kafka reports it) and then dropped from memory: it has no offsets.
    assert_eq!(d.groups[0].group_state.as_str(), "Empty");
    assert!(d.groups[0].members.is_empty());
    let d = describe(&h, 5, "g").await;
    assert_eq!(d.groups[0].group_state.as_str(), "Dead");
}

#[tokio::test(start_paused = true)]
async fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
    let h = Arc::new(Harness::new());
    let (l, f, gen) = stable_pair(&h, "g").await;
    // The leader rejoins (forcing a rebalance); the follower keeps heartbeating but never
    // rejoins: the join completes at the rebalance timeout (5 s) without it.
    let h2 = h.clone();
    let l2 = l.clone();
    let rejoin = tokio::spawn(async move {
        call::<_, JoinGroupResponse>(&h2, ApiKey::JoinGroup, 5, &join_req("g", &l2, RANGE)).await
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(heartbeat(&h, "g", &f, gen).await, 27);
    assert!(!rejoin.is_finished());
    let r = rejoin.await.unwrap();
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, gen + 1);
    assert_eq!(r.members.len(), 1);
    assert_eq!(heartbeat(&h, "g", &f, gen).await, 25);
}

#[tokio::test(start_paused = true)]
async fn join_validates_session_timeout_group_id_and_protocols() {
    let h = Harness::new();
    let bad_timeout = join_req("g", "", RANGE).with_session_timeout_ms(10);
    let r: JoinGroupResponse = call(&h, ApiKey::JoinGroup, 5, &bad_timeout).await;
    assert_eq!(r.error_code, 26, "INVALID_SESSION_TIMEOUT");
    let r: JoinGroupResponse = call(&h, ApiKey::JoinGroup, 5, &join_req("", "", RANGE)).await;
    assert_eq!(r.error_code, 24, "INVALID_GROUP_ID");
    let r: JoinGroupResponse = call(&h, ApiKey::JoinGroup, 5, &join_req("g", "", &[])).await;
    assert_eq!(r.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");

    // Versions before 4 join directly, without MEMBER_ID_REQUIRED; the group then picks the
    // protocol; a member without it is refused.
    let r: JoinGroupResponse = call(
        &h,
        ApiKey::JoinGroup,
        3,
        &join_req("g", "", &[("roundrobin", "x"), ("range", "y")]),
    )
    .await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.protocol_name.as_deref(), Some("roundrobin"));
    let r: JoinGroupResponse = call(
        &h,
        ApiKey::JoinGroup,
        3,
        &join_req("g", "", &[("sticky", "z")]),
    )
    .await;
    assert_eq!(r.error_code, 23);
    let r: JoinGroupResponse =
        call(&h, ApiKey::JoinGroup, 5, &join_req("g", "forged", RANGE)).await;
    assert_eq!(r.error_code, 25, "an invented member id is unknown");
}

#[tokio::test(start_paused = true)]
async fn static_members_rejoin_without_rebalance_and_fence_their_old_id() {
    let h = Harness::new();
    let join =
        |member: &str| join_req("g", member, RANGE).with_group_instance_id(Some(s("host-1")));
    // Static members skip MEMBER_ID_REQUIRED.
    let first: JoinGroupResponse = call(&h, ApiKey::JoinGroup, 5, &join("")).await;
    assert_eq!(first.error_code, 0);
    assert!(first.member_id.starts_with("host-1-"));
    let old = first.member_id.to_string();
    let s1 = sync(&h, "g", &old, first.generation_id, &[(&old, "A")]).await;
    assert_eq!(s1.assignment, Bytes::from("A"));

    // Restarted with the same instance id: a new member id, same generation, no rebalance.
    let again: JoinGroupResponse = call(&h, ApiKey::JoinGroup, 5, &join("")).await;
    assert_eq!(again.error_code, 0);
    assert_eq!(again.generation_id, first.generation_id);
    let new = again.member_id.to_string();
    assert_ne!(new, old);
    let s2 = sync(&h, "g", &new, again.generation_id, &[]).await;
    assert_eq!((s2.error_code, s2.assignment), (0, Bytes::from("A")));

    let fenced = HeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id(first.generation_id)
        .with_member_id(s(&old))
        .with_group_instance_id(Some(s("host-1")));
    let r: HeartbeatResponse = call(&h, ApiKey::Heartbeat, 4, &fenced).await;
    assert_eq!(r.error_code, 82, "FENCED_INSTANCE_ID");

    // LeaveGroup by instance id alone.
    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_members(vec![MemberIdentity::default()
            .with_member_id(s(""))
            .with_group_instance_id(Some(s("host-1")))]);
    let r: LeaveGroupResponse = call(&h, ApiKey::LeaveGroup, 4, &leave).await;
    assert_eq!(r.members[0].error_code, 0);
    assert_eq!(heartbeat(&h, "g", &new, again.generation_id).await, 25);
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_never_syncs_makes_the_group_rebalance() {
    let h = Arc::new(Harness::new());
    let (a, b) = tokio::join!(join_new(&h, "g"), join_new(&h, "g"));
    let (leader, follower) = if a.leader == a.member_id {
        (a, b)
    } else {
        (b, a)
    };
    let gen = follower.generation_id;
    let f = follower.member_id.to_string();
    // The follower's sync waits; the leader never syncs; after the rebalance timeout (5 s)
    // the leader is dropped and the follower is told to rejoin.
    let fs = sync(&h, "g", &f, gen, &[]).await;
    assert_eq!(fs.error_code, 27);
    assert_eq!(heartbeat(&h, "g", &leader.member_id, gen).await, 25);
}

#[test]
fn handle_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let h = Harness::new();
    let req = GroupRequest {
        cluster_id: h.cluster,
        api_key: ApiKey::JoinGroup as i16,
        api_version: 5,
        body: Bytes::new(),
        client_id: String::new(),
        client_host: String::new(),
    };
    let fut = h.coord.handle(req, 0);
    assert_send(&fut);
}

#[tokio::test(start_paused = true)]
async fn zero_rebalance_timeouts_complete_without_spinning() {
    let h = Arc::new(Harness::new());
    let req = |id: &str| join_req("z", id, RANGE).with_rebalance_timeout_ms(0);
    let first: JoinGroupResponse = call(&h, ApiKey::JoinGroup, 5, &req("")).await;
    let id = first.member_id.to_string();
    let joined: JoinGroupResponse = call(&h, ApiKey::JoinGroup, 5, &req(&id)).await;
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    // Rejoining with the same metadata before syncing (as after a lost answer): the same
    // generation again, answered at once.
    let again: JoinGroupResponse = call(&h, ApiKey::JoinGroup, 5, &req(&id)).await;
    assert_eq!((again.error_code, again.generation_id), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn the_initial_delay_waits_for_more_members_and_extends_while_they_arrive() {
    let h = Arc::new(Harness::new());
    let start = tokio::time::Instant::now();
    let h2 = h.clone();
    let a = tokio::spawn(async move {
        // v3: no MEMBER_ID_REQUIRED round, so the timing is the coordinator's alone.
        let r: JoinGroupResponse = call(&h2, ApiKey::JoinGroup, 3, &join_req("d", "", RANGE)).await;
        (r, tokio::time::Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(80)).await;
    let b: JoinGroupResponse = call(&h, ApiKey::JoinGroup, 3, &join_req("d", "", RANGE)).await;
    let b_done = tokio::time::Instant::now();
    let (a, a_done) = a.await.unwrap();
    assert_eq!((a.error_code, b.error_code), (0, 0));
    assert_eq!((a.generation_id, b.generation_id), (1, 1));
    assert_eq!(a.leader, b.leader);
    // First delay ends at 100 ms; B arrived meanwhile, so it is extended once more by 100 ms.
    assert_eq!(a_done, b_done);
    assert_eq!(a_done - start, Duration::from_millis(200));
}

#[tokio::test(start_paused = true)]
async fn many_members_converge_when_one_leaves_mid_rebalance() {
    let h = Arc::new(Harness::new());
    let joins: Vec<_> = (0..5)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move { join_new(&h, "many").await })
        })
        .collect();
    let mut members = Vec::new();
    for j in joins {
        let r = j.await.unwrap();
        assert_eq!((r.error_code, r.generation_id), (0, 1));
        members.push(r);
    }
    let leader = members[0].leader.to_string();
    assert_eq!(members.iter().filter(|m| m.members.len() == 5).count(), 1);
    let gen = 1;
    let assignment: Vec<(String, String)> = members
        .iter()
        .map(|m| (m.member_id.to_string(), format!("a-{}", m.member_id)))
        .collect();
    let pairs: Vec<(&str, &str)> = assignment
        .iter()
        .map(|(m, a)| (m.as_str(), a.as_str()))
        .collect();
    let syncs: Vec<_> = members
        .iter()
        .map(|m| {
            let (h, id) = (h.clone(), m.member_id.to_string());
            let mine = if id == leader {
                pairs
                    .iter()
                    .map(|(m, a)| (m.to_string(), a.to_string()))
                    .collect()
            } else {
                Vec::new()
            };
            tokio::spawn(async move {
                let mine: Vec<(&str, &str)> = mine
                    .iter()
                    .map(|(m, a): &(String, String)| (m.as_str(), a.as_str()))
                    .collect();
                (id.clone(), sync(&h, "many", &id, gen, &mine).await)
            })
        })
        .collect();
    for s in syncs {
        let (id, r) = s.await.unwrap();
        assert_eq!(r.error_code, 0);
        assert_eq!(r.assignment, Bytes::from(format!("a-{id}")));
    }

    // A rebalance starts (the leader rejoins); one follower leaves instead of rejoining; the
    // others rejoin and the new generation has four members, without waiting for the timeout.
    let start = tokio::time::Instant::now();
    let leaver = members
        .iter()
        .find(|m| m.member_id.as_str() != leader)
        .unwrap()
        .member_id
        .to_string();
    let rejoins: Vec<_> = members
        .iter()
        .filter(|m| m.member_id.as_str() != leaver)
        .map(|m| {
            let (h, id) = (h.clone(), m.member_id.to_string());
            tokio::spawn(async move {
                call::<_, JoinGroupResponse>(
                    &h,
                    ApiKey::JoinGroup,
                    5,
                    &join_req("many", &id, RANGE),
                )
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("many"))
        .with_members(vec![MemberIdentity::default().with_member_id(s(&leaver))]);
    let r: LeaveGroupResponse = call(&h, ApiKey::LeaveGroup, 4, &leave).await;
    assert_eq!(r.members[0].error_code, 0);
    for j in rejoins {
        let r = j.await.unwrap();
        assert_eq!((r.error_code, r.generation_id), (0, 2));
        if r.member_id.as_str() == leader {
            assert_eq!(r.members.len(), 4);
        }
    }
    assert!(tokio::time::Instant::now() - start < Duration::from_secs(1));
}
