//! Per-cluster limits through the control plane: the partition mutation quota on HTTP topic
//! changes, limit overrides (PutClusterSettings) and what DeleteCluster leaves behind.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use common::*;
use serde_json::{json, Value};

fn create(name: &str, partitions: i32) -> Value {
    json!({"topicName": name, "partitionCount": partitions, "replicationFactor": 3})
}

/// A cluster whose settings are `limits` (the topic-admin request rate lifted, since the clock
/// only moves when a test moves it); returns its ARN and topics path.
async fn cluster_with(h: &Harness, limits: Value) -> (String, String) {
    let arn = h.create_cluster(&h.admin, "c").await;
    let mut limits = limits;
    limits["topic-admin-requests-per-sec"] = json!(1000);
    h.call(
        &h.admin,
        "PUT",
        &format!("/v1/clusters/{}/settings", enc(&arn)),
        Some(json!({ "limits": limits })),
    )
    .await
    .expect_ok();
    let topics = format!("/v1/clusters/{}/topics", enc(&arn));
    (arn, topics)
}

#[tokio::test]
async fn http_topic_changes_take_the_partition_mutation_quota() {
    let h = Harness::new().await;
    // 4 partitions per 4 s: one partition's worth comes back every second.
    let (_, topics) = cluster_with(
        &h,
        json!({"partition-mutations-per-window": 4, "partition-mutation-window-ms": 4000}),
    )
    .await;
    // Within the allowance, then past it: admitted whole while not in debt (KIP-599 strict).
    h.call(&h.admin, "POST", &topics, Some(create("a", 3)))
        .await
        .expect_ok();
    h.call(&h.admin, "POST", &topics, Some(create("b", 3)))
        .await
        .expect_ok();
    // In debt by 2 partitions: every mutation is refused, naming the limit.
    let m = h
        .call(&h.admin, "POST", &topics, Some(create("c", 1)))
        .await
        .expect_error(429, "TooManyRequestsException");
    assert!(
        m.contains("partition mutation quota of 4 partitions created or deleted per 4 s"),
        "{m}"
    );
    assert!(m.contains("retry in 2000 ms"), "{m}");
    h.call(&h.admin, "GET", &format!("{topics}/c"), None)
        .await
        .expect_error(404, "NotFoundException");
    h.call(&h.admin, "DELETE", &format!("{topics}/a"), None)
        .await
        .expect_error(429, "TooManyRequestsException");
    h.call(
        &h.admin,
        "PUT",
        &format!("{topics}/a"),
        Some(json!({"partitionCount": 4})),
    )
    .await
    .expect_error(429, "TooManyRequestsException");
    // Config changes create no partitions: not limited by it.
    let configs = base64_json(json!({"retention.ms": "60000"}));
    h.call(
        &h.admin,
        "PUT",
        &format!("{topics}/a"),
        Some(json!({ "configs": configs })),
    )
    .await
    .expect_ok();

    // Out of debt after 2 s: deleting a (3 partitions) is admitted and charged.
    h.advance(2_000);
    h.call(&h.admin, "DELETE", &format!("{topics}/a"), None)
        .await
        .expect_ok();
    let m = h
        .call(&h.admin, "POST", &topics, Some(create("c", 1)))
        .await
        .expect_error(429, "TooManyRequestsException");
    assert!(m.contains("retry in 3000 ms"), "{m}");
    // Back to a full allowance of 4. A refusal for another reason costs nothing: shrinking b
    // fails and charges nothing.
    h.advance(4_000);
    h.call(
        &h.admin,
        "PUT",
        &format!("{topics}/b"),
        Some(json!({"partitionCount": 2})),
    )
    .await
    .expect_error(400, "BadRequestException");
    // Growing b by one charges one (not its 4 partitions), leaving room for c.
    h.call(
        &h.admin,
        "PUT",
        &format!("{topics}/b"),
        Some(json!({"partitionCount": 4})),
    )
    .await
    .expect_ok();
    h.call(&h.admin, "POST", &topics, Some(create("c", 1)))
        .await
        .expect_ok();
}

