//! Bad frames: the core refuses them without panicking, and the shell closes only the
//! connection that sent them. Also one real-socket test of `serve` and its shutdown.

use std::net::SocketAddr;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::watch;

use super::*;
use crate::ConnectionError;

pub(super) fn peer() -> SocketAddr {
    "127.0.0.1:5555".parse().unwrap()
}

#[tokio::test]
async fn short_and_garbage_frames_close_without_panicking() {
    let env = Env::new(&["n1"]).await;
    let cases: &[&[u8]] = &[
        b"",
        b"\x00\x12",
        b"\x00\x12\x00\x03\x00\x00",
        // ApiVersions v3 whose flexible header claims a huge client id.
        b"\x00\x12\x00\x03\x00\x00\x00\x01\x7f\xff",
        // Unknown api key.
        b"\x7f\x00\x00\x00\x00\x00\x00\x01",
        // Random bytes.
        b"\xde\xad\xbe\xef\xde\xad\xbe\xef\xde\xad\xbe\xef",
    ];
    for case in cases {
        let mut c = env.client();
        let out = c.send_raw(Bytes::copy_from_slice(case)).await;
        assert!(
            matches!(out, Outcome::Close { frame: None, .. }),
            "{case:?}: {out:?}"
        );
    }
    // Every prefix of a valid authenticated request: none may panic; all but the whole close.
    let mut c = env.authed().await;
    let full = request_frame(
        ApiKey::Metadata,
        12,
        9,
        &MetadataRequest::default().with_topics(Some(vec![])),
    );
    for len in 0..full.len() {
        let out = c.send_raw(full.slice(..len)).await;
        assert!(
            matches!(out, Outcome::Close { .. }),
            "prefix {len}: {out:?}"
        );
    }
    assert!(matches!(c.send_raw(full).await, Outcome::Respond(_)));
}

#[tokio::test]
async fn unknown_api_or_version_after_auth_answers_unsupported_version() {
    let env = Env::new(&["n1"]).await;
    let mut c = env.authed().await;
    // Metadata v13 is beyond what we serve.
    let out = c
        .send(ApiKey::Metadata, 13, &MetadataRequest::default())
        .await;
    let Outcome::Close {
        frame: Some(frame),
        reason: ConnectionError::UnsupportedVersion { .. },
        ..
    } = out
    else {
        panic!("{out:?}")
    };
    let mut b = frame.clone();
    use bytes::Buf;
    assert_eq!(b.get_i32(), 6);
    assert_eq!(b.get_i32(), c.corr);
    assert_eq!(b.get_i16(), 35);
}

pub(super) async fn write_frame(s: &mut DuplexStream, body: &[u8]) {
    let mut f = BytesMut::new();
    f.put_i32(body.len() as i32);
    f.put_slice(body);
    s.write_all(&f).await.unwrap();
}

pub(super) async fn read_frame(s: &mut DuplexStream) -> Option<Bytes> {
    crate::connection::read_frame(s, 1 << 20)
        .await
        .ok()
        .flatten()
}

/// Runs one connection over an in-memory pipe.
pub(super) fn open(
    env: &Env,
    stop: &watch::Receiver<bool>,
) -> (DuplexStream, tokio::task::JoinHandle<()>) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let task = tokio::spawn(crate::connection::run(
        env.gw.clone(),
        server,
        peer(),
        stop.clone(),
    ));
    (client, task)
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    let env = Env::new(&["n1"]).await;
    let (_stop_tx, stop) = watch::channel(false);
    let (mut good, _good_task) = open(&env, &stop);
    let api_versions = request_frame(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());

    let mut sizes: Vec<Vec<u8>> = vec![
        // Oversized before authentication (over 64 KiB).
        (70_000i32).to_be_bytes().to_vec(),
        // Negative.
        (-1i32).to_be_bytes().to_vec(),
        // Larger than any frame.
        i32::MAX.to_be_bytes().to_vec(),
    ];
    // Truncated: announces 100 bytes, sends 10, then hangs up.
    let mut truncated = 100i32.to_be_bytes().to_vec();
    truncated.extend_from_slice(&[0u8; 10]);
    sizes.push(truncated);
    // Garbage body of a plausible size.
    let mut garbage = 12i32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xab; 12]);
    sizes.push(garbage);

    for bad in sizes {
        let (mut conn, task) = open(&env, &stop);
        conn.write_all(&bad).await.unwrap();
        conn.shutdown().await.unwrap();
        // The gateway closes: the task ends and nothing (or only EOF) comes back.
        task.await.unwrap();
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "unexpected bytes after {bad:?}");

        // The other connection is unharmed.
        write_frame(&mut good, &api_versions).await;
        let resp = read_frame(&mut good)
            .await
            .expect("good connection still answers");
        let (corr, _) = parse_response(ApiKey::ApiVersions, 3, &reframe(&resp));
        assert_eq!(corr, 1);
    }
}

