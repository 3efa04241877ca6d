//! Role trust policies and STS AssumeRole's two-sided decision, over real HTTP with
//! botocore-shaped STS requests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use common::*;
use fjord_metadata::Account;
use serde_json::{json, Value};

const READ_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kafka:Describe*","kafka:List*"],"Resource":"*"}]}"#;
const MAY_ASSUME: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;
const DENY_ASSUME: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoRoles","Effect":"Deny","Action":"sts:AssumeRole","Resource":"*"}]}"#;
const OTHER_ACCOUNT: &str = "444455556666";

/// The form botocore's query serializer sends for `sts.assume_role(RoleArn=…,
/// RoleSessionName=…)`: Action and Version first, then the members in model order.
fn assume_form(role_arn: &str, session: &str) -> String {
    format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={session}",
        enc(role_arn)
    )
}

/// What botocore's query error parser reads: `ErrorResponse/Error/{Type,Code,Message}` and
/// `ErrorResponse/RequestId`; asserts the shape and returns (status, code, message).
fn sts_error(r: &Response) -> (u16, String, String) {
    let xml = r.text();
    assert!(
        xml.starts_with("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"),
        "{xml}"
    );
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/xml")
    );
    let error = xml_field(&xml, "Error").expect("Error element");
    assert_eq!(
        xml_field(&error, "Type").as_deref(),
        Some("Sender"),
        "{xml}"
    );
    assert!(!xml_field(&xml, "RequestId").unwrap_or_default().is_empty());
    (
        r.status,
        xml_field(&error, "Code").unwrap_or_default(),
        xml_field(&error, "Message").unwrap_or_default(),
    )
}

fn session_creds(r: &Response) -> Creds {
    assert_eq!(r.status, 200, "{}", r.text());
    let xml = r.text();
    Creds {
        id: xml_field(&xml, "AccessKeyId").unwrap(),
        secret: xml_field(&xml, "SecretAccessKey").unwrap(),
        token: xml_field(&xml, "SessionToken"),
    }
}

async fn create_role(h: &Harness, name: &str, trust: Option<Value>) -> common::Response {
    let mut body = json!({ "name": format!("role/{name}") });
    if let Some(t) = trust {
        body["assumeRolePolicyDocument"] = t;
    }
    h.call(&h.admin, "POST", "/v1/principals", Some(body)).await
}

fn trust_in(principals: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "sts:AssumeRole"}]})
}

#[tokio::test]
async fn the_trust_policy_and_the_callers_policies_decide_together() {
    let h = Harness::new().await;
    let a = &h.account;
    let alice_arn = format!("arn:aws:iam::{a}:user/alice");
    let role_arn = format!("arn:aws:iam::{a}:role/deployer");
    // alice's own policies do not mention sts:AssumeRole; bob's allow it on every role.
    let alice = h
        .principal_with_key(a, "user/alice", &[("ro", READ_ONLY)])
        .await;
    let bob = h
        .principal_with_key(a, "user/bob", &[("assume", MAY_ASSUME)])
        .await;
    let carol = h
        .principal_with_key(
            a,
            "user/carol",
            &[("assume", MAY_ASSUME), ("deny", DENY_ASSUME)],
        )
        .await;

    // A trust policy naming alice: enough on its own in the same account.
    let created = create_role(&h, "deployer", Some(trust_in(json!([alice_arn]))))
        .await
        .expect_ok();
    assert!(created["assumeRolePolicyDocument"]
        .as_str()
        .unwrap()
        .contains(&alice_arn));
    let creds = session_creds(&h.sts(&alice, &assume_form(&role_arn, "s1")).await);
    let stored = h.store.get_access_key(&creds.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.account_id.as_str(), stored.principal.as_str()),
        (a.as_str(), "role/deployer")
    );
    // bob's policies allow it, but the role does not trust him.
    let (status, code, message) = sts_error(&h.sts(&bob, &assume_form(&role_arn, "s1")).await);
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
    assert!(
        message.contains("user/bob") && message.contains("trust policy"),
        "{message}"
    );

    // Trusting the account delegates to the callers' policies: bob now, not alice.
    let account_trust = trust_in(json!(a));
    h.call(
        &h.admin,
        "PUT",
        "/v1/principals/role/deployer/trust-policy",
        Some(json!({ "policyDocument": account_trust })),
    )
    .await
    .expect_ok();
    session_creds(&h.sts(&bob, &assume_form(&role_arn, "s2")).await);
    let (status, code, message) = sts_error(&h.sts(&alice, &assume_form(&role_arn, "s2")).await);
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
    assert!(message.contains("no identity-based policy"), "{message}");
    // An explicit Deny in the caller's policies wins over the trust.
    let (_, code, message) = sts_error(&h.sts(&carol, &assume_form(&role_arn, "s2")).await);
    assert_eq!(code, "AccessDenied");
    assert!(message.contains("explicit deny"), "{message}");

    // A Deny in the trust policy wins over its Allow and over the caller's policies.
    let deny_bob = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{a}:root")}, "Action": "sts:AssumeRole"},
        {"Sid": "NotBob", "Effect": "Deny", "Principal": {"AWS": format!("arn:aws:iam::{a}:user/bob")}, "Action": "sts:*"}]});
    h.call(
        &h.admin,
        "PUT",
        "/v1/principals/role/deployer/trust-policy",
        Some(json!({ "policyDocument": deny_bob.to_string() })),
    )
    .await
    .expect_ok();
    let (_, code, message) = sts_error(&h.sts(&bob, &assume_form(&role_arn, "s3")).await);
    assert_eq!(code, "AccessDenied");
    assert!(message.contains("NotBob"), "{message}");
    let got = h
        .call(&h.admin, "GET", "/v1/principals/role/deployer", None)
        .await
        .expect_ok();
    assert!(got["assumeRolePolicyDocument"]
        .as_str()
        .unwrap()
        .contains("NotBob"));
    // Trust policies are not identity policies: the role's own policies are untouched.
    assert_eq!(got["policyNames"], json!([]));
}

