//! Accept and refuse cases of every mechanism.
#![allow(clippy::unwrap_used)] // a failing unwrap is a failing test

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use fjord_metadata::{AccessKey, KeyStatus, MetadataStore};

use super::*;
use crate::auth::MAX_AUTH_BYTES;
use crate::sigv4::SigV4Error;

/// Asserts that an authentication result is a signature error matching `$pattern`, and
/// evaluates to that `AuthError`.
macro_rules! signature_err {
    ($result:expr, $pattern:pat) => {{
        let e = $result.unwrap_err();
        assert!(matches!(e, AuthError::Signature($pattern)), "{e}");
        e
    }};
}

#[tokio::test]
async fn tokens_from_the_python_signer_authenticate() {
    let h = harness().await;
    let expires = Some(T0_MS + 900_000);
    assert_eq!(
        h.bearer(PYTHON_TOKEN, T0_MS + 1000).await.unwrap(),
        h.expected(KEY_ID, expires)
    );
    // KEY_ID is a long-term key: a session token with it is refused.
    assert!(matches!(
        h.bearer(PYTHON_TOKEN_WITH_SESSION, T0_MS + 1000).await,
        Err(AuthError::SessionTokenNotExpected(_))
    ));
    // librdkafka-style gs2 header with an authzid and extensions.
    let resp = format!("n,a={KEY_ID},\x01host=localhost\x01auth=Bearer {PYTHON_TOKEN}\x01\x01");
    let id = h
        .auth
        .authenticate(Mechanism::OAuthBearer, resp.as_bytes(), T0_MS)
        .await
        .unwrap();
    assert_eq!(id, h.expected(KEY_ID, expires));
}

#[tokio::test]
async fn tokens_from_the_js_signer_authenticate() {
    let h = harness().await;
    let id = h.bearer(JS_TOKEN, T0_MS).await.unwrap();
    assert_eq!(id, h.expected(KEY_ID, Some(T0_MS + 900_000)));
    assert!(matches!(
        h.bearer(JS_TOKEN_WITH_SESSION, T0_MS).await,
        Err(AuthError::SessionTokenNotExpected(_))
    ));
    // The fractional expiry is accepted up to its last millisecond: the signature verifies and
    // only the session token (signed with the long-term KEY_ID) is refused after it.
    assert!(matches!(
        h.bearer(JS_TOKEN_FRACTIONAL_EXPIRY, T0_MS + 543_217).await,
        Err(AuthError::SessionTokenNotExpected(_))
    ));
    signature_err!(
        h.bearer(JS_TOKEN_FRACTIONAL_EXPIRY, T0_MS + 543_218).await,
        SigV4Error::Expired { .. }
    );
}

#[tokio::test]
async fn payloads_from_the_kafkajs_plugin_authenticate() {
    let h = harness().await;
    let id = h
        .iam(KAFKAJS_PAYLOAD.as_bytes(), T0_MS + 899_000)
        .await
        .unwrap();
    assert_eq!(id, h.expected(KEY_ID, Some(T0_MS + 900_000)));
    assert!(matches!(
        h.iam(KAFKAJS_PAYLOAD_WITH_SESSION.as_bytes(), T0_MS + 899_000)
            .await,
        Err(AuthError::SessionTokenNotExpected(_))
    ));
}

#[tokio::test]
async fn signer_matches_the_python_signer_byte_for_byte() {
    let url = |t: &str| String::from_utf8(URL_SAFE_NO_PAD.decode(t).unwrap()).unwrap();
    let ours = url(&token(KEY_ID, SECRET, REGION, T0_MS));
    let python = url(PYTHON_TOKEN);
    let strip_agent = |u: &str| u.split("&User-Agent=").next().unwrap().to_owned();
    assert_eq!(strip_agent(&ours), strip_agent(&python));
    assert!(ours.ends_with(&format!(
        "&User-Agent=fjord%2F{}",
        env!("CARGO_PKG_VERSION")
    )));
    // With a session token only the parameter order differs (botocore puts the token before
    // the signature, aws-sigv4 after it).
    let ours =
        url(&msk_iam_oauth_token(KEY_ID, SECRET, Some(SESSION_TOKEN), REGION, at(T0_MS)).unwrap());
    let sorted = |u: &str| {
        let mut v: Vec<String> = strip_agent(u)
            .split(['?', '&'])
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&ours), sorted(&url(PYTHON_TOKEN_WITH_SESSION)));
}

