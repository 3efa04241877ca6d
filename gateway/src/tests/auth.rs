//! ApiVersions and SASL: what is allowed before authentication, the mechanisms, failures,
//! expiry and re-authentication.

use std::time::{Duration, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use fjord_metadata::{AccessKey, KeyStatus};
use fjord_tenancy::secrets::SecretString;
use fjord_tenancy::signer::msk_iam_payload;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::*;

fn handshake(mechanism: &'static str) -> SaslHandshakeRequest {
    SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism))
}

#[tokio::test]
async fn api_versions_v0_v3_v4_before_authentication() {
    let env = Env::new(&["n1"]).await;
    let mut c = env.client();
    for v in [0, 1, 2, 3, 4] {
        let resp: ApiVersionsResponse = c
            .call(
                ApiKey::ApiVersions,
                v,
                &ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("t"))
                    .with_client_software_version(StrBytes::from_static_str("1")),
            )
            .await;
        assert_eq!(resp.error_code, 0);
        let produce = resp
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::Produce as i16)
            .unwrap();
        assert_eq!((produce.min_version, produce.max_version), (3, 11));
        for key in [
            ApiKey::Fetch,
            ApiKey::Metadata,
            ApiKey::SaslAuthenticate,
            ApiKey::JoinGroup,
            ApiKey::CreateTopics,
            ApiKey::DescribeCluster,
        ] {
            assert!(
                resp.api_keys.iter().any(|k| k.api_key == key as i16),
                "{key:?} missing at v{v}"
            );
        }
    }
}

#[tokio::test]
async fn api_versions_above_ours_gets_v0_unsupported_with_ranges() {
    let env = Env::new(&["n1"]).await;
    let mut c = env.client();
    // ApiVersions v9: header fields we never decode, since the answer is always v0.
    let mut frame = BytesMut::new();
    frame.put_i16(ApiKey::ApiVersions as i16);
    frame.put_i16(9);
    frame.put_i32(42);
    frame.put_slice(b"\x00\x04kpy3\x00");
    let Outcome::Respond(resp) = c.send_raw(frame.freeze()).await else {
        panic!("no response")
    };
    let (corr, mut body) = parse_response(ApiKey::ApiVersions, 0, &resp);
    assert_eq!(corr, 42);
    let decoded = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(decoded.error_code, 35);
    let av = decoded
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .unwrap();
    assert_eq!((av.min_version, av.max_version), (0, 4));
    // The connection stays usable: the client retries lower.
    let again: ApiVersionsResponse = c
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    assert_eq!(again.error_code, 0);
}

#[tokio::test]
async fn requests_before_authentication_close_the_connection() {
    let env = Env::new(&["n1"]).await;
    for api in [ApiKey::Metadata, ApiKey::Produce, ApiKey::FindCoordinator] {
        let mut c = env.client();
        let out = match api {
            ApiKey::Metadata => c.send(api, 12, &MetadataRequest::default()).await,
            ApiKey::Produce => c.send(api, 9, &ProduceRequest::default()).await,
            _ => c.send(api, 3, &FindCoordinatorRequest::default()).await,
        };
        match out {
            Outcome::Close {
                frame: None,
                reason: crate::ConnectionError::Unauthenticated(_),
                ..
            } => {}
            other => panic!("{api:?}: {other:?}"),
        }
    }
    // A handshake alone does not authenticate.
    let mut c = env.client();
    let hs: SaslHandshakeResponse = c.call(ApiKey::SaslHandshake, 1, &handshake("PLAIN")).await;
    assert_eq!(hs.error_code, 0);
    assert!(matches!(
        c.send(ApiKey::Metadata, 12, &MetadataRequest::default())
            .await,
        Outcome::Close { .. }
    ));
}

#[tokio::test]
async fn plain_authentication_then_requests_work() {
    let env = Env::new(&["n1"]).await;
    let mut c = env.client();
    let hs: SaslHandshakeResponse = c.call(ApiKey::SaslHandshake, 1, &handshake("PLAIN")).await;
    assert_eq!(hs.error_code, 0);
    let names: Vec<&str> = hs.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(
        names,
        ["AWS_MSK_IAM", "OAUTHBEARER", "PLAIN", "SCRAM-SHA-512"]
    );
    let auth: SaslAuthenticateResponse = c
        .call(ApiKey::SaslAuthenticate, 1, &plain(&env.tenant))
        .await;
    assert_eq!(auth.error_code, 0);
    assert!(auth.auth_bytes.is_empty());
    // Long-lived keys: no forced re-authentication.
    assert_eq!(auth.session_lifetime_ms, 0);
    assert_eq!(
        c.session.identity().unwrap().cluster_id,
        env.tenant.cluster.id
    );
    let md: MetadataResponse = c
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    assert_eq!(md.brokers.len(), 1);
}

#[tokio::test]
async fn unsupported_mechanism_lists_ours_and_closes() {
    let env = Env::new(&["n1"]).await;
    let mut c = env.client();
    c.corr += 1;
    let out = c
        .send_raw(request_frame(
            ApiKey::SaslHandshake,
            1,
            c.corr,
            &handshake("SCRAM-SHA-256"),
        ))
        .await;
    let Outcome::Close {
        frame: Some(frame), ..
    } = out
    else {
        panic!("{out:?}")
    };
    let (_, mut body) = parse_response(ApiKey::SaslHandshake, 1, &frame);
    let resp = SaslHandshakeResponse::decode(&mut body, 1).unwrap();
    assert_eq!(resp.error_code, 33);
    assert_eq!(resp.mechanisms.len(), 4);
}

