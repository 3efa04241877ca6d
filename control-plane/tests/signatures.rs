//! SigV4 over real HTTP: accepted signatures and every refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use common::*;
use fjord_metadata::KeyStatus;

const LIST: &str = "/api/v2/clusters";

#[tokio::test]
async fn a_signed_request_is_accepted_with_a_request_id() {
    let h = Harness::new().await;
    let r = h.call(&h.admin, "GET", LIST, None).await;
    assert_eq!(r.expect_ok()["clusterInfoList"], serde_json::json!([]));
    let id = r.headers.get("x-amzn-RequestId").expect("request id");
    assert_eq!(id.len(), 36);
}

#[tokio::test]
async fn bad_signatures_and_unknown_keys_are_refused() {
    let h = Harness::new().await;
    let wrong_secret = Creds {
        secret: "not the secret".into(),
        ..h.admin.clone()
    };
    let m = h
        .call(&wrong_secret, "GET", LIST, None)
        .await
        .expect_error(401, "UnauthorizedException");
    assert!(m.contains("signature"), "{m}");

    let unknown = Creds {
        id: "AKIAUNKNOWN000000000".into(),
        ..h.admin.clone()
    };
    h.call(&unknown, "GET", LIST, None)
        .await
        .expect_error(401, "UnauthorizedException");

    // Unsigned.
    let req = http::Request::get(format!("http://{}{LIST}", h.addr))
        .body(http_body_util::Full::new(hyper::body::Bytes::new()))
        .unwrap();
    let m = h.send(req).await.expect_error(401, "UnauthorizedException");
    assert!(m.contains("Authorization"), "{m}");
}

#[tokio::test]
async fn tampered_bodies_and_paths_are_refused() {
    let h = Harness::new().await;
    let signed_body = br#"{"clusterName":"a","serverless":{"vpcConfigs":[]}}"#.to_vec();
    let mut req = h.signed(
        &h.admin,
        "POST",
        LIST,
        &signed_body,
        "kafka",
        REGION,
        h.now(),
    );
    *req.body_mut() = http_body_util::Full::new(hyper::body::Bytes::from_static(
        br#"{"clusterName":"b","serverless":{"vpcConfigs":[]}}"#,
    ));
    h.send(req).await.expect_error(401, "UnauthorizedException");

    // A signature for one path replayed on another.
    let mut req = h.signed(&h.admin, "GET", LIST, b"", "kafka", REGION, h.now());
    *req.uri_mut() = format!("http://{}/v1/access-keys", h.addr).parse().unwrap();
    h.send(req).await.expect_error(401, "UnauthorizedException");

    // A signature with a query replayed without it.
    let mut req = h.signed(
        &h.admin,
        "GET",
        &format!("{LIST}?maxResults=1"),
        b"",
        "kafka",
        REGION,
        h.now(),
    );
    *req.uri_mut() = format!("http://{}{LIST}?maxResults=2", h.addr)
        .parse()
        .unwrap();
    h.send(req).await.expect_error(401, "UnauthorizedException");
}

#[tokio::test]
async fn clock_skew_region_and_service_are_checked() {
    let h = Harness::new().await;
    let now = h.now();
    for skew in [-16 * 60_000, 16 * 60_000] {
        let m = h
            .call_raw(&h.admin, "GET", LIST, vec![], "kafka", REGION, now + skew)
            .await
            .expect_error(401, "UnauthorizedException");
        assert!(m.contains("expired or not yet valid"), "{m}");
    }
    h.call_raw(
        &h.admin,
        "GET",
        LIST,
        vec![],
        "kafka",
        REGION,
        now - 14 * 60_000,
    )
    .await
    .expect_ok();
    let m = h
        .call_raw(&h.admin, "GET", LIST, vec![], "kafka", "eu-west-1", now)
        .await
        .expect_error(401, "UnauthorizedException");
    assert!(m.contains("region"), "{m}");
    let m = h
        .call_raw(&h.admin, "GET", LIST, vec![], "kafka-cluster", REGION, now)
        .await
        .expect_error(401, "UnauthorizedException");
    assert!(m.contains("service"), "{m}");
    // An MSK signature does not work for STS either.
    let r = h
        .call_raw(
            &h.admin,
            "POST",
            "/",
            b"Action=GetCallerIdentity&Version=2011-06-15".to_vec(),
            "kafka",
            REGION,
            now,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        xml_field(&r.text(), "Code").as_deref(),
        Some("SignatureDoesNotMatch")
    );
}