#[tokio::test]
async fn the_default_quota_is_msk_serverless_250_per_5_minutes() {
    let h = Harness::new().await;
    let (_, topics) = cluster_with(&h, json!({"max-partitions": 4800})).await;
    // 250 partitions (one topic over the allowance is still admitted whole)…
    h.call(&h.admin, "POST", &topics, Some(create("big", 300)))
        .await
        .expect_ok();
    // …and then nothing until the debt of 50 is paid back: 50 * 300 s / 250 = 60 s.
    let m = h
        .call(&h.admin, "POST", &topics, Some(create("small", 1)))
        .await
        .expect_error(429, "TooManyRequestsException");
    assert!(
        m.contains("quota of 250 partitions created or deleted per 300 s"),
        "{m}"
    );
    assert!(m.contains("retry in 60000 ms"), "{m}");
    h.advance(60_000);
    heartbeat(&h).await;
    h.call(&h.admin, "POST", &topics, Some(create("small", 1)))
        .await
        .expect_ok();
}

#[tokio::test]
async fn cluster_limits_are_adjustable_and_go_with_the_cluster() {
    let h = Harness::new().await;
    let (arn, topics) = cluster_with(&h, json!({"max-partitions": 5})).await;
    let settings = format!("/v1/clusters/{}/settings", enc(&arn));
    // The partition limit applies to HTTP creations at once, naming the limit.
    h.call(&h.admin, "POST", &topics, Some(create("a", 4)))
        .await
        .expect_ok();
    let m = h
        .call(&h.admin, "POST", &topics, Some(create("b", 2)))
        .await
        .expect_error(400, "BadRequestException");
    assert!(m.contains("limit of 5"), "{m}");
    // Raised: the same request goes through.
    h.call(
        &h.admin,
        "PUT",
        &settings,
        Some(json!({"limits": {"max-partitions": 6, "topic-admin-requests-per-sec": 1000}})),
    )
    .await
    .expect_ok();
    h.call(&h.admin, "POST", &topics, Some(create("b", 2)))
        .await
        .expect_ok();
    // A changed mutation quota applies to the next HTTP change (no stale cached bucket).
    h.call(
        &h.admin,
        "PUT",
        &settings,
        Some(
            json!({"limits": {"max-partitions": 100, "topic-admin-requests-per-sec": 1000,
                               "partition-mutations-per-window": 1}}),
        ),
    )
    .await
    .expect_ok();
    h.call(&h.admin, "POST", &topics, Some(create("c", 2)))
        .await
        .expect_ok();
    h.call(&h.admin, "POST", &topics, Some(create("d", 1)))
        .await
        .expect_error(429, "TooManyRequestsException");
    // Only operators' actions change limits: MSK-style tenant policies do not grant them.
    let tenant = h
        .principal_with_key(
            &h.account,
            "user/tenant",
            &[(
                "msk",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kafka:*","kafka-cluster:*"],"Resource":"*"}]}"#,
            )],
        )
        .await;
    h.call(
        &tenant,
        "PUT",
        &settings,
        Some(json!({"limits": {"max-partitions": 10000}})),
    )
    .await
    .expect_error(403, "ForbiddenException");

    // DeleteCluster empties the overrides it leaves (the store cannot delete them).
    let cluster_id = fjord_tenancy::policy::parse_cluster_arn(&arn).unwrap().id;
    assert!(!h
        .store
        .get_cluster_settings(cluster_id)
        .await
        .unwrap()
        .unwrap()
        .limits
        .is_empty());
    h.call(
        &h.admin,
        "DELETE",
        &format!("/v1/clusters/{}", enc(&arn)),
        None,
    )
    .await
    .expect_ok();
    let left = h.store.get_cluster_settings(cluster_id).await.unwrap();
    assert!(
        left.as_ref().is_none_or(|s| s.limits.is_empty()),
        "{left:?}"
    );
    h.call(&h.admin, "GET", &settings, None)
        .await
        .expect_error(404, "NotFoundException");
}

/// Keeps the harness's storage node live after the clock moved past its heartbeat timeout.
async fn heartbeat(h: &Harness) {
    h.store
        .register_node(&fjord_metadata::NodeInfo {
            id: "node-1".into(),
            rpc_addr: "127.0.0.1:1".into(),
            cert_der: vec![],
            heartbeat_ms: h.now(),
        })
        .await
        .unwrap();
}

fn base64_json(v: Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}