#[tokio::test]
async fn signer_payloads_and_tokens_authenticate() {
    let h = harness().await;
    let signed_at = T0_MS + 3_600_000;
    let expected = h.expected(KEY_ID, Some(signed_at + 900_000));
    assert_eq!(
        h.bearer(&token(KEY_ID, SECRET, REGION, signed_at), signed_at)
            .await
            .unwrap(),
        expected
    );
    assert_eq!(
        h.iam(&payload(KEY_ID, SECRET, REGION, signed_at), signed_at)
            .await
            .unwrap(),
        expected
    );
    let with_session = msk_iam_payload(
        KEY_ID,
        SECRET,
        Some(SESSION_TOKEN),
        REGION,
        "b-1.fjord.eu-west-1.example:9098",
        at(signed_at),
    )
    .unwrap();
    assert!(matches!(
        h.iam(&with_session, signed_at).await,
        Err(AuthError::SessionTokenNotExpected(_))
    ));
    // The signed host and session token are covered by the signature.
    let moved = with_field(&with_session, "host", "b-2.fjord.eu-west-1.example:9098");
    assert!(matches!(
        h.iam(&moved, signed_at).await,
        Err(AuthError::Signature(SigV4Error::SignatureMismatch))
    ));
    let other_token = with_field(&with_session, "x-amz-security-token", "other");
    assert!(matches!(
        h.iam(&other_token, signed_at).await,
        Err(AuthError::Signature(SigV4Error::SignatureMismatch))
    ));
}

#[tokio::test]
async fn wrong_secret_and_tampering_are_refused() {
    let h = harness().await;
    let wrong = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEz";
    let e = signature_err!(
        h.bearer(&token(KEY_ID, wrong, REGION, T0_MS), T0_MS).await,
        SigV4Error::SignatureMismatch
    );
    assert_eq!(e.to_string(), "signature does not match");
    signature_err!(
        h.iam(&payload(KEY_ID, wrong, REGION, T0_MS), T0_MS).await,
        SigV4Error::SignatureMismatch
    );

    let good = payload(KEY_ID, SECRET, REGION, T0_MS);
    let v: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let sig = v["x-amz-signature"].as_str().unwrap();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { '1' } else { '0' },
        &sig[1..]
    );
    signature_err!(
        h.iam(&with_field(&good, "x-amz-signature", &flipped), T0_MS)
            .await,
        SigV4Error::SignatureMismatch
    );
    signature_err!(
        h.iam(&with_field(&good, "x-amz-signature", "zz"), T0_MS)
            .await,
        SigV4Error::MalformedSignature
    );
    signature_err!(
        h.iam(&with_field(&good, "x-amz-expires", "901"), T0_MS)
            .await,
        SigV4Error::SignatureMismatch
    );

    // A tampered token: the signature inside the URL changed.
    let url = String::from_utf8(URL_SAFE_NO_PAD.decode(PYTHON_TOKEN).unwrap()).unwrap();
    let tampered = url.replace("X-Amz-Signature=a773", "X-Amz-Signature=b773");
    signature_err!(
        h.bearer(&URL_SAFE_NO_PAD.encode(tampered), T0_MS).await,
        SigV4Error::SignatureMismatch
    );
    // An extra parameter that was not signed.
    signature_err!(
        h.bearer(&URL_SAFE_NO_PAD.encode(format!("{url}&Extra=1")), T0_MS)
            .await,
        SigV4Error::SignatureMismatch
    );
}