#[tokio::test]
async fn authenticated_connections_accept_large_frames() {
    let env = Env::new(&["n1"]).await;
    env.create_topic("big", 1).await;
    let (_stop_tx, stop) = watch::channel(false);
    let (mut conn, _task) = open(&env, &stop);
    let hs = request_frame(
        ApiKey::SaslHandshake,
        1,
        1,
        &SaslHandshakeRequest::default().with_mechanism("PLAIN".into()),
    );
    write_frame(&mut conn, &hs).await;
    read_frame(&mut conn).await.unwrap();
    write_frame(
        &mut conn,
        &request_frame(ApiKey::SaslAuthenticate, 2, 2, &plain(&env.tenant)),
    )
    .await;
    let (_, mut b) = parse_response(
        ApiKey::SaslAuthenticate,
        2,
        &reframe(&read_frame(&mut conn).await.unwrap()),
    );
    assert_eq!(
        SaslAuthenticateResponse::decode(&mut b, 2)
            .unwrap()
            .error_code,
        0
    );
    // A 200 KiB produce: above the pre-auth cap, fine now.
    let records = batch(20_000);
    assert!(records.len() > 100_000);
    let req = data::produce_req("big", &[(0, records)], -1);
    write_frame(&mut conn, &request_frame(ApiKey::Produce, 9, 3, &req)).await;
    let (corr, mut b) = parse_response(
        ApiKey::Produce,
        9,
        &reframe(&read_frame(&mut conn).await.unwrap()),
    );
    assert_eq!(corr, 3);
    let resp = ProduceResponse::decode(&mut b, 9).unwrap();
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
}

#[tokio::test]
async fn serve_accepts_over_tcp_and_shuts_down() {
    let env = Env::new(&["n1"]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(env.gw.clone().serve(listener, async {
        let _ = stop_rx.await;
    }));
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = request_frame(ApiKey::ApiVersions, 3, 77, &ApiVersionsRequest::default());
    let mut f = BytesMut::new();
    f.put_i32(req.len() as i32);
    f.put_slice(&req);
    sock.write_all(&f).await.unwrap();
    let resp = crate::connection::read_frame(&mut sock, 1 << 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        parse_response(ApiKey::ApiVersions, 3, &reframe(&resp)).0,
        77
    );
    // Shutdown with an idle open connection: serve returns and the connection is closed.
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    let mut rest = Vec::new();
    sock.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// Mutated pre-authentication frames (the decoders any peer can reach): no panic, and every
/// frame either gets an answer or closes the connection. Deterministic (seeded).
#[tokio::test]
async fn mutated_pre_auth_frames_never_panic() {
    use rand::{Rng, SeedableRng};
    let env = Env::new(&["n1"]).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut bases = Vec::new();
    for v in 0..=4 {
        bases.push(request_frame(
            ApiKey::ApiVersions,
            v,
            1,
            &ApiVersionsRequest::default().with_client_software_name("librdkafka".into()),
        ));
    }
    for v in 0..=1 {
        bases.push(request_frame(
            ApiKey::SaslHandshake,
            v,
            2,
            &SaslHandshakeRequest::default().with_mechanism("AWS_MSK_IAM".into()),
        ));
    }
    for v in 0..=2 {
        bases.push(request_frame(
            ApiKey::SaslAuthenticate,
            v,
            3,
            &plain(&env.tenant),
        ));
    }
    for i in 0..3000 {
        let base = &bases[i % bases.len()];
        let mut f = base.to_vec();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..f.len());
            f[at] = rng.gen();
        }
        match rng.gen_range(0..3) {
            0 => f.truncate(rng.gen_range(0..f.len())),
            1 => f.extend((0..rng.gen_range(0..16)).map(|_| rng.gen::<u8>())),
            _ => {}
        }
        // A fresh session half the time, one that has done a PLAIN handshake otherwise.
        let mut c = env.client();
        if rng.gen() {
            let _: SaslHandshakeResponse = c
                .call(
                    ApiKey::SaslHandshake,
                    1,
                    &SaslHandshakeRequest::default().with_mechanism("PLAIN".into()),
                )
                .await;
        }
        let _ = c.send_raw(Bytes::from(f)).await;
    }
}

