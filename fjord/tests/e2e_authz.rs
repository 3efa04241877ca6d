//! End to end with librdkafka: authorization by IAM policy and by Kafka ACLs through `fjord dev`.
//!
//! The test adds principals the honest way a second process can: it opens the dev process's
//! SQLite metadata file (shared across processes by design) and seals the new keys' secrets
//! with the data dir's `secret.key`, exactly as the control plane would.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use fjord_metadata::{AccessKey, KeyStatus, MetadataStore, Principal, SqliteStore};
use fjord_tenancy::scram::ScramCredential;
use fjord_tenancy::{SecretSealer, SecretString};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

const TOPIC: &str = "payments";
const READER_KEY: &str = "AKIAE2EREADONLY00001";
const READER_SECRET: &str = "e2e-reader-secret-000000000000000000000000";
const READ_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kafka-cluster:Connect","kafka-cluster:DescribeTopic","kafka-cluster:ReadData","kafka-cluster:DescribeGroup","kafka-cluster:AlterGroup"],"Resource":"*"}]}"#;

/// Adds `user/reader` (read-only policy, an access key) and `user/alice` (SCRAM only) to the
/// dev account of the running `fjord dev`.
async fn add_principals(fjord: &Fjord) -> (String, String) {
    let store = SqliteStore::open(&fjord.data_dir.join("metadata.sqlite")).unwrap();
    let sealer = SecretSealer::load_or_create(&fjord.data_dir.join("secret.key")).unwrap();
    let dev_key = store
        .get_access_key(&fjord.credentials().access_key_id)
        .await
        .unwrap()
        .unwrap();
    let account = dev_key.account_id;
    let now = dev_key.created_ms;
    let reader = Principal {
        account_id: account.clone(),
        name: "user/reader".into(),
        policies: BTreeMap::from([("read-only".to_owned(), READ_ONLY.to_owned())]),
        scram: None,
        version: 0,
        created_ms: now,
    };
    store.create_principal(&reader).await.unwrap();
    store
        .create_access_key(&AccessKey {
            id: READER_KEY.into(),
            sealed_secret: sealer
                .seal(READER_KEY, &SecretString::new(READER_SECRET))
                .unwrap(),
            account_id: account.clone(),
            principal: "user/reader".into(),
            status: KeyStatus::Active,
            expires_ms: None,
            created_ms: now,
        })
        .await
        .unwrap();
    let password = "alice-e2e-password";
    let cred = ScramCredential::derive(password.as_bytes(), b"e2e-alice-salt", 4096).unwrap();
    let alice = Principal {
        account_id: account.clone(),
        name: "user/alice".into(),
        policies: BTreeMap::new(),
        scram: Some(serde_json::to_string(&cred).unwrap()),
        version: 0,
        created_ms: now,
    };
    store.create_principal(&alice).await.unwrap();
    ("alice".into(), password.into())
}

fn iam_producer(fjord: &Fjord, creds: Credentials) -> FutureProducer<MskIam> {
    client_config(&fjord.bootstrap)
        .set("message.timeout.ms", "20000")
        .create_with_context(MskIam(creds))
        .unwrap()
}

fn scram_config(fjord: &Fjord, user: &str, password: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &fjord.bootstrap)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", user)
        .set("sasl.password", password)
        .set("broker.address.family", "v4")
        .set("message.timeout.ms", "20000");
    c
}

/// The produce error of one message, `None` when it was acknowledged.
async fn produce_error<C: rdkafka::ClientContext + 'static>(
    p: &FutureProducer<C>,
    topic: &str,
) -> Option<RDKafkaErrorCode> {
    match p
        .send(
            FutureRecord::<(), _>::to(topic).payload("hello"),
            Duration::from_secs(30),
        )
        .await
    {
        Ok(_) => None,
        Err((KafkaError::MessageProduction(code), _)) => Some(code),
        Err((other, _)) => panic!("unexpected produce error {other:?}"),
    }
}

/// Grants `User:<user>` WRITE on `topic` through CreateAcls, as the dev IAM principal.
fn grant_write(fjord: &Fjord, user: &str, topic: &str) {
    let mut conn = raw::RawConn::connect(&fjord.bootstrap);
    conn.login_plain(&fjord.credentials());
    let req = CreateAclsRequest::default().with_creations(vec![AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_string(topic.into()))
        .with_resource_pattern_type(3)
        .with_principal(StrBytes::from_string(format!("User:{user}")))
        .with_host(StrBytes::from_static_str("*"))
        .with_operation(4)
        .with_permission_type(3)]);
    let resp: CreateAclsResponse = conn.call(ApiKey::CreateAcls, 1, &req);
    assert_eq!(
        resp.results[0].error_code, 0,
        "{:?}",
        resp.results[0].error_message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_and_acls_with_librdkafka() {
    let dir = tempfile::tempdir().unwrap();
    let fjord = Fjord::start(dir.path(), "127.0.0.1:0", &[]);
    create_topic(&fjord, TOPIC, 1, &[]).await;
    create_topic(&fjord, "other", 1, &[]).await;
    let (user, password) = add_principals(&fjord).await;

    // The dev principal (allow-all policy) produces.
    let dev = iam_producer(&fjord, fjord.credentials());
    assert_eq!(produce_error(&dev, TOPIC).await, None);

    // The read-only principal may not produce…
    let reader_creds = Credentials {
        access_key_id: READER_KEY.into(),
        secret: READER_SECRET.into(),
    };
    let reader = iam_producer(&fjord, reader_creds.clone());
    assert_eq!(
        produce_error(&reader, TOPIC).await,
        Some(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    // …but consumes what the dev principal wrote.
    let consumer: BaseConsumer<MskIam> = client_config(&fjord.bootstrap)
        .set("group.id", "e2e-reader")
        .set("enable.auto.commit", "false")
        .create_with_context(MskIam(reader_creds))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let got = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the reader never consumed"
        );
        if let Some(m) = tokio::task::block_in_place(|| consumer.poll(Duration::from_millis(200))) {
            break m.unwrap().payload().unwrap().to_vec();
        }
    };
    assert_eq!(got, b"hello");

    // SCRAM-SHA-512: alice logs in; without ACLs she may do nothing, with WRITE she produces.
    let alice: FutureProducer<DefaultClientContext> =
        scram_config(&fjord, &user, &password).create().unwrap();
    grant_write(&fjord, &user, TOPIC);
    assert_eq!(produce_error(&alice, TOPIC).await, None);
    assert_eq!(
        produce_error(&alice, "other").await,
        Some(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    // A wrong SCRAM password never gets in.
    let mallory: FutureProducer<DefaultClientContext> = scram_config(&fjord, &user, "wrong")
        .set("message.timeout.ms", "3000")
        .create()
        .unwrap();
    let err = produce_error(&mallory, TOPIC).await;
    assert!(err.is_some(), "a wrong password must not produce");
}