#[tokio::test]
async fn time_window_is_enforced() {
    let h = harness().await;
    let t = token(KEY_ID, SECRET, REGION, T0_MS);
    // Valid up to and including date + expires.
    assert!(h.bearer(&t, T0_MS + 900_000).await.is_ok());
    let e = signature_err!(
        h.bearer(&t, T0_MS + 900_001).await,
        SigV4Error::Expired { .. }
    );
    assert_eq!(
        e.to_string(),
        "signature expired at 20261126T011703Z (server time 20261126T011703Z)"
    );
    signature_err!(
        h.iam(KAFKAJS_PAYLOAD.as_bytes(), T0_MS + 24 * 3_600_000)
            .await,
        SigV4Error::Expired { .. }
    );
    // Signed in the future: fine within the skew, refused beyond it.
    assert!(h.bearer(&t, T0_MS - SKEW_MS).await.is_ok());
    signature_err!(
        h.bearer(&t, T0_MS - SKEW_MS - 1).await,
        SigV4Error::NotYetValid { .. }
    );
    // x-amz-expires outside 1..=604800 is refused before any signature check.
    let p = payload(KEY_ID, SECRET, REGION, T0_MS);
    for bad in [
        "0",
        "0.999",
        "604801",
        "604800.001",
        "-1",
        "9e9",
        "",
        "1.",
        ".5",
        "1.2.3",
    ] {
        let e = h
            .iam(&with_field(&p, "x-amz-expires", bad), T0_MS)
            .await
            .unwrap_err();
        assert!(
            matches!(e, AuthError::Signature(SigV4Error::InvalidExpires(_))),
            "{bad}: {e}"
        );
    }
}

#[tokio::test]
async fn keys_must_exist_be_active_and_unexpired() {
    let h = harness().await;
    let e = h
        .bearer(&token("AKIAUNKNOWNKEY000001", SECRET, REGION, T0_MS), T0_MS)
        .await
        .unwrap_err();
    assert!(
        matches!(e, AuthError::UnknownAccessKey(ref k) if k == "AKIAUNKNOWNKEY000001"),
        "{e}"
    );
    let e = h
        .bearer(&token(INACTIVE_KEY, SECRET, REGION, T0_MS), T0_MS)
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::InactiveAccessKey(_)), "{e}");
    let e = h
        .iam(&payload(EXPIRED_KEY, SECRET, REGION, T0_MS), T0_MS)
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::AccessKeyExpired(_)), "{e}");
    // Whoever lacks the secret learns nothing about an inactive key's state.
    signature_err!(
        h.bearer(&token(INACTIVE_KEY, "x", REGION, T0_MS), T0_MS)
            .await,
        SigV4Error::SignatureMismatch
    );

    // Deactivation takes effect once the cache entry is gone.
    let t = token(KEY_ID, SECRET, REGION, T0_MS);
    assert!(h.bearer(&t, T0_MS).await.is_ok());
    h.store
        .set_access_key_status(KEY_ID, KeyStatus::Inactive)
        .await
        .unwrap();
    h.auth.invalidate_key(KEY_ID).await;
    assert!(matches!(
        h.bearer(&t, T0_MS).await,
        Err(AuthError::InactiveAccessKey(_))
    ));
}

#[tokio::test]
async fn temporary_key_caps_the_session_lifetime() {
    let h = harness().await;
    let sealer = SecretSealer::from_key([9; 32]);
    let key_expiry = T0_MS + 60_000;
    let key = AccessKey {
        id: "ASIATEMPORARYKEY0001".into(),
        sealed_secret: sealer
            .seal("ASIATEMPORARYKEY0001", &SecretString::new(SECRET))
            .unwrap(),
        account_id: ACCOUNT.into(),
        principal: "user/test".into(),
        status: KeyStatus::Active,
        expires_ms: Some(key_expiry),
        created_ms: T0_MS,
    };
    h.store.create_access_key(&key).await.unwrap();
    let config = h.auth.config().clone();
    let auth = Authenticator::new(h.store.clone(), sealer, config);
    let session_token = crate::session::mint(auth.sealer(), &key.id, key_expiry).unwrap();
    let t = msk_iam_oauth_token(&key.id, SECRET, Some(&session_token), REGION, at(T0_MS)).unwrap();
    let id = bearer(&auth, &t, T0_MS).await.unwrap();
    assert_eq!(id.expires_ms, Some(key_expiry));
    assert_eq!(id.session_lifetime_ms(T0_MS), 60_000);
    // PLAIN has no place for the session token, so temporary keys cannot use it.
    assert!(matches!(
        plain(&auth, &key.id, SECRET, T0_MS).await,
        Err(AuthError::SessionTokenRequired(_))
    ));
    // The harness's authenticator holds another sealing key: it cannot open this secret.
    let e = h.bearer(&t, T0_MS).await.unwrap_err();
    assert!(matches!(e, AuthError::SecretUnavailable(_)), "{e}");
    assert!(e.is_server_fault());
}