/// The shell closes an idle connection when its credential expires (KIP-368), without any
/// request arriving.
#[tokio::test]
async fn idle_connection_is_closed_when_its_credential_expires() {
    use fjord_metadata::{AccessKey, KeyStatus};
    use fjord_tenancy::secrets::SecretString;
    let env = Env::new(&["n1"]).await;
    let now = crate::connection::now_ms();
    let sealer = SecretSealer::from_key([7; 32]);
    let key = AccessKey {
        id: "ASIATEMPORARYKEY0001".into(),
        sealed_secret: sealer
            .seal("ASIATEMPORARYKEY0001", &SecretString::new("temp-secret"))
            .unwrap(),
        account_id: env.tenant.account_id.clone(),
        principal: "user/temp".into(),
        status: KeyStatus::Active,
        expires_ms: Some(now + 400),
        created_ms: now,
    };
    env.store.create_access_key(&key).await.unwrap();
    // The principal may connect (authorization is default-deny).
    env.store
        .create_principal(&fjord_metadata::Principal {
            account_id: env.tenant.account_id.clone(),
            name: "user/temp".into(),
            policies: [(
                "all".to_owned(),
                fjord_tenancy::bootstrap::DEV_POLICY.to_owned(),
            )]
            .into(),
            scram: None,
            version: 0,
            created_ms: now,
        })
        .await
        .unwrap();
    let (_stop_tx, stop) = watch::channel(false);
    let (mut conn, task) = open(&env, &stop);
    // Temporary credentials present their session token, so OAUTHBEARER rather than PLAIN.
    let hs = request_frame(
        ApiKey::SaslHandshake,
        1,
        1,
        &SaslHandshakeRequest::default().with_mechanism("OAUTHBEARER".into()),
    );
    write_frame(&mut conn, &hs).await;
    read_frame(&mut conn).await.unwrap();
    let token = fjord_tenancy::session::mint(&sealer, "ASIATEMPORARYKEY0001", now + 400).unwrap();
    let signed = fjord_tenancy::signer::msk_iam_oauth_token(
        "ASIATEMPORARYKEY0001",
        "temp-secret",
        Some(&token),
        "us-east-1",
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(now as u64),
    )
    .unwrap();
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(
        fjord_tenancy::signer::oauthbearer_initial_response(&signed),
    ));
    write_frame(
        &mut conn,
        &request_frame(ApiKey::SaslAuthenticate, 2, 2, &auth),
    )
    .await;
    let (_, mut b) = parse_response(
        ApiKey::SaslAuthenticate,
        2,
        &reframe(&read_frame(&mut conn).await.unwrap()),
    );
    let resp = SaslAuthenticateResponse::decode(&mut b, 2).unwrap();
    assert_eq!(resp.error_code, 0, "{:?}", resp.error_message);
    assert!(resp.session_lifetime_ms > 0 && resp.session_lifetime_ms <= 400);
    // Nothing more is sent: the gateway must hang up by itself at expiry.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
    assert!(
        closed.is_ok(),
        "connection still open after its credential expired"
    );
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}