#[tokio::test]
async fn wrong_secret_fails_with_message_after_delay_and_closes() {
    let env = Env::new(&["n1"]).await;
    let mut c = env.client();
    let _: SaslHandshakeResponse = c.call(ApiKey::SaslHandshake, 1, &handshake("PLAIN")).await;
    let bad = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(format!(
        "\0{}\0wrong-secret",
        env.tenant.access_key_id
    )));
    let out = c.send(ApiKey::SaslAuthenticate, 2, &bad).await;
    let Outcome::Close {
        frame: Some(frame),
        delay,
        ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(delay, env.gw.config().auth_failure_delay);
    let (_, mut body) = parse_response(ApiKey::SaslAuthenticate, 2, &frame);
    let resp = SaslAuthenticateResponse::decode(&mut body, 2).unwrap();
    assert_eq!(resp.error_code, 58);
    let msg = resp.error_message.unwrap();
    assert!(msg.contains(&env.tenant.access_key_id), "{msg}");
    assert!(c.session.identity().is_none());
}

#[tokio::test]
async fn authenticate_without_handshake_is_an_illegal_state() {
    let env = Env::new(&["n1"]).await;
    let mut c = env.client();
    let out = c
        .send(ApiKey::SaslAuthenticate, 1, &plain(&env.tenant))
        .await;
    let Outcome::Close {
        frame: Some(frame), ..
    } = out
    else {
        panic!("{out:?}")
    };
    let (_, mut body) = parse_response(ApiKey::SaslAuthenticate, 1, &frame);
    assert_eq!(
        SaslAuthenticateResponse::decode(&mut body, 1)
            .unwrap()
            .error_code,
        34
    );
}

fn iam(env: &Env, at_ms: i64) -> SaslAuthenticateRequest {
    let payload = msk_iam_payload(
        &env.tenant.access_key_id,
        env.tenant.secret_access_key.expose(),
        None,
        "us-east-1",
        "gw.us-east-1.fjord.test",
        UNIX_EPOCH + Duration::from_millis(at_ms as u64),
    )
    .unwrap();
    SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(payload))
}

#[tokio::test]
async fn msk_iam_session_expires_and_reauthentication_extends_it() {
    let env = Env::new(&["n1"]).await;
    let mut c = env.client();
    let _: SaslHandshakeResponse = c
        .call(ApiKey::SaslHandshake, 1, &handshake("AWS_MSK_IAM"))
        .await;
    let auth: SaslAuthenticateResponse = c.call(ApiKey::SaslAuthenticate, 1, &iam(&env, NOW)).await;
    assert_eq!(auth.error_code, 0, "{:?}", auth.error_message);
    let json: serde_json::Value = serde_json::from_slice(&auth.auth_bytes).unwrap();
    assert_eq!(json["version"], "2020_10_22");
    assert!(!json["request-id"].as_str().unwrap().is_empty());
    // The signature is valid for 900 s.
    assert_eq!(auth.session_lifetime_ms, 900_000);

    // Re-authenticate before expiry: same principal, new lifetime.
    c.now_ms = NOW + 800_000;
    let hs: SaslHandshakeResponse = c
        .call(ApiKey::SaslHandshake, 1, &handshake("AWS_MSK_IAM"))
        .await;
    assert_eq!(hs.error_code, 0);
    let again: SaslAuthenticateResponse = c
        .call(ApiKey::SaslAuthenticate, 1, &iam(&env, c.now_ms))
        .await;
    assert_eq!(again.error_code, 0);
    c.now_ms = NOW + 1_000_000;
    let _: MetadataResponse = c
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;

    // Past the new expiry without re-authenticating: closed.
    c.now_ms = NOW + 800_000 + 900_000;
    let out = c
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    assert!(
        matches!(
            out,
            Outcome::Close {
                reason: crate::ConnectionError::SessionExpired,
                ..
            }
        ),
        "{out:?}"
    );
}

#[tokio::test]
async fn reauthentication_must_keep_the_principal_and_mechanism() {
    let env = Env::new(&["n1"]).await;
    // A second key of the same account with another principal.
    let sealer = SecretSealer::from_key([7; 32]);
    let other = AccessKey {
        id: "AKIAOTHERPRINCIPAL01".into(),
        sealed_secret: sealer
            .seal("AKIAOTHERPRINCIPAL01", &SecretString::new("other-secret"))
            .unwrap(),
        account_id: env.tenant.account_id.clone(),
        principal: "user/other".into(),
        status: KeyStatus::Active,
        expires_ms: None,
        created_ms: NOW,
    };
    env.store.create_access_key(&other).await.unwrap();

    let mut c = env.authed().await;
    let out = c
        .send(ApiKey::SaslHandshake, 1, &handshake("OAUTHBEARER"))
        .await;
    assert!(
        matches!(out, Outcome::Close { .. }),
        "mechanism change must close: {out:?}"
    );

    let mut c = env.authed().await;
    let _: SaslHandshakeResponse = c.call(ApiKey::SaslHandshake, 1, &handshake("PLAIN")).await;
    let swap = SaslAuthenticateRequest::default()
        .with_auth_bytes(Bytes::from_static(b"\0AKIAOTHERPRINCIPAL01\0other-secret"));
    let out = c.send(ApiKey::SaslAuthenticate, 2, &swap).await;
    let Outcome::Close {
        frame: Some(frame), ..
    } = out
    else {
        panic!("{out:?}")
    };
    let (_, mut body) = parse_response(ApiKey::SaslAuthenticate, 2, &frame);
    let resp = SaslAuthenticateResponse::decode(&mut body, 2).unwrap();
    assert_eq!(resp.error_code, 58);
    assert!(resp.error_message.unwrap().contains("principal"));
}
