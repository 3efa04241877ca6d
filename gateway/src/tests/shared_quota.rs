//! Cluster limits split across gateways: two gateway processes (two [`Gateway`]s over one
//! SQLite file) each enforce half of a cluster's quotas while both heartbeat, and the one left
//! enforces all of it once the other has left or stopped heartbeating. Membership rounds are
//! driven with explicit times ([`crate::quota::membership::Membership::refresh`]).

use std::sync::Arc;

use bytes::Bytes;
use fjord_tenancy::secrets::SecretSealer;
use fjord_tenancy::{AuthConfig, Authenticator};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, ProduceResponse, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use uuid::Uuid;

use super::{batch, parse_response, plain, request_frame, Client, Env, MemDirectory, NOW};
use crate::quota::Refusal;
use crate::request::Outcome;
use crate::topics::TopicService;
use crate::transport::tests::set_limits;
use crate::{Gateway, GatewayConfig, Session};

/// A second gateway process on `env`'s metadata and storage nodes.
fn second_gateway(env: &Env) -> Arc<Gateway> {
    let auth = Arc::new(Authenticator::new(
        env.store.clone(),
        SecretSealer::from_key([7; 32]),
        AuthConfig {
            region: "us-east-1".into(),
            default_cluster: env.tenant.cluster.id,
            max_clock_skew_ms: 5 * 60 * 1000,
        },
    ));
    let mut config = GatewayConfig::new("gw2.us-east-1.fjord.test", 9092);
    config.broker_id = 8;
    config.auth_failure_delay = std::time::Duration::from_millis(1);
    Arc::new(
        Gateway::new(
            config,
            env.store.clone(),
            auth,
            Arc::new(TopicService::new(env.store.clone())),
            Arc::new(MemDirectory(env.nodes.clone())),
        )
        .unwrap(),
    )
}

/// A connection to `gw` authenticated with PLAIN as the dev key.
async fn authed_on(gw: &Arc<Gateway>, env: &Env) -> Client {
    let mut c = Client {
        gw: gw.clone(),
        session: Session::new(Uuid::from_u128(2)),
        corr: 0,
        now_ms: NOW,
    };
    let hs: SaslHandshakeResponse = c
        .call(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        )
        .await;
    assert_eq!(hs.error_code, 0);
    let resp: SaslAuthenticateResponse = c
        .call(ApiKey::SaslAuthenticate, 2, &plain(&env.tenant))
        .await;
    assert_eq!(resp.error_code, 0, "{:?}", resp.error_message);
    c
}

