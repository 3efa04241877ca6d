//! Quotas, limits and metering: unit tests with explicit time, then the dispatch hooks
//! through the in-memory protocol harness and the IO shell on tokio's paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use fjord_tenancy::quota::ClusterLimits;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::metering::Meterer;
use super::*;
use crate::tests::{batch, parse_response, plain, request_frame, Env, NOW};
use crate::transport::tests::{gateway, set_limits};
use crate::Outcome;

#[test]
fn overrides_apply_over_defaults_and_bad_ones_are_named() {
    let defaults = ClusterLimits::default();
    let mut o = BTreeMap::new();
    o.insert("max-partitions".to_string(), 4800);
    let l = cluster_limits(&defaults, &o).unwrap();
    assert_eq!(l.max_partitions, 4800);
    assert_eq!(l.max_connections, 3000, "others keep MSK's defaults");
    o.insert("max-partitons".to_string(), 1);
    assert!(cluster_limits(&defaults, &o)
        .unwrap_err()
        .contains("max-partitons"));
    let mut zero = BTreeMap::new();
    zero.insert("requests-per-sec".to_string(), 0);
    assert!(cluster_limits(&defaults, &zero)
        .unwrap_err()
        .contains("requests-per-sec"));
}

#[tokio::test]
async fn admission_counts_connections_and_their_rate() {
    let env = Env::new(&[]).await;
    let cluster = env.tenant.cluster.id;
    set_limits(
        &*env.store,
        cluster,
        &[("max-connections", 3), ("connection-attempts-per-sec", 4)],
    )
    .await;
    let q = env.gw.quotas();
    let entry = q.cluster(cluster, NOW).await.unwrap().unwrap();
    let a = q.admit(&entry, NOW).unwrap();
    let _b = q.admit(&entry, NOW).unwrap();
    let _c = q.admit(&entry, NOW).unwrap();
    assert_eq!(
        q.admit(&entry, NOW).unwrap_err(),
        Refusal::Connections { cluster, max: 3 }
    );
    drop(a);
    assert_eq!(entry.open_connections(), 2);
    // 4 attempts used the second's 4 tokens (the refused one counted too). As with Kafka's
    // strict quotas (KIP-599), an attempt is admitted while the bucket is not in debt, so the
    // 5th takes it into debt and the 6th is refused for the rate although a slot is free...
    let e = q.admit(&entry, NOW).unwrap();
    let r = q.admit(&entry, NOW).unwrap_err();
    assert_eq!(
        r,
        Refusal::Rate {
            cluster,
            per_sec: 4
        }
    );
    assert!(
        r.to_string().contains("4 new connections per second"),
        "{r}"
    );
    // ...until the debt is paid.
    drop(e);
    let _d = q.admit(&entry, NOW + 1000).unwrap();
    // Unknown clusters get no entry.
    assert!(q
        .cluster(uuid::Uuid::from_u128(9), NOW)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn limits_are_reread_after_the_refresh_interval() {
    let env = Env::new(&[]).await;
    let cluster = env.tenant.cluster.id;
    let q = env.gw.quotas();
    let entry = q.cluster(cluster, NOW).await.unwrap().unwrap();
    assert_eq!(entry.limits().max_connections, 3000);
    set_limits(&*env.store, cluster, &[("max-connections", 7)]).await;
    q.cluster(cluster, NOW + 1000).await.unwrap();
    assert_eq!(
        entry.limits().max_connections,
        3000,
        "cached within the interval"
    );
    q.cluster(cluster, NOW + 30_000).await.unwrap();
    assert_eq!(entry.limits().max_connections, 7);
}

/// A throttled response's frame, decoded; panics on any other outcome.
fn throttled<R: Decodable>(out: Outcome, api: ApiKey, v: i16) -> (R, Duration) {
    let Outcome::Throttled {
        frame: Some(frame),
        mute,
        ..
    } = out
    else {
        panic!("expected a throttled response, got {out:?}");
    };
    let (_, mut b) = parse_response(api, v, &frame);
    (R::decode(&mut b, v).unwrap(), mute)
}

fn create(name: &str) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.into())))
            .with_num_partitions(1)
            .with_replication_factor(-1)])
        .with_timeout_ms(1000)
}

