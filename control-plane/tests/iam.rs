//! Principals, policies, access keys and STS over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use common::*;
use fjord_tenancy::scram::ScramCredential;
use serde_json::json;

const READ_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kafka:Describe*","kafka:List*","kafka:GetBootstrapBrokers"],"Resource":"*"}]}"#;

/// Creates `user/<name>` with a policy and a key through the API; returns the key.
async fn api_user(h: &Harness, name: &str, policy: &str) -> Creds {
    h.call(
        &h.admin,
        "POST",
        "/v1/principals",
        Some(json!({ "name": format!("user/{name}") })),
    )
    .await
    .expect_ok();
    h.call(
        &h.admin,
        "PUT",
        &format!("/v1/principals/user/{name}/policies/main"),
        Some(json!({ "policyDocument": policy })),
    )
    .await
    .expect_ok();
    let k = h
        .call(
            &h.admin,
            "POST",
            &format!("/v1/principals/user/{name}/access-keys"),
            None,
        )
        .await
        .expect_ok();
    Creds {
        id: k["accessKey"]["accessKeyId"].as_str().unwrap().into(),
        secret: k["accessKey"]["secretAccessKey"].as_str().unwrap().into(),
        token: None,
    }
}

#[tokio::test]
async fn read_only_principals_cannot_create_and_explicit_deny_wins() {
    let h = Harness::new().await;
    let arn = h.create_cluster(&h.admin, "c").await;
    let reader = api_user(&h, "reader", READ_ONLY).await;
    assert!(reader.id.starts_with("AKIA") && reader.id.len() == 20);
    h.call(&reader, "GET", "/api/v2/clusters", None)
        .await
        .expect_ok();
    h.call(
        &reader,
        "GET",
        &format!("/api/v2/clusters/{}", enc(&arn)),
        None,
    )
    .await
    .expect_ok();
    let m = h
        .call(
            &reader,
            "POST",
            "/api/v2/clusters",
            Some(json!({"clusterName": "x", "serverless": {"vpcConfigs": []}})),
        )
        .await
        .expect_error(403, "ForbiddenException");
    assert!(m.contains("kafka:CreateClusterV2"), "{m}");
    assert!(m.contains("user/reader"), "{m}");

    // Allow everything but deny deleting clusters.
    let deny = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "NoDelete", "Effect": "Deny", "Action": "kafka:DeleteCluster", "Resource": "*"}]})
    .to_string();
    let ops = api_user(&h, "ops", &deny).await;
    h.call(&ops, "GET", "/v1/principals", None)
        .await
        .expect_ok();
    let m = h
        .call(&ops, "DELETE", &format!("/v1/clusters/{}", enc(&arn)), None)
        .await
        .expect_error(403, "ForbiddenException");
    assert!(m.contains("explicit deny") && m.contains("NoDelete"), "{m}");

    // Policy changes apply to the next request.
    h.call(
        &h.admin,
        "DELETE",
        "/v1/principals/user/ops/policies/main",
        None,
    )
    .await
    .expect_ok();
    h.call(&ops, "GET", "/v1/principals", None)
        .await
        .expect_error(403, "ForbiddenException");
}