#[tokio::test]
async fn inactive_and_deleted_keys_stop_working_at_once() {
    let h = Harness::new().await;
    let user = h
        .principal_with_key(&h.account, "user/u", &[("all", ALLOW_ALL)])
        .await;
    h.call(&user, "GET", LIST, None).await.expect_ok();
    h.store
        .set_access_key_status(&user.id, KeyStatus::Inactive)
        .await
        .unwrap();
    let m = h
        .call(&user, "GET", LIST, None)
        .await
        .expect_error(401, "UnauthorizedException");
    assert!(m.contains("inactive"), "{m}");
    h.store
        .set_access_key_status(&user.id, KeyStatus::Active)
        .await
        .unwrap();
    h.call(&user, "GET", LIST, None).await.expect_ok();
    h.store.delete_access_key(&user.id).await.unwrap();
    h.call(&user, "GET", LIST, None)
        .await
        .expect_error(401, "UnauthorizedException");
}

#[tokio::test]
async fn a_deleted_principal_cannot_use_its_keys() {
    let h = Harness::new().await;
    let user = h
        .principal_with_key(&h.account, "user/gone", &[("all", ALLOW_ALL)])
        .await;
    h.store
        .delete_principal(&h.account, "user/gone")
        .await
        .unwrap();
    let m = h
        .call(&user, "GET", LIST, None)
        .await
        .expect_error(401, "UnauthorizedException");
    assert!(m.contains("principal"), "{m}");
}

#[tokio::test]
async fn temporary_keys_need_their_own_unexpired_token() {
    let h = Harness::new().await;
    h.principal_with_key(&h.account, "role/r", &[("all", ALLOW_ALL)])
        .await;
    let temp = h
        .key_for(&h.account, "role/r", Some(h.now() + 3_600_000))
        .await;
    h.call(&temp, "GET", LIST, None).await.expect_ok();

    let no_token = Creds {
        token: None,
        ..temp.clone()
    };
    let m = h
        .call(&no_token, "GET", LIST, None)
        .await
        .expect_error(401, "UnauthorizedException");
    assert!(m.contains("session token"), "{m}");

    // Another key's token (valid for that key) is forged for this one.
    let other = h
        .key_for(&h.account, "role/r", Some(h.now() + 3_600_000))
        .await;
    let forged = Creds {
        token: other.token.clone(),
        ..temp.clone()
    };
    h.call(&forged, "GET", LIST, None)
        .await
        .expect_error(401, "UnauthorizedException");
    // A long-lived key sent with a token.
    let with_token = Creds {
        token: temp.token.clone(),
        ..h.admin.clone()
    };
    h.call(&with_token, "GET", LIST, None)
        .await
        .expect_error(401, "UnauthorizedException");

    // After expiry (the clock moves; the signature is made at the new time too).
    h.advance(3_600_000);
    let m = h
        .call(&temp, "GET", LIST, None)
        .await
        .expect_error(401, "UnauthorizedException");
    assert!(m.contains("expired"), "{m}");
}

#[tokio::test]
async fn oversized_bodies_and_unknown_routes() {
    let h = Harness::new().await;
    let big = vec![b' '; 1024 * 1024 + 1];
    let m = h
        .call_raw(&h.admin, "POST", LIST, big, "kafka", REGION, h.now())
        .await
        .expect_error(400, "BadRequestException");
    assert!(m.contains("larger than"), "{m}");
    h.call(&h.admin, "GET", "/v1/nothing-here", None)
        .await
        .expect_error(404, "NotFoundException");
    h.call(&h.admin, "PATCH", LIST, None)
        .await
        .expect_error(404, "NotFoundException");
}

/// Every route of the table is served (an unsigned request reaches the authentication layer,
/// not the "no operation" fallback), and the OpenAPI document is public.
#[tokio::test]
async fn every_route_is_served_and_documented() {
    let h = Harness::new().await;
    let arn = "arn%3Aaws%3Akafka%3Aus-east-1%3A111122223333%3Acluster%2Fc%2F0b6f1c39-3e0c-4a34-9d1e-7f1b2a3c4d5e";
    for spec in fjord_control_plane::routes::route_specs() {
        let path = spec
            .path
            .replace("{clusterArn}", arn)
            .replace("{topicName}", "t")
            .replace("{kind}", "user")
            .replace("{name}", "n")
            .replace("{policyName}", "p")
            .replace("{accessKeyId}", "AKIAX");
        let req = http::Request::builder()
            .method(spec.method.clone())
            .uri(format!("http://{}{path}", h.addr))
            .body(http_body_util::Full::new(hyper::body::Bytes::new()))
            .unwrap();
        let r = h.send(req).await;
        match spec.service {
            Some(_) if spec.path == "/" => {
                assert_eq!(r.status, 400, "{} {}: {}", spec.method, path, r.text());
                assert!(r.text().contains("<ErrorResponse"), "{}", r.text());
            }
            Some(_) => {
                r.expect_error(401, "UnauthorizedException");
            }
            None => {
                let doc = r.expect_ok();
                assert!(doc["paths"][spec.path].is_object());
            }
        }
    }
}
