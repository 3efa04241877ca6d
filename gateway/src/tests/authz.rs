//! Authorization through the Kafka protocol: IAM policies (read-only principals, explicit
//! Deny, default deny, Connect at login), revocation of a live connection's key, SCRAM logins
//! and Kafka ACLs with the ACL APIs.

use std::time::Duration;

use fjord_metadata::{AccessKey, KeyStatus, Principal};
use fjord_tenancy::scram::ScramCredential;
use fjord_tenancy::secrets::SecretString;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::data::produce_req;
use super::*;

const SECRET: &str = "authz-test-secret-0000000000000000000000";

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// Stores principal `name` of the dev account with `policies`, an access key for it, and
/// optionally a SCRAM password.
async fn principal(env: &Env, name: &str, policies: &[&str], key_id: &str, scram: Option<&str>) {
    let p = Principal {
        account_id: env.tenant.account_id.clone(),
        name: name.into(),
        policies: policies
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("p{i}"), (*d).to_owned()))
            .collect(),
        scram: scram.map(|pw| {
            let c = ScramCredential::derive(pw.as_bytes(), b"authz-test-salt", 4096).unwrap();
            serde_json::to_string(&c).unwrap()
        }),
        version: 0,
        created_ms: NOW,
    };
    env.store.create_principal(&p).await.unwrap();
    let key = AccessKey {
        id: key_id.into(),
        sealed_secret: SecretSealer::from_key([7; 32])
            .seal(key_id, &SecretString::new(SECRET))
            .unwrap(),
        account_id: env.tenant.account_id.clone(),
        principal: name.into(),
        status: KeyStatus::Active,
        expires_ms: None,
        created_ms: NOW,
    };
    env.store.create_access_key(&key).await.unwrap();
}

fn allow(actions: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{actions}],"Resource":"*"}}]}}"#
    )
}

const READ_ONLY: &str = r#""kafka-cluster:Connect","kafka-cluster:DescribeTopic","kafka-cluster:ReadData","kafka-cluster:DescribeGroup","kafka-cluster:AlterGroup""#;

/// Logs in with PLAIN as `key_id`; returns the client and the SaslAuthenticate answer.
async fn login(env: &Env, key_id: &str) -> (Client, SaslAuthenticateResponse) {
    let mut c = env.client();
    let _: SaslHandshakeResponse = c
        .call(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        )
        .await;
    let req = SaslAuthenticateRequest::default()
        .with_auth_bytes(Bytes::from(format!("\0{key_id}\0{SECRET}")));
    match c.send(ApiKey::SaslAuthenticate, 2, &req).await {
        Outcome::Respond(f) | Outcome::Close { frame: Some(f), .. } => {
            let (_, mut b) = parse_response(ApiKey::SaslAuthenticate, 2, &f);
            let resp = SaslAuthenticateResponse::decode(&mut b, 2).unwrap();
            (c, resp)
        }
        other => panic!("no SaslAuthenticate answer: {other:?}"),
    }
}

async fn produce_code(c: &mut Client, topic: &str) -> (i16, Option<String>) {
    let resp: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_req(topic, &[(0, batch(1))], -1),
        )
        .await;
    let p = &resp.responses[0].partition_responses[0];
    (
        p.error_code,
        p.error_message.as_ref().map(|m| m.to_string()),
    )
}

async fn fetch_code(c: &mut Client, topic: &str) -> i16 {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20)])]);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
    resp.responses[0].partitions[0].error_code
}

async fn listed_topics(c: &mut Client) -> Vec<String> {
    let resp: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
    resp.topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect()
}