#[tokio::test]
async fn topic_admin_requests_over_two_per_second_are_throttled() {
    let env = Env::new(&["n1"]).await;
    let mut c = env.authed().await;
    for name in ["a", "b"] {
        let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &create(name)).await;
        assert_eq!(r.throttle_time_ms, 0);
        assert_eq!(r.topics[0].error_code, 0);
    }
    let out = c.send(ApiKey::CreateTopics, 7, &create("c")).await;
    let (r, mute): (CreateTopicsResponse, _) = throttled(out, ApiKey::CreateTopics, 7);
    // Answered normally, with the time to the next allowed request (2/s: 500 ms).
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(r.throttle_time_ms, 500);
    assert_eq!(mute, Duration::from_millis(500));
}

fn produce(topic: &str, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

#[tokio::test]
async fn a_partition_over_its_produce_rate_is_throttled_and_metered() {
    let env = Env::new(&["n1"]).await;
    let cluster = env.tenant.cluster.id;
    set_limits(
        &*env.store,
        cluster,
        &[("partition-ingress-bytes-per-sec", 100)],
    )
    .await;
    env.create_topic("hot", 2).await;
    let mut c = env.authed().await;
    let records = batch(20);
    assert!(records.len() > 100, "the batch is over one second's worth");
    let out = c
        .send(ApiKey::Produce, 9, &produce("hot", records.clone(), -1))
        .await;
    let (r, mute): (ProduceResponse, _) = throttled(out, ApiKey::Produce, 9);
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    // Debt = batch - 100 bytes at 100 B/s.
    let expected = ((records.len() as i32 - 100) * 10).min(10_000);
    assert_eq!(r.throttle_time_ms, expected);
    assert_eq!(mute.as_millis() as i32, expected);
    // Old versions carry the field at the end too (no tagged fields).
    let out = c
        .send(ApiKey::Produce, 7, &produce("hot", records.clone(), -1))
        .await;
    let (r, _): (ProduceResponse, _) = throttled(out, ApiKey::Produce, 7);
    assert!(r.throttle_time_ms > expected);
    // acks=0: nothing to answer, but the connection is still muted.
    let out = c
        .send(ApiKey::Produce, 9, &produce("hot", records.clone(), 0))
        .await;
    assert!(
        matches!(out, Outcome::Throttled { frame: None, .. }),
        "{out:?}"
    );

    // Metering: record bytes in; fetch response bytes out.
    let out = c.send(ApiKey::Fetch, 12, &fetch("hot")).await;
    let fetched = match out {
        Outcome::Respond(f) => f.len() as u64,
        other => panic!("{other:?}"),
    };
    let mut m = Meterer::default();
    assert_eq!(
        m.tick(&env.gw, NOW).await,
        0,
        "the first tick opens the period"
    );
    assert_eq!(m.tick(&env.gw, NOW + 3_600_000).await, 1);
    let usage = env.store.list_usage(cluster, 0, i64::MAX).await.unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].bytes_in, 3 * records.len() as u64);
    assert_eq!(usage[0].bytes_out, fetched);
    assert_eq!(usage[0].source, env.gw.config().gateway_id);
    // This gateway does not meter cluster-hours (not configured to).
    assert_eq!(usage[0].cluster_hours, 0.0);
    // Nothing new: nothing written.
    assert_eq!(m.tick(&env.gw, NOW + 2 * 3_600_000).await, 0);
}

fn fetch(topic: &str) -> FetchRequest {
    fetch_by(topic, uuid::Uuid::nil())
}

/// A fetch naming the topic both ways (v ≤ 12 use the name, v13+ the id).
fn fetch_by(topic: &str, id: uuid::Uuid) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.into())))
            .with_topic_id(id)
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])])
}