#[tokio::test]
async fn scope_region_service_and_action_are_checked() {
    let h = harness().await;
    let e = signature_err!(
        h.bearer(&token(KEY_ID, SECRET, "us-east-1", T0_MS), T0_MS)
            .await,
        SigV4Error::WrongRegion { .. }
    );
    assert!(e.to_string().contains("\"us-east-1\""), "{e}");
    let p = payload(KEY_ID, SECRET, REGION, T0_MS);
    type Case = (&'static str, &'static str, fn(&SigV4Error) -> bool);
    let cases: [Case; 8] = [
        ("action", "kafka-cluster:WriteData", |e| {
            matches!(e, SigV4Error::WrongAction(_))
        }),
        ("x-amz-algorithm", "AWS4-HMAC-SHA1", |e| {
            matches!(e, SigV4Error::UnsupportedAlgorithm(_))
        }),
        ("x-amz-signedheaders", "host;x-amz-date", |e| {
            matches!(e, SigV4Error::UnsupportedSignedHeaders(_))
        }),
        (
            "x-amz-credential",
            "AKIAFJORDTESTKEY0001/20261126/eu-west-1/kafka/aws4_request",
            |e| matches!(e, SigV4Error::WrongService(_)),
        ),
        (
            "x-amz-credential",
            "AKIAFJORDTESTKEY0001/20261125/eu-west-1/kafka-cluster/aws4_request",
            |e| matches!(e, SigV4Error::ScopeDateMismatch { .. }),
        ),
        (
            "x-amz-credential",
            "AKIAFJORDTESTKEY0001/20261126/eu-west-1/kafka-cluster",
            |e| matches!(e, SigV4Error::MalformedCredential),
        ),
        ("x-amz-date", "2026-11-26T01:02:03Z", |e| {
            matches!(e, SigV4Error::MalformedDate(_))
        }),
        ("host", "bad host\n", |e| {
            matches!(e, SigV4Error::InvalidHost(_))
        }),
    ];
    for (field, value, is_expected) in cases {
        match h.iam(&with_field(&p, field, value), T0_MS).await {
            Err(AuthError::Signature(e)) if is_expected(&e) => {}
            other => panic!("{field}={value:?}: unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn malformed_payloads_are_refused() {
    let h = harness().await;
    let p = payload(KEY_ID, SECRET, REGION, T0_MS);
    let e = h
        .iam(&with_field(&p, "version", "2019_01_01"), T0_MS)
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::UnsupportedVersion(_)), "{e}");
    let mut missing: serde_json::Value = serde_json::from_slice(&p).unwrap();
    missing.as_object_mut().unwrap().remove("x-amz-signature");
    let e = h
        .iam(&serde_json::to_vec(&missing).unwrap(), T0_MS)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::Malformed {
                mechanism: "AWS_MSK_IAM",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("x-amz-signature"), "{e}");
    for garbage in [
        &b""[..],
        b"{",
        b"[]",
        b"\xff\xfe",
        b"null",
        b"{\"version\":2020}",
    ] {
        assert!(matches!(
            h.iam(garbage, T0_MS).await,
            Err(AuthError::Malformed { .. })
        ));
    }
    for garbage in [
        &b""[..],
        b"n,,",
        b"n,,\x01\x01",
        b"n,,\x01auth=Basic abc\x01\x01",
        b"n,,\x01auth=Bearer !!!\x01\x01",
        b"p=tls-unique,,\x01auth=Bearer abc\x01\x01",
        b"n,,\x01auth=Bearer aHR0cDovL3g\x01\x01",
    ] {
        let r = h
            .auth
            .authenticate(Mechanism::OAuthBearer, garbage, T0_MS)
            .await;
        assert!(
            matches!(
                r,
                Err(AuthError::Malformed {
                    mechanism: "OAUTHBEARER",
                    ..
                })
            ),
            "{garbage:?}: {r:?}"
        );
    }
    let url = String::from_utf8(URL_SAFE_NO_PAD.decode(PYTHON_TOKEN).unwrap()).unwrap();
    let no_date = url.replace("&X-Amz-Date=20261126T010203Z", "");
    let e = h
        .bearer(&URL_SAFE_NO_PAD.encode(no_date), T0_MS)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("lacks X-Amz-Date"), "{e}");
    let big = vec![b'{'; MAX_AUTH_BYTES + 1];
    for m in [
        Mechanism::AwsMskIam,
        Mechanism::OAuthBearer,
        Mechanism::Plain,
    ] {
        let r = h.auth.authenticate(m, &big, T0_MS).await;
        assert!(matches!(r, Err(AuthError::PayloadTooLarge { .. })), "{r:?}");
    }
}