#[tokio::test]
async fn trust_policies_are_validated_and_go_with_their_role() {
    let h = Harness::new().await;
    let a = h.account.clone();
    for (bad, why) in [
        (trust_in(json!("*")), "`*`"),
        (
            json!({"Statement": {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}}),
            "Service",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": a}, "Action": "sts:AssumeRole", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}}),
            "Condition",
        ),
        (json!(42), "trust policy"),
    ] {
        let m = create_role(&h, "r", Some(bad))
            .await
            .expect_error(400, "BadRequestException");
        assert!(m.contains(why), "{m}");
    }
    // Nothing was created by the refused requests.
    assert!(h.store.get_principal(&a, "role/r").await.unwrap().is_none());
    // Users have no trust policy.
    let m = h
        .call(
            &h.admin,
            "POST",
            "/v1/principals",
            Some(json!({"name": "user/u", "assumeRolePolicyDocument": trust_in(json!(a))})),
        )
        .await
        .expect_error(400, "BadRequestException");
    assert!(m.contains("roles only"), "{m}");
    h.principal_with_key(&a, "user/v", &[]).await;
    h.call(
        &h.admin,
        "PUT",
        "/v1/principals/user/v/trust-policy",
        Some(json!({ "policyDocument": trust_in(json!(a)) })),
    )
    .await
    .expect_error(400, "BadRequestException");
    h.call(
        &h.admin,
        "PUT",
        "/v1/principals/role/missing/trust-policy",
        Some(json!({ "policyDocument": trust_in(json!(a)) })),
    )
    .await
    .expect_error(404, "NotFoundException");

    // A role given no trust policy trusts its own account.
    let role = create_role(&h, "r", None).await.expect_ok();
    let default = role["assumeRolePolicyDocument"].as_str().unwrap();
    assert!(
        default.contains(&format!("arn:aws:iam::{a}:root")),
        "{default}"
    );
    // Updating it needs iam:UpdateAssumeRolePolicy.
    let reader = h
        .principal_with_key(&a, "user/reader", &[("ro", READ_ONLY)])
        .await;
    let m = h
        .call(
            &reader,
            "PUT",
            "/v1/principals/role/r/trust-policy",
            Some(json!({ "policyDocument": trust_in(json!(a)) })),
        )
        .await
        .expect_error(403, "ForbiddenException");
    assert!(m.contains("iam:UpdateAssumeRolePolicy"), "{m}");

    // Deleting the role deletes its trust policy: a new role of the same name starts afresh.
    h.call(
        &h.admin,
        "PUT",
        "/v1/principals/role/r/trust-policy",
        Some(json!({ "policyDocument": trust_in(json!(format!("arn:aws:iam::{a}:user/reader"))) })),
    )
    .await
    .expect_ok();
    h.call(&h.admin, "DELETE", "/v1/principals/role/r", None)
        .await
        .expect_ok();
    assert!(h
        .store
        .get_principal(&a, "trust/r")
        .await
        .unwrap()
        .is_none());
    let again = create_role(&h, "r", None).await.expect_ok();
    assert_eq!(again["assumeRolePolicyDocument"].as_str(), Some(default));
    // Listings show users and roles only.
    let listed = h
        .call(&h.admin, "GET", "/v1/principals", None)
        .await
        .expect_ok();
    let names: Vec<&str> = listed["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("user/") || n.starts_with("role/")),
        "{names:?}"
    );
}

