//! Protocol-level end-to-end tests over raw sockets: exact bytes a library client would never
//! send (replayed batches, garbage, oversized frames, hand-signed SASL payloads).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::raw::{batch, produce_request, RawConn};
use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::{FutureProducer, FutureRecord};

fn list_latest(conn: &mut RawConn, topic: &str, partition: i32) -> i64 {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(-1),
            ])]);
    let resp: ListOffsetsResponse = conn.call(ApiKey::ListOffsets, 6, &req);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "list offsets");
    p.offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_idempotent_batch_is_not_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    let fjord = Fjord::start(dir.path(), "127.0.0.1:0", &[]);
    create_topic(&fjord, "idem", 1, &[]).await;
    let mut conn = RawConn::connect(&fjord.bootstrap);
    conn.login_plain(&fjord.credentials());

    let init: InitProducerIdResponse = conn.call(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    assert!(pid >= 0);

    let first = batch(5, pid, epoch, 0);
    let produce = |conn: &mut RawConn, records: Bytes| -> (i16, i64) {
        let resp: ProduceResponse =
            conn.call(ApiKey::Produce, 9, &produce_request("idem", 0, records, -1));
        let p = &resp.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    };
    let (code, base) = produce(&mut conn, first.clone());
    assert_eq!((code, base), (0, 0));
    // The retry (same producer, epoch and sequence) is acknowledged with the original offset and
    // not written again.
    assert_eq!(produce(&mut conn, first), (0, 0));
    assert_eq!(produce(&mut conn, batch(5, pid, epoch, 5)), (0, 5));
    assert_eq!(
        list_latest(&mut conn, "idem", 0),
        10,
        "exactly two batches stored"
    );
    // A gap in sequence numbers is refused.
    let (code, _) = produce(&mut conn, batch(1, pid, epoch, 42));
    assert_eq!(code, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");
    assert_eq!(list_latest(&mut conn, "idem", 0), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_one_connection_leaves_others_unharmed() {
    let dir = tempfile::tempdir().unwrap();
    let fjord = Fjord::start(dir.path(), "127.0.0.1:0", &[]);
    create_topic(&fjord, "steady", 1, &[]).await;
    let producer: FutureProducer<MskIam> = client_config(&fjord.bootstrap)
        .set("acks", "all")
        .create_with_context(MskIam(fjord.credentials()))
        .unwrap();

    let mut attacks = Vec::new();
    // Garbage bytes before any handshake.
    let mut garbage = RawConn::connect(&fjord.bootstrap);
    garbage.send_bytes(&[
        0x00, 0x00, 0x00, 0x10, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0x12, 0x34,
    ]);
    garbage.send_bytes(&[0xab; 12]);
    attacks.push(("garbage", garbage));
    // A frame that claims 2 GiB.
    let mut huge = RawConn::connect(&fjord.bootstrap);
    huge.send_bytes(&[0x7f, 0xff, 0xff, 0xff, 0x00, 0x12]);
    attacks.push(("oversized", huge));
    // An authenticated connection that sends a truncated Produce request.
    let mut truncated = RawConn::connect(&fjord.bootstrap);
    truncated.login_plain(&fjord.credentials());
    let mut frame = truncated.frame(
        ApiKey::Produce,
        9,
        &produce_request("steady", 0, batch(3, -1, -1, 0), -1),
    );
    let cut = frame.len() - 20;
    frame.truncate(cut);
    frame[..4].copy_from_slice(&((cut - 4) as i32).to_be_bytes());
    truncated.send_bytes(&frame);
    attacks.push(("truncated", truncated));
    // An authenticated 9-byte CreateTopics body whose topic count claims 2^31 - 1 entries: the
    // decoder must not reserve memory for them (that would abort the whole process).
    let mut forged = RawConn::connect(&fjord.bootstrap);
    forged.login_plain(&fjord.credentials());
    let mut frame = forged.frame(ApiKey::CreateTopics, 4, &CreateTopicsRequest::default());
    let body = frame.len() - 9; // topics count (i32), timeout_ms (i32), validate_only (bool)
    assert_eq!(&frame[body..body + 4], &[0, 0, 0, 0], "empty topics array");
    frame[body..body + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    forged.send_bytes(&frame);
    attacks.push(("forged array count", forged));
    // A request before authentication.
    let mut early = RawConn::connect(&fjord.bootstrap);
    let frame = early.frame(ApiKey::Metadata, 12, &MetadataRequest::default());
    early.send_bytes(&frame);
    attacks.push(("unauthenticated", early));

    for (name, mut conn) in attacks {
        assert!(
            conn.closed_by_server(),
            "{name}: the server must close the connection"
        );
    }
    for i in 0..100 {
        let v = format!("ok-{i}");
        producer
            .send(
                FutureRecord::<(), _>::to("steady").payload(&v),
                Duration::from_secs(10),
            )
            .await
            .expect("produce on a healthy connection");
    }
    let mut conn = RawConn::connect(&fjord.bootstrap);
    conn.login_plain(&fjord.credentials());
    assert_eq!(
        list_latest(&mut conn, "steady", 0),
        100,
        "nothing from the bad connections landed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_msk_iam_payloads_signed_with_aws_sigv4() {
    let dir = tempfile::tempdir().unwrap();
    let fjord = Fjord::start(dir.path(), "127.0.0.1:0", &[]);
    let creds = fjord.credentials();
    let host = "127.0.0.1";
    let payload = |secret: &str, when: SystemTime| {
        fjord_tenancy::signer::msk_iam_payload(
            &creds.access_key_id,
            secret,
            None,
            REGION,
            host,
            when,
        )
        .expect("sign payload")
    };

    let mut ok = RawConn::connect(&fjord.bootstrap);
    let r = ok.authenticate("AWS_MSK_IAM", payload(&creds.secret, SystemTime::now()));
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let answer: serde_json::Value = serde_json::from_slice(&r.auth_bytes).expect("JSON answer");
    assert_eq!(answer["version"], "2020_10_22");
    assert!(answer["request-id"].as_str().is_some_and(|s| !s.is_empty()));
    let md: MetadataResponse = ok.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert_eq!(md.brokers.len(), 1, "authenticated requests are served");

    let wrong_secret = payload(
        "0000000000000000000000000000000000000000",
        SystemTime::now(),
    );
    let stale = payload(&creds.secret, SystemTime::now() - Duration::from_secs(3600));
    let mut tampered: serde_json::Value =
        serde_json::from_slice(&payload(&creds.secret, SystemTime::now())).unwrap();
    let sig = tampered["x-amz-signature"].as_str().unwrap().to_string();
    let (first, rest) = sig.split_at(1);
    let flipped = format!("{}{rest}", if first == "0" { "1" } else { "0" });
    tampered["x-amz-signature"] = serde_json::Value::String(flipped);
    for (name, bytes) in [
        ("wrong secret", wrong_secret),
        ("stale date", stale),
        ("tampered signature", serde_json::to_vec(&tampered).unwrap()),
    ] {
        let mut conn = RawConn::connect(&fjord.bootstrap);
        let r = conn.authenticate("AWS_MSK_IAM", bytes);
        assert_eq!(r.error_code, 58, "{name}: SASL_AUTHENTICATION_FAILED");
        assert!(
            r.error_message.is_some_and(|m| !m.is_empty()),
            "{name}: the refusal says why"
        );
        assert!(
            conn.closed_by_server(),
            "{name}: connection closed after a failed login"
        );
    }
}