#[tokio::test]
async fn plain_checks_the_secret() {
    let h = harness().await;
    let id = plain(&h.auth, KEY_ID, SECRET, T0_MS).await.unwrap();
    assert_eq!(id, h.expected(KEY_ID, None));
    assert_eq!(id.session_lifetime_ms(T0_MS), 0);
    assert!(id.same_principal(&h.expected(KEY_ID, Some(1))));
    let e = plain(&h.auth, KEY_ID, &format!("{SECRET}x"), T0_MS)
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::WrongSecret(_)), "{e}");
    assert!(!e.to_string().contains(SECRET));
    assert!(matches!(
        plain(&h.auth, KEY_ID, &SECRET[..10], T0_MS).await,
        Err(AuthError::WrongSecret(_))
    ));
    let e = plain(&h.auth, INACTIVE_KEY, SECRET, T0_MS)
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::InactiveAccessKey(_)), "{e}");
    let e = plain(&h.auth, "AKIANOPE", SECRET, T0_MS).await.unwrap_err();
    assert!(matches!(e, AuthError::UnknownAccessKey(_)), "{e}");
}

/// The server-first message a fresh SCRAM exchange under `auth` sends for unknown `user`.
fn unknown_user_server_first(auth: &Authenticator, user: &str) -> String {
    let mut server = crate::scram::ScramServer::new(
        &[3; crate::scram::SERVER_NONCE_LEN],
        auth.scram_mock_secret(),
    );
    let looked_up = server
        .client_first(format!("n,,n={user},r=clientnonce").as_bytes())
        .unwrap()
        .to_owned();
    assert_eq!(looked_up, user);
    String::from_utf8(server.server_first(None).unwrap()).unwrap()
}

/// The `s=` (salt) and `i=` (iterations) fields of a server-first message.
fn salt_and_iterations(server_first: &str) -> String {
    server_first
        .split(',')
        .filter(|f| f.starts_with("s=") || f.starts_with("i="))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn unknown_scram_users_get_the_same_mock_salt_on_every_gateway_of_a_deployment() {
    let h = harness().await;
    let config = h.auth.config().clone();
    let gateway = |key: [u8; 32]| {
        Authenticator::new(h.store.clone(), SecretSealer::from_key(key), config.clone())
    };
    // Two gateways of one deployment share the (KMS-unwrapped) sealing key.
    let (a, b, other_deployment) = (gateway([5; 32]), gateway([5; 32]), gateway([6; 32]));
    let salt = salt_and_iterations(&unknown_user_server_first(&a, "ghost"));
    assert!(salt.contains("s=") && salt.contains("i=4096"), "{salt}");
    assert_eq!(
        salt,
        salt_and_iterations(&unknown_user_server_first(&b, "ghost")),
        "the mock salt must not tell gateways (and so unknown users) apart"
    );
    assert_ne!(
        salt,
        salt_and_iterations(&unknown_user_server_first(&a, "ghost2")),
        "each unknown user has its own salt, like real users"
    );
    assert_ne!(
        salt,
        salt_and_iterations(&unknown_user_server_first(&other_deployment, "ghost")),
        "another sealing key gives other salts"
    );
}