#[tokio::test]
async fn roles_of_another_account_need_its_trust_and_the_callers_policies() {
    let h = Harness::new().await;
    let a = h.account.clone();
    h.store
        .create_account(&Account {
            id: OTHER_ACCOUNT.into(),
            name: "b".into(),
            created_ms: h.now(),
        })
        .await
        .unwrap();
    let shared_arn = format!("arn:aws:iam::{a}:role/shared");
    let ext_arn = format!("arn:aws:iam::{OTHER_ACCOUNT}:user/ext");
    let ext = h
        .principal_with_key(OTHER_ACCOUNT, "user/ext", &[("assume", MAY_ASSUME)])
        .await;
    let ext_ro = h
        .principal_with_key(OTHER_ACCOUNT, "user/ext-ro", &[("ro", READ_ONLY)])
        .await;

    // Not trusted (the default trusts account A only): refused, like a role that does not exist.
    create_role(&h, "shared", None).await.expect_ok();
    let (status, code, not_trusted) =
        sts_error(&h.sts(&ext, &assume_form(&shared_arn, "sx")).await);
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
    let missing = format!("arn:aws:iam::{a}:role/nope");
    let (status, code, _) = sts_error(&h.sts(&ext, &assume_form(&missing, "sx")).await);
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
    assert!(!not_trusted.contains("does not exist"), "{not_trusted}");

    // Trusted by ARN: ext may assume it, with credentials of account A.
    h.call(
        &h.admin,
        "PUT",
        "/v1/principals/role/shared/trust-policy",
        Some(json!({ "policyDocument": trust_in(json!([ext_arn, format!("arn:aws:iam::{OTHER_ACCOUNT}:user/ext-ro")])) })),
    )
    .await
    .expect_ok();
    let creds = session_creds(&h.sts(&ext, &assume_form(&shared_arn, "sx")).await);
    let key = h.store.get_access_key(&creds.id).await.unwrap().unwrap();
    assert_eq!(
        (key.account_id.as_str(), key.principal.as_str()),
        (a.as_str(), "role/shared")
    );
    assert!(
        session_creds(&h.sts(&ext, &assume_form(&shared_arn, "sy")).await)
            .id
            .starts_with("ASIA")
    );
    let who = h
        .sts(&creds, "Action=GetCallerIdentity&Version=2011-06-15")
        .await;
    assert_eq!(
        xml_field(&who.text(), "Account").as_deref(),
        Some(a.as_str())
    );
    // Across accounts the caller's own policies must allow it too, even when named.
    let (_, code, message) = sts_error(&h.sts(&ext_ro, &assume_form(&shared_arn, "sx")).await);
    assert_eq!(code, "AccessDenied");
    assert!(message.contains("no identity-based policy"), "{message}");
    // Trusting account B as a whole works the same way for B's principals.
    h.call(
        &h.admin,
        "PUT",
        "/v1/principals/role/shared/trust-policy",
        Some(json!({ "policyDocument": trust_in(json!(OTHER_ACCOUNT)) })),
    )
    .await
    .expect_ok();
    session_creds(&h.sts(&ext, &assume_form(&shared_arn, "sz")).await);
    let (_, code, _) = sts_error(&h.sts(&ext_ro, &assume_form(&shared_arn, "sz")).await);
    assert_eq!(code, "AccessDenied");
}