#[tokio::test]
async fn a_partition_over_its_fetch_rate_is_throttled() {
    let env = Env::new(&["n1"]).await;
    set_limits(
        &*env.store,
        env.tenant.cluster.id,
        &[("partition-egress-bytes-per-sec", 100)],
    )
    .await;
    let id = env.create_topic("t", 1).await;
    let mut c = env.authed().await;
    let records = batch(20);
    let r: ProduceResponse = c
        .call(ApiKey::Produce, 9, &produce("t", records.clone(), -1))
        .await;
    assert_eq!(
        r.throttle_time_ms, 0,
        "produce is within its (default) quota"
    );
    for v in [12, 16] {
        let out = c.send(ApiKey::Fetch, v, &fetch_by("t", id)).await;
        let (r, _): (FetchResponse, _) = throttled(out, ApiKey::Fetch, v);
        let got = r.responses[0].partitions[0]
            .records
            .as_ref()
            .map_or(0, |b| b.len());
        assert_eq!(got, records.len(), "answered in full");
        assert!(
            r.throttle_time_ms >= (records.len() as i32 - 100) * 10 || r.throttle_time_ms == 10_000,
            "v{v}: {}",
            r.throttle_time_ms
        );
    }
}

#[tokio::test]
async fn cluster_and_partition_hours_when_configured() {
    let (_dir, gw, store, tenant) = gateway(|c, _, _| c.meter_cluster_hours = true).await;
    let cluster = tenant.cluster.id;
    store
        .register_node(&fjord_metadata::NodeInfo {
            id: "n1".into(),
            rpc_addr: "127.0.0.1:1".into(),
            cert_der: vec![],
            heartbeat_ms: NOW,
        })
        .await
        .unwrap();
    gw.topics()
        .create_topic(cluster, "t", 1, BTreeMap::new(), true, NOW)
        .await
        .unwrap();
    let entry = gw.quotas().cluster(cluster, NOW).await.unwrap().unwrap();
    entry.meter.record_bytes_in(5);
    let mut m = Meterer::default();
    m.tick(&gw, NOW).await;
    assert_eq!(m.tick(&gw, NOW + 2 * 3_600_000).await, 1);
    let usage = store.list_usage(cluster, 0, i64::MAX).await.unwrap();
    let hours = usage[0].cluster_hours;
    assert!((hours - 2.0).abs() < 0.01, "{usage:?}");
}

fn listed(groups: &[&str], v: i16) -> Bytes {
    let resp = ListGroupsResponse::default().with_groups(
        groups
            .iter()
            .map(|g| {
                ListedGroup::default().with_group_id(GroupId(StrBytes::from_string(g.to_string())))
            })
            .collect(),
    );
    let mut b = BytesMut::new();
    resp.encode(&mut b, v).unwrap();
    b.freeze()
}

fn join(group: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
}

#[tokio::test]
async fn a_new_group_beyond_the_limit_cannot_join() {
    let env = Env::new(&["n1"]).await;
    set_limits(
        &*env.store,
        env.tenant.cluster.id,
        &[("max-consumer-groups", 2)],
    )
    .await;
    let v = crate::versions::supported(ApiKey::ListGroups).unwrap().max;
    // The coordinator already has one group; its answers are ListGroups-shaped for the census.
    *env.nodes["n1"].group_reply.lock() = listed(&["existing"], v);
    let mut c = env.authed().await;
    let forwarded = |env: &Env| {
        env.nodes["n1"]
            .groups
            .lock()
            .iter()
            .filter(|r| r.api_key == ApiKey::JoinGroup as i16)
            .count()
    };
    for g in ["existing", "new-1", "existing", "new-1"] {
        let out = c.send(ApiKey::JoinGroup, 5, &join(g)).await;
        assert!(matches!(out, Outcome::Respond(_)), "{out:?}");
    }
    assert_eq!(forwarded(&env), 4);
    let out = c.send(ApiKey::JoinGroup, 5, &join("new-2")).await;
    let Outcome::Respond(frame) = out else {
        panic!("{out:?}")
    };
    let (_, mut b) = parse_response(ApiKey::JoinGroup, 5, &frame);
    let r = JoinGroupResponse::decode(&mut b, 5).unwrap();
    assert_eq!(
        r.error_code,
        kafka_protocol::ResponseError::InvalidRequest.code()
    );
    assert_eq!(
        forwarded(&env),
        4,
        "the refused join never reached the coordinator"
    );
}

