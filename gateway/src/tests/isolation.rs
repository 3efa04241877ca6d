//! Isolation between accounts: a principal of account A, however broad its policies, neither
//! sees nor reaches account B's cluster (by topic name, topic id, group name, a cluster named
//! by the transport, or an IAM payload signed for B's host), and B's produce rate does not
//! suffer from A being throttled.

use std::time::{Duration, UNIX_EPOCH};

use fjord_metadata::{AccessKey, Account, Cluster, KeyStatus, Principal};
use fjord_tenancy::bootstrap::DEV_POLICY;
use fjord_tenancy::secrets::SecretString;
use fjord_tenancy::signer::msk_iam_payload;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;

use super::data::produce_req;
use super::*;
use crate::config::{ListenerAuth, ListenerConfig, SaslFamily};
use crate::handlers::groups::encode_body;
use crate::transport::tests::set_limits;
use crate::transport::ListenerInfo;
use crate::{ConnState, PeerIdentity};

const SECRET: &str = "isolation-test-secret-000000000000000000";
const ACCOUNT_B: &str = "222222222222";
const KEY_B: &str = "AKIAACCOUNTB00000001";
/// A principal of account A whose policy names every account's clusters, topics and groups.
const KEY_A_WILDCARD: &str = "AKIAACCOUNTAWILDCARD";
const WILDCARD_ARNS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kafka-cluster:*","Resource":["arn:aws:kafka:*:*:*","arn:aws:kafka:*:*:cluster/*","arn:aws:kafka:*:*:topic/*","arn:aws:kafka:*:*:group/*","arn:aws:kafka:*:*:transactional-id/*"]}]}"#;

/// Account B with cluster `b-cluster` and topic `b-orders` in it.
struct AccountB {
    cluster: Cluster,
    topic_id: Uuid,
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// Stores principal `principal` of `account` with `policy` and the access key `key_id`.
async fn principal(env: &Env, account: &str, principal: &str, policy: &str, key_id: &str) {
    store_principal(env.store.as_ref(), account, principal, policy, key_id).await;
}

/// [`principal`] on any store.
async fn store_principal(
    store: &dyn MetadataStore,
    account: &str,
    principal: &str,
    policy: &str,
    key_id: &str,
) {
    store
        .create_principal(&Principal {
            account_id: account.into(),
            name: principal.into(),
            policies: [("p0".to_owned(), policy.to_owned())].into(),
            scram: None,
            version: 0,
            created_ms: NOW,
        })
        .await
        .unwrap();
    store
        .create_access_key(&AccessKey {
            id: key_id.into(),
            sealed_secret: SecretSealer::from_key([7; 32])
                .seal(key_id, &SecretString::new(SECRET))
                .unwrap(),
            account_id: account.into(),
            principal: principal.into(),
            status: KeyStatus::Active,
            expires_ms: None,
            created_ms: NOW,
        })
        .await
        .unwrap();
}

/// The dev tenant is account A (cluster `dev`, topic `a-orders`, the allow-all dev principal,
/// and the wildcard-ARN principal); account B is created as the dev bootstrap creates one.
async fn two_accounts(nodes: &[&str]) -> (Env, AccountB) {
    let env = Env::new(nodes).await;
    env.create_topic("a-orders", 1).await;
    let a = env.tenant.account_id.clone();
    principal(&env, &a, "user/wild", WILDCARD_ARNS, KEY_A_WILDCARD).await;
    env.store
        .create_account(&Account {
            id: ACCOUNT_B.into(),
            name: "b".into(),
            created_ms: NOW,
        })
        .await
        .unwrap();
    let cluster = Cluster {
        id: Uuid::from_u128(0xB0B),
        account_id: ACCOUNT_B.into(),
        name: "b-cluster".into(),
        region: "us-east-1".into(),
        created_ms: NOW,
    };
    env.store.create_cluster(&cluster).await.unwrap();
    principal(&env, ACCOUNT_B, "user/b", DEV_POLICY, KEY_B).await;
    let topic_id = env
        .topics
        .create_topic(cluster.id, "b-orders", 1, BTreeMap::new(), false, NOW)
        .await
        .unwrap()
        .topic
        .id;
    (env, AccountB { cluster, topic_id })
}

/// A connection whose session was told by its transport that it talks to `cluster` (what a
/// listener default or a TLS server name sets), or told nothing.
fn client_for(env: &Env, cluster: Option<Uuid>) -> Client {
    let mut c = env.client();
    c.session.set_cluster_hint(cluster);
    c
}

/// A SaslAuthenticate answer from an outcome that carries one (success or refusal).
fn sasl_answer(out: Outcome) -> SaslAuthenticateResponse {
    match out {
        Outcome::Respond(f) | Outcome::Close { frame: Some(f), .. } => {
            let (_, mut b) = parse_response(ApiKey::SaslAuthenticate, 2, &f);
            SaslAuthenticateResponse::decode(&mut b, 2).unwrap()
        }
        other => panic!("no SaslAuthenticate answer: {other:?}"),
    }
}

fn plain_for(key_id: &str, secret: &str) -> SaslAuthenticateRequest {
    SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(format!("\0{key_id}\0{secret}")))
}

fn handshake(mechanism: &'static str) -> SaslHandshakeRequest {
    SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism))
}

/// PLAIN login of `c` with `auth`; the SaslAuthenticate answer.
async fn plain_login(c: &mut Client, auth: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    let hs: SaslHandshakeResponse = c.call(ApiKey::SaslHandshake, 1, &handshake("PLAIN")).await;
    assert_eq!(hs.error_code, 0);
    sasl_answer(c.send(ApiKey::SaslAuthenticate, 2, &auth).await)
}

/// Account A's two principals (allow-all dev, wildcard ARNs) logged in on the default cluster.
async fn a_clients(env: &Env) -> Vec<(&'static str, Client)> {
    let mut out = Vec::new();
    for (who, auth) in [
        ("dev", plain(&env.tenant)),
        ("wildcard", plain_for(KEY_A_WILDCARD, SECRET)),
    ] {
        let mut c = client_for(env, None);
        let r = plain_login(&mut c, auth).await;
        assert_eq!(r.error_code, 0, "{who}: {:?}", r.error_message);
        out.push((who, c));
    }
    out
}

async fn listed_topics(c: &mut Client) -> Vec<String> {
    let req = MetadataRequest::default()
        .with_topics(None)
        .with_allow_auto_topic_creation(false);
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &req).await;
    resp.topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect()
}

async fn produce_code(c: &mut Client, topic: &str) -> i16 {
    let resp: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_req(topic, &[(0, batch(1))], -1),
        )
        .await;
    resp.responses[0].partition_responses[0].error_code
}

/// A fetch of partition 0 by name (v12) or, with `id`, by topic id (v13).
async fn fetch_code(c: &mut Client, topic: &str, id: Option<Uuid>) -> i16 {
    let v = if id.is_some() { 13 } else { 12 };
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_topic_id(id.unwrap_or_default())
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20)])]);
    let resp: FetchResponse = c.call(ApiKey::Fetch, v, &req).await;
    assert_eq!(resp.error_code, 0, "the fetch as a whole is answered");
    resp.responses[0].partitions[0].error_code
}

/// Whether any storage node received a request for `topic_id`.
fn reached(env: &Env, topic_id: Uuid) -> bool {
    env.nodes.values().any(|n| {
        n.seen
            .lock()
            .iter()
            .any(|(_, parts)| parts.iter().any(|(t, _)| *t == topic_id))
    })
}

/// UNKNOWN_TOPIC_OR_PARTITION, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_ID: the answers that
/// reveal nothing of another cluster's topic.
const NOT_YOURS: [i16; 3] = [3, 29, 100];

#[tokio::test]
async fn account_a_cannot_see_or_touch_account_b_topics_configs_or_groups() {
    let (env, b) = two_accounts(&["n1"]).await;
    let a_cluster = env.tenant.cluster.id;
    let reply = encode_body(&JoinGroupResponse::default().with_error_code(0), 5).unwrap();
    *env.nodes["n1"].group_reply.lock() = reply;

    for (who, mut c) in a_clients(&env).await {
        assert_eq!(
            listed_topics(&mut c).await,
            vec!["a-orders".to_owned()],
            "{who}"
        );
        let named: MetadataResponse = c
            .call(
                ApiKey::Metadata,
                12,
                &MetadataRequest::default()
                    .with_allow_auto_topic_creation(false)
                    .with_topics(Some(vec![
                        MetadataRequestTopic::default().with_name(Some(name("b-orders")))
                    ])),
            )
            .await;
        let t = &named.topics[0];
        assert!(NOT_YOURS.contains(&t.error_code), "{who}: {}", t.error_code);
        assert_ne!(t.topic_id, b.topic_id, "{who}: B's topic id leaked");
        assert!(t.partitions.is_empty(), "{who}");

        let code = produce_code(&mut c, "b-orders").await;
        assert!(NOT_YOURS.contains(&code), "{who}: produce {code}");
        let code = fetch_code(&mut c, "b-orders", None).await;
        assert!(NOT_YOURS.contains(&code), "{who}: fetch by name {code}");
        let code = fetch_code(&mut c, "b-orders", Some(b.topic_id)).await;
        assert!(NOT_YOURS.contains(&code), "{who}: fetch by id {code}");

        let describe = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("b-orders"))
                .with_configuration_keys(None),
        ]);
        let resp: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &describe).await;
        let r = &resp.results[0];
        assert!(NOT_YOURS.contains(&r.error_code), "{who}: {}", r.error_code);
        assert!(r.configs.is_empty(), "{who}: B's configs leaked");

        let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("b-orders"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_static_str("1000")))]),
        ]);
        let resp: IncrementalAlterConfigsResponse =
            c.call(ApiKey::IncrementalAlterConfigs, 1, &alter).await;
        let code = resp.responses[0].error_code;
        assert!(NOT_YOURS.contains(&code), "{who}: alter {code}");

        // A group B uses: whatever the coordinator does with it, it is A's cluster's group.
        let join = JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("b-consumers")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(StrBytes::from_static_str("consumer"));
        let out = c.send(ApiKey::JoinGroup, 5, &join).await;
        assert!(matches!(out, Outcome::Respond(_)), "{who}: {out:?}");
        let commit = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("b-consumers")))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(name("b-orders"))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(5)])]);
        let out = c.send(ApiKey::OffsetCommit, 7, &commit).await;
        assert!(matches!(out, Outcome::Respond(_)), "{who}: {out:?}");
    }

    // Nothing of it reached B: no partition request, no config change, no group of B's cluster.
    assert!(
        !reached(&env, b.topic_id),
        "a request reached B's partitions"
    );
    let stored = env
        .store
        .get_topic(b.cluster.id, "b-orders")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.configs.is_empty(), "{:?}", stored.configs);
    let groups: Vec<(i16, Uuid)> = env.nodes["n1"]
        .groups
        .lock()
        .iter()
        .map(|g| (g.api_key, g.cluster_id))
        .collect();
    for api in [ApiKey::JoinGroup, ApiKey::OffsetCommit] {
        assert!(
            groups.iter().any(|(k, _)| *k == api as i16),
            "{api:?} reached the coordinator (so the check below looks at something)"
        );
    }
    assert!(
        groups.iter().all(|(_, cluster)| *cluster == a_cluster),
        "{groups:?}"
    );

    // The control: B's own principal, on B's cluster, reaches B's topic through the same node.
    let mut owner = client_for(&env, Some(b.cluster.id));
    let r = plain_login(&mut owner, plain_for(KEY_B, SECRET)).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(listed_topics(&mut owner).await, vec!["b-orders".to_owned()]);
    assert_eq!(produce_code(&mut owner, "b-orders").await, 0);
    assert!(reached(&env, b.topic_id));
}

#[tokio::test]
async fn account_a_credentials_claiming_account_b_cluster_get_nothing_of_it() {
    let (env, b) = two_accounts(&["n1"]).await;

    // The transport names B's cluster (a listener whose default it is, or its TLS server name
    // as the session sees it): A's principals are refused at login, the wildcard one too.
    for (who, auth) in [
        ("dev", plain(&env.tenant)),
        ("wildcard", plain_for(KEY_A_WILDCARD, SECRET)),
    ] {
        let mut c = client_for(&env, Some(b.cluster.id));
        let r = plain_login(&mut c, auth).await;
        assert_eq!(r.error_code, 58, "{who}");
        assert_eq!(r.error_message.as_deref(), Some("Access denied"), "{who}");
        assert!(c.session.identity().is_none(), "{who}: not authenticated");
    }

    // TLS SNI naming B's cluster on a connection whose session was not told: the credential's
    // cluster must match the server name, so A is refused.
    let sni = format!("{}.kafka.us-east-1.fjord.test", b.cluster.id);
    let mut conn = ConnState::new(PeerIdentity {
        tls_sni: Some(sni.clone()),
        sni_cluster: Some(b.cluster.id),
        ..Default::default()
    });
    let mut session = Session::new(Uuid::from_u128(9));
    let hs = request_frame(ApiKey::SaslHandshake, 1, 1, &handshake("PLAIN"));
    let out = env
        .gw
        .handle_frame_on(&mut session, &mut conn, hs, NOW)
        .await;
    assert!(matches!(out, Outcome::Respond(_)), "{out:?}");
    let auth = request_frame(ApiKey::SaslAuthenticate, 2, 2, &plain(&env.tenant));
    let out = env
        .gw
        .handle_frame_on(&mut session, &mut conn, auth, NOW)
        .await;
    assert!(matches!(out, Outcome::Close { .. }), "{out:?}");
    let r = sasl_answer(out);
    assert_eq!(r.error_code, 58);
    assert!(
        r.error_message
            .as_deref()
            .unwrap()
            .starts_with("Access denied"),
        "{:?}",
        r.error_message
    );

    // A listener whose default cluster is B's: A's key is refused, or lands elsewhere than B
    // and sees nothing of it.
    let mut conn = ConnState::new(plaintext_peer(
        "b-default",
        vec![SaslFamily::Plain],
        b.cluster.id,
    ));
    env.gw.establish(&mut conn, NOW).await.unwrap();
    let mut session = Session::new(Uuid::from_u128(10));
    let hs = request_frame(ApiKey::SaslHandshake, 1, 1, &handshake("PLAIN"));
    let out = env
        .gw
        .handle_frame_on(&mut session, &mut conn, hs, NOW)
        .await;
    assert!(matches!(out, Outcome::Respond(_)), "{out:?}");
    let auth = request_frame(ApiKey::SaslAuthenticate, 2, 2, &plain(&env.tenant));
    let r = sasl_answer(
        env.gw
            .handle_frame_on(&mut session, &mut conn, auth, NOW)
            .await,
    );
    if r.error_code == 0 {
        assert_ne!(session.identity().unwrap().cluster_id, b.cluster.id);
        let md = MetadataRequest::default()
            .with_topics(None)
            .with_allow_auto_topic_creation(false);
        let frame = request_frame(ApiKey::Metadata, 12, 3, &md);
        let Outcome::Respond(f) = env
            .gw
            .handle_frame_on(&mut session, &mut conn, frame, NOW)
            .await
        else {
            panic!("no Metadata answer")
        };
        let (_, mut body) = parse_response(ApiKey::Metadata, 12, &f);
        let md = MetadataResponse::decode(&mut body, 12).unwrap();
        assert!(
            md.topics
                .iter()
                .all(|t| t.name.as_ref().is_none_or(|n| n.as_str() != "b-orders")),
            "B's topic listed to A"
        );
    } else {
        assert_eq!(r.error_code, 58, "{:?}", r.error_message);
    }

    // An AWS_MSK_IAM payload signed with A's key for B's cluster host: refused, or (as now:
    // the signed host does not choose the cluster) on A's own cluster, seeing nothing of B.
    let payload = msk_iam_payload(
        &env.tenant.access_key_id,
        env.tenant.secret_access_key.expose(),
        None,
        "us-east-1",
        &sni,
        UNIX_EPOCH + Duration::from_millis(NOW as u64),
    )
    .unwrap();
    let mut c = client_for(&env, None);
    let hs: SaslHandshakeResponse = c
        .call(ApiKey::SaslHandshake, 1, &handshake("AWS_MSK_IAM"))
        .await;
    assert_eq!(hs.error_code, 0);
    let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(payload));
    let r = sasl_answer(c.send(ApiKey::SaslAuthenticate, 2, &req).await);
    if r.error_code == 0 {
        assert_eq!(
            c.session.identity().unwrap().cluster_id,
            env.tenant.cluster.id,
            "an A credential signed for B's host must not land on B's cluster"
        );
        assert_eq!(listed_topics(&mut c).await, vec!["a-orders".to_owned()]);
        let code = produce_code(&mut c, "b-orders").await;
        assert!(NOT_YOURS.contains(&code), "{code}");
    } else {
        assert_eq!(r.error_code, 58, "{:?}", r.error_message);
    }
    assert!(!reached(&env, b.topic_id));
}

/// A produce of `records` to partition 0 of `topic`; its throttle_time_ms and partition code.
async fn produce_throttle(c: &mut Client, topic: &str, records: &Bytes) -> (i32, i16) {
    let out = c
        .send(
            ApiKey::Produce,
            9,
            &produce_req(topic, &[(0, records.clone())], -1),
        )
        .await;
    let frame = match out {
        Outcome::Respond(f) | Outcome::Throttled { frame: Some(f), .. } => f,
        other => panic!("{other:?}"),
    };
    let (_, mut b) = parse_response(ApiKey::Produce, 9, &frame);
    let r = ProduceResponse::decode(&mut b, 9).unwrap();
    (
        r.throttle_time_ms,
        r.responses[0].partition_responses[0].error_code,
    )
}

#[tokio::test]
async fn account_a_over_its_ingress_quota_is_throttled_while_account_b_is_not() {
    let (env, b) = two_accounts(&["n1"]).await;
    set_limits(
        &*env.store,
        env.tenant.cluster.id,
        &[
            ("ingress-bytes-per-sec", 64 * 1024),
            ("partition-ingress-bytes-per-sec", 64 * 1024),
        ],
    )
    .await;
    let mut a = env.authed().await;
    let mut owner = client_for(&env, Some(b.cluster.id));
    let r = plain_login(&mut owner, plain_for(KEY_B, SECRET)).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);

    let records = batch(6000);
    assert!(records.len() > 64 * 1024 + 10 * 1024, "{}", records.len());
    // Within the same instant: A's and B's producers alternate, each sending the same bytes.
    for round in 0..3 {
        let (throttle_a, code_a) = produce_throttle(&mut a, "a-orders", &records).await;
        assert_eq!(code_a, 0, "round {round}: throttled, not refused");
        assert!(
            throttle_a > 0,
            "round {round}: A over 64 KiB/s is throttled"
        );
        let (throttle_b, code_b) = produce_throttle(&mut owner, "b-orders", &records).await;
        assert_eq!(code_b, 0);
        assert_eq!(throttle_b, 0, "round {round}: B keeps its full rate");
    }
}

/// A login over TCP to `port` with `mechanism` and `auth_bytes`; the SaslAuthenticate error
/// code.
async fn tcp_login(port: u16, mechanism: &'static str, auth_bytes: Bytes) -> i16 {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let framed = |frame: Bytes| {
        let mut out = (frame.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&frame);
        out
    };
    let hs = request_frame(ApiKey::SaslHandshake, 1, 1, &handshake(mechanism));
    stream.write_all(&framed(hs)).await.unwrap();
    crate::connection::read_frame(&mut stream, 1 << 20)
        .await
        .unwrap()
        .unwrap();
    let req = SaslAuthenticateRequest::default().with_auth_bytes(auth_bytes);
    let auth = request_frame(ApiKey::SaslAuthenticate, 2, 2, &req);
    stream.write_all(&framed(auth)).await.unwrap();
    let frame = crate::connection::read_frame(&mut stream, 1 << 20)
        .await
        .unwrap()
        .unwrap();
    let (_, mut body) = parse_response(ApiKey::SaslAuthenticate, 2, &reframe(&frame));
    SaslAuthenticateResponse::decode(&mut body, 2)
        .unwrap()
        .error_code
}

/// A PLAIN login over TCP to `port`; the SaslAuthenticate error code.
async fn tcp_plain_login(port: u16, key_id: &str, secret: &str) -> i16 {
    tcp_login(port, "PLAIN", plain_for(key_id, secret).auth_bytes).await
}

/// A gateway serving one plaintext listener (whose default cluster `default_cluster` picks from
/// the dev tenant's) over a store that also holds account B with cluster `b_cluster` and its
/// owner `user/b` (key [`KEY_B`]); the gateway, the dev tenant, the port and the stop handle.
async fn serve_with_account_b(
    b_cluster: Uuid,
    sasl: Vec<SaslFamily>,
    default_cluster: impl FnOnce(&DevTenant) -> Uuid,
) -> (
    tempfile::TempDir,
    Arc<Gateway>,
    DevTenant,
    u16,
    tokio::sync::oneshot::Sender<()>,
) {
    let (dir, gw, store, tenant) = crate::transport::tests::gateway(|c, t, _| {
        c.listeners = vec![plaintext_listener("default", sasl, default_cluster(t))]
    })
    .await;
    store
        .create_account(&Account {
            id: ACCOUNT_B.into(),
            name: "b".into(),
            created_ms: NOW,
        })
        .await
        .unwrap();
    store
        .create_cluster(&Cluster {
            id: b_cluster,
            account_id: ACCOUNT_B.into(),
            name: "b-cluster".into(),
            region: "us-east-1".into(),
            created_ms: NOW,
        })
        .await
        .unwrap();
    store_principal(store.as_ref(), ACCOUNT_B, "user/b", DEV_POLICY, KEY_B).await;
    let listeners = gw.bind_listeners().await.unwrap();
    let port = listeners[0].local_addr().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gw.clone().serve_listeners(listeners, async move {
        let _ = stopped.await;
    }));
    (dir, gw, tenant, port, stop)
}

/// Through the real connection shell: a listener whose default cluster is B's logs B's own
/// principal in to B's cluster, and refuses A's key there (A's account does not own it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_default_cluster_decides_where_logins_go() {
    let b_cluster = Uuid::from_u128(0xB0B);
    let (_dir, _gw, tenant, port, _stop) =
        serve_with_account_b(b_cluster, vec![SaslFamily::Plain], |_| b_cluster).await;

    assert_eq!(
        tcp_plain_login(port, KEY_B, SECRET).await,
        0,
        "B's owner on B's listener"
    );
    assert_eq!(
        tcp_plain_login(
            port,
            &tenant.access_key_id,
            tenant.secret_access_key.expose()
        )
        .await,
        58,
        "A's key on B's listener"
    );
}

/// An AWS_MSK_IAM login signed by `key_id` for `host` over TCP to `port`; the
/// SaslAuthenticate error code.
async fn tcp_iam_login(port: u16, key_id: &str, secret: &str, host: &str) -> i16 {
    let payload = msk_iam_payload(
        key_id,
        secret,
        None,
        "us-east-1",
        host,
        std::time::SystemTime::now(),
    )
    .unwrap();
    tcp_login(port, "AWS_MSK_IAM", Bytes::from(payload)).await
}

/// Without TLS SNI, the host an AWS_MSK_IAM payload was signed for names the cluster (before
/// the listener's default): B's owner signing for B's bootstrap name logs in to B through a
/// listener whose default is A's cluster; A's key signed for B's name is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signed_host_names_the_cluster_without_sni() {
    let b_cluster = Uuid::from_u128(0xB0C);
    let (_dir, gw, tenant, port, _stop) =
        serve_with_account_b(b_cluster, vec![SaslFamily::Iam, SaslFamily::Plain], |t| {
            t.cluster.id
        })
        .await;
    let b_host = gw.cluster_host_name(b_cluster, "us-east-1").unwrap();
    let a_host = gw
        .cluster_host_name(tenant.cluster.id, "us-east-1")
        .unwrap();

    assert_eq!(
        tcp_iam_login(port, KEY_B, SECRET, &b_host).await,
        0,
        "B signs for B"
    );
    assert_eq!(
        tcp_iam_login(port, KEY_B, SECRET, &a_host).await,
        58,
        "B signs for A's name: A's cluster, not B's account"
    );
    let (a_key, a_secret) = (&tenant.access_key_id, tenant.secret_access_key.expose());
    assert_eq!(
        tcp_iam_login(port, a_key, a_secret, &b_host).await,
        58,
        "A signs for B"
    );
    assert_eq!(
        tcp_iam_login(port, a_key, a_secret, &a_host).await,
        0,
        "A signs for A"
    );
}

/// On a plaintext listener, Metadata advertises the listener's address for its default cluster
/// and a cluster's own name for another cluster a login reached by its signed host: the
/// client's next connections then sign for that cluster again instead of landing on the
/// listener's default.
#[tokio::test]
async fn plaintext_advertises_the_name_of_a_cluster_reached_by_its_signed_host() {
    let b_cluster = Uuid::from_u128(0xB0D);
    let (_dir, gw, tenant, _port, _stop) =
        serve_with_account_b(b_cluster, vec![SaslFamily::Iam], |t| t.cluster.id).await;
    let peer = plaintext_peer("plain", vec![SaslFamily::Iam], tenant.cluster.id);
    assert_eq!(
        gw.advertised_endpoint(tenant.cluster.id, &peer),
        (gw.config.advertised_host.clone(), 9092),
        "the default cluster: the listener's address"
    );
    assert_eq!(
        gw.advertised_endpoint(b_cluster, &peer),
        (gw.cluster_host_name(b_cluster, "us-east-1").unwrap(), 9092),
        "another cluster: its own name"
    );
}

/// A plaintext listener on a free loopback port offering `sasl`, whose default cluster is
/// `default_cluster`.
fn plaintext_listener(name: &str, sasl: Vec<SaslFamily>, default_cluster: Uuid) -> ListenerConfig {
    ListenerConfig {
        name: name.into(),
        addr: "127.0.0.1:0".parse().unwrap(),
        advertised_port: None,
        tls: None,
        auth: ListenerAuth::Sasl(sasl),
        default_cluster: Some(default_cluster),
    }
}

/// A connection's transport on such a listener, bound to port 9092.
fn plaintext_peer(name: &str, sasl: Vec<SaslFamily>, default_cluster: Uuid) -> PeerIdentity {
    let listener = ListenerInfo::new(plaintext_listener(name, sasl, default_cluster), 9092, None);
    PeerIdentity {
        listener: Some(Arc::new(listener)),
        ..Default::default()
    }
}