#[tokio::test]
async fn principals_policies_and_scram() {
    let h = Harness::new().await;
    let p = h
        .call(
            &h.admin,
            "POST",
            "/v1/principals",
            Some(json!({"name": "user/alice"})),
        )
        .await
        .expect_ok();
    assert_eq!(
        p["arn"],
        json!(format!("arn:aws:iam::{}:user/alice", h.account))
    );
    h.call(
        &h.admin,
        "POST",
        "/v1/principals",
        Some(json!({"name": "user/alice"})),
    )
    .await
    .expect_error(409, "ConflictException");
    for bad in ["group/x", "user/", "user/a b", "alice"] {
        h.call(
            &h.admin,
            "POST",
            "/v1/principals",
            Some(json!({ "name": bad })),
        )
        .await
        .expect_error(400, "BadRequestException");
    }
    h.call(
        &h.admin,
        "POST",
        "/v1/principals",
        Some(json!({"name": "role/reader"})),
    )
    .await
    .expect_ok();

    let m = h
        .call(
            &h.admin,
            "PUT",
            "/v1/principals/user/alice/policies/p",
            Some(
                json!({"policyDocument": {"Statement": [{"Effect": "Allow", "Action": "kafka:*",
                "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}}),
            ),
        )
        .await
        .expect_error(400, "BadRequestException");
    assert!(m.contains("Condition"), "{m}");
    h.call(
        &h.admin,
        "PUT",
        "/v1/principals/user/alice/policies/p",
        Some(json!({"policyDocument": serde_json::from_str::<serde_json::Value>(READ_ONLY).unwrap()})),
    )
    .await
    .expect_ok();
    let got = h
        .call(&h.admin, "GET", "/v1/principals/user/alice", None)
        .await
        .expect_ok();
    assert_eq!(got["policyNames"], json!(["p"]));
    assert!(got["policies"]["p"]
        .as_str()
        .unwrap()
        .contains("kafka:Describe*"));
    h.call(&h.admin, "GET", "/v1/principals/user/nobody", None)
        .await
        .expect_error(404, "NotFoundException");
    h.call(
        &h.admin,
        "DELETE",
        "/v1/principals/user/alice/policies/none",
        None,
    )
    .await
    .expect_error(404, "NotFoundException");

    let list = h
        .call(&h.admin, "GET", "/v1/principals?kind=role", None)
        .await
        .expect_ok();
    assert_eq!(list["principals"].as_array().unwrap().len(), 1);
    assert_eq!(list["principals"][0]["name"], json!("role/reader"));

    // SCRAM: a salted credential is stored, never the password.
    let s = h
        .call(
            &h.admin,
            "PUT",
            "/v1/principals/user/alice/scram",
            Some(json!({"password": "alice-secret"})),
        )
        .await
        .expect_ok();
    assert_eq!(s["scram"], json!(true));
    let stored = h
        .store
        .get_principal(&h.account, "user/alice")
        .await
        .unwrap()
        .unwrap();
    let encoded = stored.scram.unwrap();
    assert!(!encoded.contains("alice-secret"));
    let cred: ScramCredential = serde_json::from_str(&encoded).unwrap();
    let again = ScramCredential::derive(b"alice-secret", &cred.salt, cred.iterations).unwrap();
    assert_eq!(again, cred);
    h.call(
        &h.admin,
        "PUT",
        "/v1/principals/role/reader/scram",
        Some(json!({"password": "x"})),
    )
    .await
    .expect_error(400, "BadRequestException");
    h.call(&h.admin, "DELETE", "/v1/principals/user/alice/scram", None)
        .await
        .expect_ok();
    h.call(&h.admin, "DELETE", "/v1/principals/user/alice/scram", None)
        .await
        .expect_error(404, "NotFoundException");
}

#[tokio::test]
async fn access_keys_lifecycle() {
    let h = Harness::new().await;
    let bob = api_user(&h, "bob", ALLOW_ALL).await;
    h.call(&bob, "GET", "/api/v2/clusters", None)
        .await
        .expect_ok();
    let second = h
        .call(
            &h.admin,
            "POST",
            "/v1/principals/user/bob/access-keys",
            None,
        )
        .await
        .expect_ok();
    let second_id = second["accessKey"]["accessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    h.call(
        &h.admin,
        "POST",
        "/v1/principals/user/bob/access-keys",
        None,
    )
    .await
    .expect_error(409, "ConflictException");
    h.call(
        &h.admin,
        "POST",
        "/v1/principals/role/none/access-keys",
        None,
    )
    .await
    .expect_error(400, "BadRequestException");

    let list = h
        .call(&h.admin, "GET", "/v1/access-keys?principal=user/bob", None)
        .await
        .expect_ok();
    let keys = list["accessKeys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k["secretAccessKey"].is_null()));
    assert!(!list.to_string().contains(&bob.secret));

    let key_path = format!("/v1/access-keys/{}", bob.id);
    h.call(
        &h.admin,
        "PUT",
        &key_path,
        Some(json!({"status": "Inactive"})),
    )
    .await
    .expect_ok();
    h.call(&bob, "GET", "/api/v2/clusters", None)
        .await
        .expect_error(401, "UnauthorizedException");
    h.call(
        &h.admin,
        "PUT",
        &key_path,
        Some(json!({"status": "Active"})),
    )
    .await
    .expect_ok();
    h.call(&bob, "GET", "/api/v2/clusters", None)
        .await
        .expect_ok();
    h.call(
        &h.admin,
        "PUT",
        &key_path,
        Some(json!({"status": "Paused"})),
    )
    .await
    .expect_error(400, "BadRequestException");
    h.call(&h.admin, "DELETE", &key_path, None)
        .await
        .expect_ok();
    h.call(&bob, "GET", "/api/v2/clusters", None)
        .await
        .expect_error(401, "UnauthorizedException");
    h.call(&h.admin, "DELETE", &key_path, None)
        .await
        .expect_error(404, "NotFoundException");

    // Another account's key is not ours to touch.
    let other = h
        .principal_with_key("444455556666", "user/x", &[("all", ALLOW_ALL)])
        .await;
    h.call(
        &h.admin,
        "DELETE",
        &format!("/v1/access-keys/{}", other.id),
        None,
    )
    .await
    .expect_error(404, "NotFoundException");

    // Deleting the principal deletes its remaining key.
    let d = h
        .call(&h.admin, "DELETE", "/v1/principals/user/bob", None)
        .await
        .expect_ok();
    assert_eq!(d["deletedAccessKeys"], json!(1));
    assert!(h.store.get_access_key(&second_id).await.unwrap().is_none());
}

fn assume(role: &str, session: &str, duration: Option<i64>) -> String {
    let mut form = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={session}",
        enc(role)
    );
    if let Some(d) = duration {
        form.push_str(&format!("&DurationSeconds={d}"));
    }
    form
}

#[tokio::test]
async fn assume_role_gives_working_temporary_credentials() {
    let h = Harness::new().await;
    let role_arn = format!("arn:aws:iam::{}:role/reader", h.account);
    h.call(
        &h.admin,
        "POST",
        "/v1/principals",
        Some(json!({"name": "role/reader"})),
    )
    .await
    .expect_ok();
    h.call(
        &h.admin,
        "PUT",
        "/v1/principals/role/reader/policies/ro",
        Some(json!({ "policyDocument": READ_ONLY })),
    )
    .await
    .expect_ok();

    let r = h.sts(&h.admin, &assume(&role_arn, "s1", Some(900))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let xml = r.text();
    let creds = Creds {
        id: xml_field(&xml, "AccessKeyId").unwrap(),
        secret: xml_field(&xml, "SecretAccessKey").unwrap(),
        token: xml_field(&xml, "SessionToken"),
    };
    assert!(creds.id.starts_with("ASIA"), "{xml}");
    assert!(xml_field(&xml, "Expiration").unwrap().ends_with('Z'));
    assert_eq!(
        xml_field(&xml, "Arn").unwrap(),
        format!("arn:aws:sts::{}:assumed-role/reader/s1", h.account)
    );
    let stored = h.store.get_access_key(&creds.id).await.unwrap().unwrap();
    assert_eq!(stored.principal, "role/reader");
    assert_eq!(stored.expires_ms, Some(h.now() + 900_000));

    // The role's policy applies.
    h.call(&creds, "GET", "/api/v2/clusters", None)
        .await
        .expect_ok();
    h.call(
        &creds,
        "POST",
        "/api/v2/clusters",
        Some(json!({"clusterName": "x", "serverless": {"vpcConfigs": []}})),
    )
    .await
    .expect_error(403, "ForbiddenException");
    let who = h
        .sts(&creds, "Action=GetCallerIdentity&Version=2011-06-15")
        .await;
    assert_eq!(
        xml_field(&who.text(), "Arn").unwrap(),
        format!("arn:aws:iam::{}:role/reader", h.account)
    );
    // Without the token, and after expiry.
    let bare = Creds {
        token: None,
        ..creds.clone()
    };
    h.call(&bare, "GET", "/api/v2/clusters", None)
        .await
        .expect_error(401, "UnauthorizedException");
    h.advance(900_000);
    h.call(&creds, "GET", "/api/v2/clusters", None)
        .await
        .expect_error(401, "UnauthorizedException");
    // The next AssumeRole removes the expired key.
    let r = h.sts(&h.admin, &assume(&role_arn, "s2", None)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(h.store.get_access_key(&creds.id).await.unwrap().is_none());
}

#[tokio::test]
async fn assume_role_refusals() {
    let h = Harness::new().await;
    let role_arn = format!("arn:aws:iam::{}:role/r", h.account);
    h.principal_with_key(&h.account, "role/r", &[("all", ALLOW_ALL)])
        .await;
    let code = |r: &Response| xml_field(&r.text(), "Code").unwrap_or_default();

    for d in [899, 43_201] {
        let r = h.sts(&h.admin, &assume(&role_arn, "sess", Some(d))).await;
        assert_eq!(
            (r.status, code(&r).as_str()),
            (400, "ValidationError"),
            "{d}"
        );
    }
    let r = h
        .sts(
            &h.admin,
            &assume(
                &format!("arn:aws:iam::{}:role/none", h.account),
                "sess",
                None,
            ),
        )
        .await;
    assert_eq!((r.status, code(&r).as_str()), (404, "NoSuchEntity"));
    let r = h
        .sts(
            &h.admin,
            &assume("arn:aws:iam::444455556666:role/r", "sess", None),
        )
        .await;
    assert_eq!((r.status, code(&r).as_str()), (403, "AccessDenied"));
    let r = h
        .sts(&h.admin, "Action=AssumeRole&Version=2011-06-15")
        .await;
    assert_eq!((r.status, code(&r).as_str()), (400, "ValidationError"));
    let r = h.sts(&h.admin, &assume(&role_arn, "s", None)).await;
    assert_eq!(
        (r.status, code(&r).as_str()),
        (400, "ValidationError"),
        "short session name"
    );
    let r = h.sts(&h.admin, &assume(&role_arn, "sess", None)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = h
        .sts(
            &h.admin,
            "Action=DecodeAuthorizationMessage&Version=2011-06-15",
        )
        .await;
    assert_eq!(r.status, 400);

    // A user whose policies do not allow sts:AssumeRole.
    let reader = h
        .principal_with_key(&h.account, "user/reader", &[("ro", READ_ONLY)])
        .await;
    let r = h.sts(&reader, &assume(&role_arn, "sess", None)).await;
    assert_eq!((r.status, code(&r).as_str()), (403, "AccessDenied"));
    assert!(r.text().contains("sts:AssumeRole"));

    // Bad signatures get STS's codes.
    let wrong = Creds {
        secret: "nope".into(),
        ..h.admin.clone()
    };
    let r = h.sts(&wrong, &assume(&role_arn, "sess", None)).await;
    assert_eq!(
        (r.status, code(&r).as_str()),
        (403, "SignatureDoesNotMatch")
    );

    // Role chaining is limited to one hour.
    let r = h
        .sts(&h.admin, &assume(&role_arn, "sess", Some(7200)))
        .await;
    assert_eq!(r.status, 200);
    let temp = Creds {
        id: xml_field(&r.text(), "AccessKeyId").unwrap(),
        secret: xml_field(&r.text(), "SecretAccessKey").unwrap(),
        token: xml_field(&r.text(), "SessionToken"),
    };
    let r = h.sts(&temp, &assume(&role_arn, "sess", Some(7200))).await;
    assert_eq!((r.status, code(&r).as_str()), (400, "ValidationError"));
    let r = h.sts(&temp, &assume(&role_arn, "sess", Some(3600))).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn the_admin_principal_is_bootstrapped_once() {
    use fjord_control_plane::principals::{ensure_admin_principal, ALLOW_ALL_POLICY_NAME};
    let h = Harness::new().await;
    let p = ensure_admin_principal(h.store.as_ref(), &h.account, "user/dev", 1)
        .await
        .unwrap();
    assert!(p.policies.contains_key(ALLOW_ALL_POLICY_NAME));
    let key = h.key_for(&h.account, "user/dev", None).await;
    h.call(&key, "GET", "/v1/principals", None)
        .await
        .expect_ok();
    // An operator's restriction is kept on the next start.
    h.call(
        &h.admin,
        "DELETE",
        "/v1/principals/user/dev/policies/allow-all",
        None,
    )
    .await
    .expect_ok();
    h.call(
        &h.admin,
        "PUT",
        "/v1/principals/user/dev/policies/ro",
        Some(json!({ "policyDocument": READ_ONLY })),
    )
    .await
    .expect_ok();
    let again = ensure_admin_principal(h.store.as_ref(), &h.account, "user/dev", 2)
        .await
        .unwrap();
    assert_eq!(again.policies.keys().collect::<Vec<_>>(), ["ro"]);
}