fn produce(topic: &str, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

/// Sends `req` at `now_ms` and returns the response's `throttle_time_ms`, checking that the
/// produce itself succeeded and that the connection is muted for exactly that long.
async fn produce_throttle(c: &mut Client, req: &ProduceRequest, now_ms: i64) -> i32 {
    c.now_ms = now_ms;
    let (frame, mute) = match c.send(ApiKey::Produce, 9, req).await {
        Outcome::Respond(frame) => (frame, std::time::Duration::ZERO),
        Outcome::Throttled {
            frame: Some(frame),
            mute,
            ..
        } => (frame, mute),
        other => panic!("expected a produce response, got {other:?}"),
    };
    let (_, mut body) = parse_response(ApiKey::Produce, 9, &frame);
    let r = ProduceResponse::decode(&mut body, 9).unwrap();
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(mute.as_millis() as i32, r.throttle_time_ms);
    r.throttle_time_ms
}

/// What the token bucket charges for `bytes` over a fresh bucket of `per_sec`: the time to pay
/// back the debt.
fn debt_ms(bytes: u64, per_sec: u64) -> i32 {
    if bytes <= per_sec {
        return 0;
    }
    ((bytes - per_sec) as f64 / (per_sec as f64 / 1000.0)).ceil() as i32
}

/// A produce request and an ingress quota under which its frame fits whole but is over half.
async fn setup(env: &Env) -> (ProduceRequest, u64, u64) {
    env.create_topic("t", 1).await;
    let req = produce("t", batch(50));
    // The ingress quota counts whole frames, size prefix included.
    let frame = request_frame(ApiKey::Produce, 9, 1, &req).len() as u64 + 4;
    let quota = frame * 3 / 2;
    let quota_i64 = i64::try_from(quota).unwrap();
    set_limits(
        &*env.store,
        env.tenant.cluster.id,
        &[("ingress-bytes-per-sec", quota_i64), ("max-connections", 4)],
    )
    .await;
    assert!(frame <= quota && frame > quota.div_ceil(2));
    (req, frame, quota)
}

#[tokio::test]
async fn two_live_gateways_each_enforce_half_the_ingress_quota_until_one_expires() {
    let env = Env::new(&["n1"]).await;
    let gw1 = env.gw.clone();
    let gw2 = second_gateway(&env);
    let (req, frame, quota) = setup(&env).await;
    let mut c1 = env.authed().await;
    let mut c2 = authed_on(&gw2, &env).await;

    // Alone, gateway 1 enforces the whole quota: the frame fits.
    assert_eq!(gw1.membership().refresh(NOW).await, 1);
    assert_eq!(produce_throttle(&mut c1, &req, NOW).await, 0);

    // Gateway 2 joins; both see two live gateways and each enforces half.
    assert_eq!(gw2.membership().refresh(NOW).await, 2);
    assert_eq!(gw1.membership().refresh(NOW).await, 2);
    let half = quota.div_ceil(2);
    let t = NOW + 10;
    let expected = debt_ms(frame, half);
    assert!(expected > 0);
    assert_eq!(produce_throttle(&mut c1, &req, t).await, expected);
    assert_eq!(produce_throttle(&mut c2, &req, t).await, expected);
    let entry = gw1
        .quotas()
        .cluster(env.tenant.cluster.id, t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.gateways(), 2);
    assert_eq!(entry.local_limits().ingress_bytes_per_sec, half);
    assert_eq!(
        entry.limits().ingress_bytes_per_sec,
        quota,
        "the cluster-wide limit is reported unchanged"
    );

    // Gateway 2 stops heartbeating (its last heartbeat was at NOW): three periods later it
    // still counts, after that gateway 1 is alone and enforces the full quota again.
    assert_eq!(gw1.membership().refresh(NOW + 3000).await, 2);
    assert_eq!(gw1.membership().refresh(NOW + 3001).await, 1);
    let later = NOW + 3001;
    assert_eq!(produce_throttle(&mut c1, &req, later).await, 0);
    assert_eq!(entry.local_limits().ingress_bytes_per_sec, quota);
    // Gateway 2 knows nothing new yet and still enforces half.
    assert!(produce_throttle(&mut c2, &req, later).await > 0);
}

#[tokio::test]
async fn a_gateway_that_leaves_hands_its_share_back_at_the_next_refresh() {
    let env = Env::new(&["n1"]).await;
    let gw1 = env.gw.clone();
    let gw2 = second_gateway(&env);
    let (req, frame, quota) = setup(&env).await;
    let mut c1 = env.authed().await;
    gw1.membership().refresh(NOW).await;
    gw2.membership().refresh(NOW).await;
    assert_eq!(gw1.membership().refresh(NOW).await, 2);
    assert_eq!(
        produce_throttle(&mut c1, &req, NOW).await,
        debt_ms(frame, quota.div_ceil(2))
    );

    // The connection cap is split too: 4 over two gateways is 2 here.
    let q = gw1.quotas();
    let entry = q
        .cluster(env.tenant.cluster.id, NOW)
        .await
        .unwrap()
        .unwrap();
    let open = entry.open_connections();
    let mut slots = Vec::new();
    while let Ok(s) = q.admit(&entry, NOW) {
        slots.push(s);
        assert!(slots.len() <= 2, "more than this gateway's share admitted");
    }
    assert_eq!(entry.open_connections(), 2);
    assert_eq!(
        q.admit(&entry, NOW).unwrap_err(),
        Refusal::Connections {
            cluster: env.tenant.cluster.id,
            max: 2
        }
    );
    drop(slots);
    assert_eq!(entry.open_connections(), open);

    // A clean stop removes gateway 2's registration: no need to wait for it to expire.
    gw2.membership().leave().await;
    assert_eq!(gw1.membership().refresh(NOW + 1).await, 1);
    assert_eq!(produce_throttle(&mut c1, &req, NOW + 1).await, 0);
}