/// Writes a request frame to the duplex stream and reads the response frame.
async fn roundtrip<M: Encodable>(
    s: &mut tokio::io::DuplexStream,
    api: ApiKey,
    v: i16,
    corr: i32,
    body: &M,
) -> Bytes {
    let frame = request_frame(api, v, corr, body);
    let mut out = BytesMut::new();
    out.put_i32(frame.len() as i32);
    out.put_slice(&frame);
    s.write_all(&out).await.unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).await.unwrap();
    let mut rest = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut rest).await.unwrap();
    let mut f = BytesMut::from(&size[..]);
    f.put_slice(&rest);
    f.freeze()
}

#[tokio::test(start_paused = true)]
async fn a_throttled_connection_reads_nothing_until_the_throttle_passed() {
    let env = Env::new(&[]).await;
    set_limits(
        &*env.store,
        env.tenant.cluster.id,
        &[("requests-per-sec", 1)],
    )
    .await;
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let peer = "127.0.0.1:5000".parse().unwrap();
    tokio::spawn(crate::connection::run(env.gw.clone(), server, peer, stop));
    let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    roundtrip(&mut client, ApiKey::SaslHandshake, 1, 1, &hs).await;
    roundtrip(
        &mut client,
        ApiKey::SaslAuthenticate,
        2,
        2,
        &plain(&env.tenant),
    )
    .await;
    let md = MetadataRequest::default().with_topics(Some(vec![]));
    let decode = |f: &Bytes| {
        let (_, mut b) = parse_response(ApiKey::Metadata, 12, f);
        MetadataResponse::decode(&mut b, 12).unwrap()
    };
    assert_eq!(
        decode(&roundtrip(&mut client, ApiKey::Metadata, 12, 3, &md).await).throttle_time_ms,
        0
    );
    // The second request of the second is answered at once, with the throttle...
    let t0 = tokio::time::Instant::now();
    let second = decode(&roundtrip(&mut client, ApiKey::Metadata, 12, 4, &md).await);
    assert!(t0.elapsed() < Duration::from_millis(50));
    let throttle = second.throttle_time_ms;
    assert!((900..=1000).contains(&throttle), "{throttle}");
    // ...and the next one is not read before the throttle has passed.
    let t1 = tokio::time::Instant::now();
    roundtrip(&mut client, ApiKey::Metadata, 12, 5, &md).await;
    assert!(
        t1.elapsed() >= Duration::from_millis(throttle as u64),
        "{:?}",
        t1.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn failed_logins_are_answered_after_the_delay() {
    let (_dir, gw, _store, tenant) =
        gateway(|c, _, _| c.auth_failure_delay = Duration::from_millis(300)).await;
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(crate::connection::run(
        gw,
        server,
        "127.0.0.1:5000".parse().unwrap(),
        stop,
    ));
    let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    roundtrip(&mut client, ApiKey::SaslHandshake, 1, 1, &hs).await;
    let bad = SaslAuthenticateRequest::default()
        .with_auth_bytes(Bytes::from(format!("\0{}\0wrong", tenant.access_key_id)));
    let t0 = tokio::time::Instant::now();
    let f = roundtrip(&mut client, ApiKey::SaslAuthenticate, 2, 2, &bad).await;
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t0.elapsed()
    );
    let (_, mut b) = parse_response(ApiKey::SaslAuthenticate, 2, &f);
    let r = SaslAuthenticateResponse::decode(&mut b, 2).unwrap();
    assert_ne!(r.error_code, 0);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "closed after the failure");
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_does_not_authenticate_in_time_is_closed() {
    let env = Env::new(&[]).await;
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let peer = "127.0.0.1:5000".parse().unwrap();
    tokio::spawn(crate::connection::run(env.gw.clone(), server, peer, stop));
    let t0 = tokio::time::Instant::now();
    // ApiVersions is answered, but does not authenticate.
    roundtrip(
        &mut client,
        ApiKey::ApiVersions,
        3,
        1,
        &ApiVersionsRequest::default(),
    )
    .await;
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    let waited = t0.elapsed();
    assert!(rest.is_empty());
    assert!(
        waited >= env.gw.config().authentication_timeout,
        "{waited:?}"
    );
    assert!(waited < env.gw.config().idle_timeout, "{waited:?}");
}