#[tokio::test]
async fn a_read_only_principal_consumes_but_cannot_produce_or_create() {
    let env = Env::new(&["n1"]).await;
    env.create_topic("payments", 1).await;
    principal(
        &env,
        "user/reader",
        &[&allow(READ_ONLY)],
        "AKIAREADONLY00000001",
        None,
    )
    .await;
    let (mut c, auth) = login(&env, "AKIAREADONLY00000001").await;
    assert_eq!(auth.error_code, 0, "{:?}", auth.error_message);

    assert_eq!(listed_topics(&mut c).await, vec!["payments".to_owned()]);
    assert_eq!(fetch_code(&mut c, "payments").await, 0);
    let (code, message) = produce_code(&mut c, "payments").await;
    assert_eq!(code, 29, "TOPIC_AUTHORIZATION_FAILED");
    assert!(message.unwrap().contains("kafka-cluster:WriteData"));
    // Nothing reached the node.
    assert!(env.nodes["n1"]
        .seen
        .lock()
        .iter()
        .all(|(kind, _)| *kind != "produce"));

    let create = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(topic_name("new-topic"))
        .with_num_partitions(1)
        .with_replication_factor(-1)]);
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &create).await;
    assert_eq!(resp.topics[0].error_code, 29);
    assert!(resp.topics[0]
        .error_message
        .as_ref()
        .unwrap()
        .contains("CreateTopic"));
    assert!(env
        .store
        .get_topic(env.tenant.cluster.id, "new-topic")
        .await
        .unwrap()
        .is_none());

    let ipi: InitProducerIdResponse = c
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(-1),
        )
        .await;
    assert_eq!(
        ipi.error_code, 31,
        "idempotence needs WriteDataIdempotently"
    );
    let dc: DescribeClusterResponse = c
        .call(
            ApiKey::DescribeCluster,
            1,
            &DescribeClusterRequest::default(),
        )
        .await;
    assert_eq!(dc.error_code, 31);

    // The dev principal (allow-all) still may do all of it.
    let mut dev = env.authed().await;
    assert_eq!(produce_code(&mut dev, "payments").await.0, 0);
}

#[tokio::test]
async fn an_explicit_deny_wins_and_hides_the_topic() {
    let env = Env::new(&["n1"]).await;
    env.create_topic("public", 1).await;
    env.create_topic("secret", 1).await;
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["kafka-cluster:DescribeTopic","kafka-cluster:ReadData"],"Resource":"arn:aws:kafka:*:*:topic/dev/*/secret"}]}"#;
    principal(
        &env,
        "user/limited",
        &[&allow(r#""kafka-cluster:*""#), deny],
        "AKIALIMITED000000001",
        None,
    )
    .await;
    let (mut c, auth) = login(&env, "AKIALIMITED000000001").await;
    assert_eq!(auth.error_code, 0);
    assert_eq!(listed_topics(&mut c).await, vec!["public".to_owned()]);
    assert_eq!(fetch_code(&mut c, "public").await, 0);
    assert_eq!(fetch_code(&mut c, "secret").await, 29);
    let named: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name("secret")))
            ])),
        )
        .await;
    assert_eq!(named.topics[0].error_code, 29);
    // Writing needs DescribeTopic as a prerequisite, which is denied.
    assert_eq!(produce_code(&mut c, "secret").await.0, 29);
    assert_eq!(produce_code(&mut c, "public").await.0, 0);
}

#[tokio::test]
async fn no_record_or_no_connect_means_access_denied_at_login() {
    let env = Env::new(&["n1"]).await;
    principal(&env, "user/nothing", &[], "AKIANOPOLICIES000001", None).await;
    let (_, resp) = login(&env, "AKIANOPOLICIES000001").await;
    assert_eq!(resp.error_code, 58);
    assert_eq!(resp.error_message.as_deref(), Some("Access denied"));
    principal(
        &env,
        "user/noconnect",
        &[&allow(r#""kafka-cluster:ReadData""#)],
        "AKIANOCONNECT0000001",
        None,
    )
    .await;
    let (_, resp) = login(&env, "AKIANOCONNECT0000001").await;
    assert_eq!(resp.error_code, 58);
    // A key whose principal record is missing.
    env.store
        .delete_principal(&env.tenant.account_id, "user/noconnect")
        .await
        .unwrap();
    env.gw.auth.invalidate_all();
    let (_, resp) = login(&env, "AKIANOCONNECT0000001").await;
    assert_eq!(resp.error_code, 58);
}

/// Reads one response frame body from a real connection.
async fn read_frame<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Option<Bytes> {
    let mut size = [0u8; 4];
    r.read_exact(&mut size).await.ok()?;
    let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
    r.read_exact(&mut buf).await.ok()?;
    Some(Bytes::from(buf))
}

#[tokio::test]
async fn deleting_a_key_closes_its_live_connection_and_refuses_new_logins() {
    let (dir, store, tenant, _) = tenant_env().await;
    let auth = Arc::new(
        Authenticator::new(
            store.clone(),
            SecretSealer::from_key([7; 32]),
            AuthConfig {
                region: "us-east-1".into(),
                default_cluster: tenant.cluster.id,
                max_clock_skew_ms: 5 * 60 * 1000,
            },
        )
        // The test-time poll interval; production polls every second.
        .with_epoch_poll_interval(Duration::from_millis(50)),
    );
    let topics = Arc::new(TopicService::new(store.clone()));
    let gw = Arc::new(
        Gateway::new(
            GatewayConfig::new("gw.us-east-1.fjord.test", 9092),
            store.clone(),
            auth,
            topics,
            Arc::new(MemDirectory(BTreeMap::new())),
        )
        .unwrap(),
    );
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let conn = tokio::spawn(crate::connection::run(
        gw.clone(),
        server,
        "127.0.0.1:5000".parse().unwrap(),
        stop_rx,
    ));
    let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    client
        .write_all(&reframe(&request_frame(ApiKey::SaslHandshake, 1, 1, &hs)))
        .await
        .unwrap();
    read_frame(&mut client).await.unwrap();
    client
        .write_all(&reframe(&request_frame(
            ApiKey::SaslAuthenticate,
            2,
            2,
            &plain(&tenant),
        )))
        .await
        .unwrap();
    let f = read_frame(&mut client).await.unwrap();
    let mut b = f.clone();
    let _ = ResponseHeader::decode(&mut b, 1).unwrap();
    assert_eq!(
        SaslAuthenticateResponse::decode(&mut b, 2)
            .unwrap()
            .error_code,
        0
    );
    // Let the watcher record the current epoch before the change.
    gw.auth.poll_auth_epoch().await.unwrap();

    store
        .delete_access_key(&tenant.access_key_id)
        .await
        .unwrap();
    // The gateway closes the connection: the client reads end-of-stream.
    let closed = tokio::time::timeout(Duration::from_secs(3), read_frame(&mut client)).await;
    assert_eq!(closed.expect("closed within 3 s"), None);
    tokio::time::timeout(Duration::from_secs(1), conn)
        .await
        .unwrap()
        .unwrap();

    // A new login with the deleted key is refused.
    let mut c = Client {
        gw: gw.clone(),
        session: Session::new(Uuid::from_u128(2)),
        corr: 0,
        now_ms: NOW,
    };
    let _: SaslHandshakeResponse = c.call(ApiKey::SaslHandshake, 1, &hs).await;
    match c.send(ApiKey::SaslAuthenticate, 2, &plain(&tenant)).await {
        Outcome::Close { frame: Some(f), .. } => {
            let (_, mut b) = parse_response(ApiKey::SaslAuthenticate, 2, &f);
            let resp = SaslAuthenticateResponse::decode(&mut b, 2).unwrap();
            assert_eq!(resp.error_code, 58);
            assert!(resp.error_message.unwrap().contains("unknown access key"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    drop(dir);
}

/// The client side of SCRAM-SHA-512 (RFC 5802), enough for the tests.
struct ScramClient {
    password: String,
    nonce: String,
    first_bare: String,
}

impl ScramClient {
    fn new(user: &str, password: &str) -> Self {
        let nonce = "fyko+d2lbbFgONRv9qkxdawL".to_owned();
        Self {
            password: password.into(),
            first_bare: format!("n={user},r={nonce}"),
            nonce,
        }
    }

    fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    fn last(&self, server_first: &[u8]) -> Vec<u8> {
        use base64::Engine;
        use ring::{digest, hmac, pbkdf2};
        let b64 = base64::engine::general_purpose::STANDARD;
        let sf = std::str::from_utf8(server_first).unwrap();
        let field = |k: &str| {
            sf.split(',')
                .find_map(|f| f.strip_prefix(k))
                .unwrap()
                .to_owned()
        };
        let (r, salt, iters) = (field("r="), b64.decode(field("s=")).unwrap(), field("i="));
        assert!(r.starts_with(&self.nonce));
        let mut salted = [0u8; 64];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA512,
            std::num::NonZeroU32::new(iters.parse().unwrap()).unwrap(),
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let key = hmac::Key::new(hmac::HMAC_SHA512, &salted);
        let client_key = hmac::sign(&key, b"Client Key");
        let stored = digest::digest(&digest::SHA512, client_key.as_ref());
        let without_proof = format!("c=biws,r={r}");
        let auth_message = format!("{},{sf},{without_proof}", self.first_bare);
        let sig = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA512, stored.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(sig.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        format!("{without_proof},p={}", b64.encode(proof)).into_bytes()
    }
}

/// Logs in with SCRAM-SHA-512; `Ok(client)` or the failed SaslAuthenticate answer.
async fn scram_login(
    env: &Env,
    user: &str,
    password: &str,
) -> Result<Client, SaslAuthenticateResponse> {
    scram_login_with(env.client(), user, password).await
}

/// [`scram_login`] on the unauthenticated connection `c` (of any gateway).
async fn scram_login_with(
    mut c: Client,
    user: &str,
    password: &str,
) -> Result<Client, SaslAuthenticateResponse> {
    let hs: SaslHandshakeResponse = c
        .call(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_static_str("SCRAM-SHA-512")),
        )
        .await;
    assert_eq!(hs.error_code, 0);
    assert!(hs.mechanisms.iter().any(|m| m.as_str() == "SCRAM-SHA-512"));
    let scram = ScramClient::new(user, password);
    let first = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(scram.first()));
    let resp: SaslAuthenticateResponse = c.call(ApiKey::SaslAuthenticate, 2, &first).await;
    assert_eq!(resp.error_code, 0, "{:?}", resp.error_message);
    let last = SaslAuthenticateRequest::default()
        .with_auth_bytes(Bytes::from(scram.last(&resp.auth_bytes)));
    match c.send(ApiKey::SaslAuthenticate, 2, &last).await {
        Outcome::Respond(f) => {
            let (_, mut b) = parse_response(ApiKey::SaslAuthenticate, 2, &f);
            let resp = SaslAuthenticateResponse::decode(&mut b, 2).unwrap();
            assert!(resp.auth_bytes.starts_with(b"v="), "server-final");
            Ok(c)
        }
        Outcome::Close { frame: Some(f), .. } => {
            let (_, mut b) = parse_response(ApiKey::SaslAuthenticate, 2, &f);
            Err(SaslAuthenticateResponse::decode(&mut b, 2).unwrap())
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn acl(rt: i8, name: &str, principal: &str, op: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(rt)
        .with_resource_name(StrBytes::from_string(name.into()))
        .with_resource_pattern_type(3)
        .with_principal(StrBytes::from_string(principal.into()))
        .with_host(StrBytes::from_static_str("*"))
        .with_operation(op)
        .with_permission_type(3)
}

#[tokio::test]
async fn scram_logins_are_authorized_by_kafka_acls() {
    let env = Env::new(&["n1"]).await;
    env.create_topic("payments", 1).await;
    principal(
        &env,
        "user/alice",
        &[],
        "AKIAALICE00000000001",
        Some("alice-pw"),
    )
    .await;

    // Wrong password and unknown user fail alike, at the last step.
    let wrong = scram_login(&env, "alice", "nope").await.err().unwrap();
    let unknown = scram_login(&env, "mallory", "nope").await.err().unwrap();
    assert_eq!(wrong.error_code, 58);
    assert_eq!(wrong.error_message, unknown.error_message);

    // No ACLs: the cluster denies SCRAM principals everything (Kafka's default).
    let mut alice = scram_login(&env, "alice", "alice-pw").await.ok().unwrap();
    assert!(listed_topics(&mut alice).await.is_empty());
    assert_eq!(produce_code(&mut alice, "payments").await.0, 29);
    let create =
        CreateAclsRequest::default().with_creations(vec![acl(2, "payments", "User:alice", 4)]);
    let refused: CreateAclsResponse = alice.call(ApiKey::CreateAcls, 1, &create).await;
    assert_eq!(refused.results[0].error_code, 31);

    // The dev IAM principal (AlterCluster) grants alice Write on the topic.
    let mut dev = env.authed().await;
    for v in [1, 3] {
        let created: CreateAclsResponse = dev.call(ApiKey::CreateAcls, v, &create).await;
        assert_eq!(
            created.results[0].error_code, 0,
            "{:?}",
            created.results[0].error_message
        );
    }
    let invalid = CreateAclsRequest::default().with_creations(vec![acl(
        4,
        "not-kafka-cluster",
        "User:alice",
        7,
    )]);
    let bad: CreateAclsResponse = dev.call(ApiKey::CreateAcls, 3, &invalid).await;
    assert_eq!(bad.results[0].error_code, 42);
    assert_eq!(produce_code(&mut alice, "payments").await.0, 0);
    // Write implies Describe, so the topic is now listed; Read was not granted.
    assert_eq!(listed_topics(&mut alice).await, vec!["payments".to_owned()]);
    assert_eq!(fetch_code(&mut alice, "payments").await, 29);

    let any = DescribeAclsRequest::default()
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_resource_type_filter(1)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1);
    let described: DescribeAclsResponse = dev.call(ApiKey::DescribeAcls, 3, &any).await;
    assert_eq!(described.error_code, 0);
    assert_eq!(described.resources.len(), 1, "stored once");
    assert_eq!(described.resources[0].resource_name.as_str(), "payments");
    assert_eq!(
        described.resources[0].acls[0].principal.as_str(),
        "User:alice"
    );
    let denied: DescribeAclsResponse = alice.call(ApiKey::DescribeAcls, 1, &any).await;
    assert_eq!(denied.error_code, 31);

    let delete = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
        .with_resource_type_filter(2)
        .with_resource_name_filter(Some(StrBytes::from_static_str("payments")))
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1)]);
    let deleted: DeleteAclsResponse = dev.call(ApiKey::DeleteAcls, 2, &delete).await;
    assert_eq!(deleted.filter_results[0].error_code, 0);
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    assert_eq!(produce_code(&mut alice, "payments").await.0, 29);
    assert!(env
        .store
        .list_acls(env.tenant.cluster.id)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn scram_reauthentication_must_keep_the_principal() {
    let env = Env::new(&["n1"]).await;
    principal(
        &env,
        "user/alice",
        &[],
        "AKIAALICE00000000002",
        Some("alice-pw"),
    )
    .await;
    principal(
        &env,
        "user/bob",
        &[],
        "AKIABOB0000000000002",
        Some("bob-pw"),
    )
    .await;
    let mut c = scram_login(&env, "alice", "alice-pw").await.ok().unwrap();
    // Re-authenticating as alice works (KIP-368) …
    for (user, pw, ok) in [("alice", "alice-pw", true), ("bob", "bob-pw", false)] {
        let hs: SaslHandshakeResponse = c
            .call(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str("SCRAM-SHA-512")),
            )
            .await;
        assert_eq!(hs.error_code, 0);
        let scram = ScramClient::new(user, pw);
        let first = scram.first();
        let resp: SaslAuthenticateResponse = c
            .call(
                ApiKey::SaslAuthenticate,
                2,
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(first)),
            )
            .await;
        let last = SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from(scram.last(&resp.auth_bytes)));
        match c.send(ApiKey::SaslAuthenticate, 2, &last).await {
            Outcome::Respond(_) => assert!(ok, "{user} must not take over alice's connection"),
            // … as bob it is refused and the connection closed.
            Outcome::Close { frame: Some(f), .. } => {
                assert!(!ok, "{user}");
                let (_, mut b) = parse_response(ApiKey::SaslAuthenticate, 2, &f);
                let resp = SaslAuthenticateResponse::decode(&mut b, 2).unwrap();
                assert_eq!(resp.error_code, 58);
                assert!(resp
                    .error_message
                    .unwrap()
                    .contains("does not keep the principal"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn acl_creations_and_deletions_reach_another_gateway_at_its_next_epoch_poll() {
    let env = Env::new(&["n1"]).await;
    env.create_topic("payments", 1).await;
    principal(
        &env,
        "user/alice",
        &[],
        "AKIAALICE00000000003",
        Some("alice-pw"),
    )
    .await;
    // A second gateway of the same deployment: same store and sealing key, its own caches.
    let auth2 = Arc::new(Authenticator::new(
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
    let gw2 = Arc::new(
        Gateway::new(
            config,
            env.store.clone(),
            auth2,
            Arc::new(TopicService::new(env.store.clone())),
            Arc::new(MemDirectory(env.nodes.clone())),
        )
        .unwrap(),
    );
    let on_gw2 = Client {
        gw: gw2.clone(),
        session: Session::new(Uuid::from_u128(3)),
        corr: 0,
        now_ms: NOW,
    };
    let mut alice = scram_login_with(on_gw2, "alice", "alice-pw")
        .await
        .ok()
        .unwrap();
    // Refused, and gateway 2 now caches the cluster's (empty) ACL list.
    assert_eq!(produce_code(&mut alice, "payments").await.0, 29);
    gw2.auth.poll_auth_epoch().await.unwrap();

    // Gateway 1 grants alice Write.
    let mut dev = env.authed().await;
    let create =
        CreateAclsRequest::default().with_creations(vec![acl(2, "payments", "User:alice", 4)]);
    let created: CreateAclsResponse = dev.call(ApiKey::CreateAcls, 3, &create).await;
    assert_eq!(created.results[0].error_code, 0);
    // Until gateway 2 polls, its cached list still refuses (so the poll is what applies it)…
    assert_eq!(produce_code(&mut alice, "payments").await.0, 29);
    // … and its next poll (every second in production) sees the raised epoch.
    assert!(
        gw2.auth.poll_auth_epoch().await.unwrap(),
        "an ACL creation raises the auth epoch"
    );
    assert_eq!(produce_code(&mut alice, "payments").await.0, 0);

    // A deletion on gateway 1 takes effect on gateway 2 the same way.
    let delete = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
        .with_resource_type_filter(2)
        .with_resource_name_filter(Some(StrBytes::from_static_str("payments")))
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1)]);
    let deleted: DeleteAclsResponse = dev.call(ApiKey::DeleteAcls, 2, &delete).await;
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    assert!(gw2.auth.poll_auth_epoch().await.unwrap());
    assert_eq!(produce_code(&mut alice, "payments").await.0, 29);
}
