//! MSK cluster and topic operations, settings and usage, over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;
use fjord_metadata::UsageRecord;
use serde_json::{json, Value};

fn configs(v: Value) -> String {
    STANDARD.encode(v.to_string())
}

fn decode_configs(s: &str) -> Value {
    serde_json::from_slice(&STANDARD.decode(s).unwrap()).unwrap()
}

#[tokio::test]
async fn cluster_round_trip() {
    let h = Harness::new().await;
    let arn = h.create_cluster(&h.admin, "orders").await;
    assert!(
        arn.starts_with(&format!(
            "arn:aws:kafka:{REGION}:{}:cluster/orders/",
            h.account
        )),
        "{arn}"
    );
    let info = h
        .call(
            &h.admin,
            "GET",
            &format!("/api/v2/clusters/{}", enc(&arn)),
            None,
        )
        .await
        .expect_ok();
    let c = &info["clusterInfo"];
    assert_eq!(c["clusterArn"], json!(arn));
    assert_eq!(c["clusterName"], json!("orders"));
    assert_eq!(c["clusterType"], json!("SERVERLESS"));
    assert_eq!(c["state"], json!("ACTIVE"));
    assert_eq!(
        c["serverless"]["clientAuthentication"]["sasl"]["iam"]["enabled"],
        json!(true)
    );
    assert!(c["creationTime"].as_str().unwrap().ends_with('Z'));

    let brokers = h
        .call(
            &h.admin,
            "GET",
            &format!("/v1/clusters/{}/bootstrap-brokers", enc(&arn)),
            None,
        )
        .await
        .expect_ok();
    assert_eq!(
        brokers["bootstrapBrokerStringSaslIam"],
        json!(format!("boot-orders.{REGION}.fjord.local:9098"))
    );
    assert_eq!(
        brokers["bootstrapBrokerStringSaslScram"],
        json!(format!("boot-orders.{REGION}.fjord.local:9096"))
    );

    // Same name again.
    let r = h
        .call(
            &h.admin,
            "POST",
            "/api/v2/clusters",
            Some(json!({"clusterName": "orders", "serverless": {"vpcConfigs": []}})),
        )
        .await;
    r.expect_error(409, "ConflictException");
    // Provisioned and nameless requests.
    let m = h
        .call(
            &h.admin,
            "POST",
            "/api/v2/clusters",
            Some(json!({"clusterName": "p", "provisioned": {"kafkaVersion": "3.6.0"}})),
        )
        .await
        .expect_error(400, "BadRequestException");
    assert!(m.contains("serverless"), "{m}");
    h.call(&h.admin, "POST", "/api/v2/clusters", Some(json!({})))
        .await
        .expect_error(400, "BadRequestException");
    h.call(
        &h.admin,
        "POST",
        "/api/v2/clusters",
        Some(json!({"clusterName": "bad/name", "serverless": {"vpcConfigs": []}})),
    )
    .await
    .expect_error(400, "BadRequestException");

    // Delete with a topic inside: the topic goes too.
    let topics = format!("/v1/clusters/{}/topics", enc(&arn));
    h.call(
        &h.admin,
        "POST",
        &topics,
        Some(json!({"topicName": "t1", "partitionCount": 2, "replicationFactor": 3})),
    )
    .await
    .expect_ok();
    let cluster_id = fjord_tenancy::policy::parse_cluster_arn(&arn).unwrap().id;
    assert_eq!(h.store.list_topics(cluster_id).await.unwrap().len(), 1);
    let deleted = h
        .call(
            &h.admin,
            "DELETE",
            &format!("/v1/clusters/{}", enc(&arn)),
            None,
        )
        .await
        .expect_ok();
    assert_eq!(deleted["state"], json!("DELETING"));
    assert!(h.store.list_topics(cluster_id).await.unwrap().is_empty());
    assert!(h.store.get_cluster(cluster_id).await.unwrap().is_none());
    h.call(
        &h.admin,
        "GET",
        &format!("/api/v2/clusters/{}", enc(&arn)),
        None,
    )
    .await
    .expect_error(404, "NotFoundException");
    h.call(
        &h.admin,
        "DELETE",
        &format!("/v1/clusters/{}", enc(&arn)),
        None,
    )
    .await
    .expect_error(404, "NotFoundException");
    h.call(&h.admin, "GET", "/api/v2/clusters/not-an-arn", None)
        .await
        .expect_error(400, "BadRequestException");
}

#[tokio::test]
async fn list_clusters_filters_and_paginates() {
    let h = Harness::new().await;
    for name in ["a1", "a2", "a3", "b1", "a4"] {
        h.create_cluster(&h.admin, name).await;
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/api/v2/clusters?clusterNameFilter=a&maxResults=2".to_string();
        if let Some(t) = &token {
            path.push_str(&format!("&nextToken={}", enc(t)));
        }
        let page = h.call(&h.admin, "GET", &path, None).await.expect_ok();
        pages += 1;
        for c in page["clusterInfoList"].as_array().unwrap() {
            names.push(c["clusterName"].as_str().unwrap().to_string());
        }
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(names, ["a1", "a2", "a3", "a4"]);
    assert_eq!(pages, 2);
    let provisioned = h
        .call(
            &h.admin,
            "GET",
            "/api/v2/clusters?clusterTypeFilter=PROVISIONED",
            None,
        )
        .await
        .expect_ok();
    assert_eq!(provisioned["clusterInfoList"], json!([]));
    h.call(&h.admin, "GET", "/api/v2/clusters?maxResults=0", None)
        .await
        .expect_error(400, "BadRequestException");
    h.call(&h.admin, "GET", "/api/v2/clusters?nextToken=%21%21", None)
        .await
        .expect_error(400, "BadRequestException");
}

#[tokio::test]
async fn another_accounts_cluster_is_invisible() {
    let h = Harness::new().await;
    let other = h
        .principal_with_key("444455556666", "user/admin", &[("all", ALLOW_ALL)])
        .await;
    let theirs = h.create_cluster(&other, "secret").await;
    // The ARN names their account: NotFound, as for a cluster that does not exist.
    for path in [
        format!("/api/v2/clusters/{}", enc(&theirs)),
        format!("/v1/clusters/{}/bootstrap-brokers", enc(&theirs)),
        format!("/v1/clusters/{}/topics", enc(&theirs)),
    ] {
        h.call(&h.admin, "GET", &path, None)
            .await
            .expect_error(404, "NotFoundException");
    }
    // Their cluster id under our account's ARN.
    let forged = theirs.replace("444455556666", &h.account);
    h.call(
        &h.admin,
        "GET",
        &format!("/api/v2/clusters/{}", enc(&forged)),
        None,
    )
    .await
    .expect_error(404, "NotFoundException");
    h.call(
        &h.admin,
        "DELETE",
        &format!("/v1/clusters/{}", enc(&theirs)),
        None,
    )
    .await
    .expect_error(404, "NotFoundException");
    let mine = h
        .call(&h.admin, "GET", "/api/v2/clusters", None)
        .await
        .expect_ok();
    assert_eq!(mine["clusterInfoList"], json!([]));
}

#[tokio::test]
async fn topic_operations_take_the_topic_service_path() {
    let h = Harness::new().await;
    let arn = h.create_cluster(&h.admin, "c").await;
    // The clock stands still in these tests: lift the topic-admin rate (tested below).
    h.call(
        &h.admin,
        "PUT",
        &format!("/v1/clusters/{}/settings", enc(&arn)),
        Some(json!({"limits": {"topic-admin-requests-per-sec": 1000}})),
    )
    .await
    .expect_ok();
    let topics = format!("/v1/clusters/{}/topics", enc(&arn));
    let created = h
        .call(
            &h.admin,
            "POST",
            &topics,
            Some(
                json!({"topicName": "orders", "partitionCount": 3, "replicationFactor": 1,
                        "configs": configs(json!({"retention.ms": "60000"}))}),
            ),
        )
        .await
        .expect_ok();
    assert_eq!(created["status"], json!("ACTIVE"));
    assert!(created["topicArn"].as_str().unwrap().ends_with("/orders"));
    h.call(
        &h.admin,
        "POST",
        &topics,
        Some(json!({"topicName": "orders", "partitionCount": 1, "replicationFactor": 1})),
    )
    .await
    .expect_error(409, "TopicExistsException");
    // The topic service's own checks: config validation and names.
    let m = h
        .call(
            &h.admin,
            "POST",
            &topics,
            Some(
                json!({"topicName": "x", "partitionCount": 1, "replicationFactor": 1,
                        "configs": configs(json!({"retention.ms": "soon"}))}),
            ),
        )
        .await
        .expect_error(400, "BadRequestException");
    assert!(m.contains("retention.ms"), "{m}");
    h.call(
        &h.admin,
        "POST",
        &topics,
        Some(json!({"topicName": "bad name", "partitionCount": 1, "replicationFactor": 1})),
    )
    .await
    .expect_error(400, "BadRequestException");
    // The cluster partition limit of the topic service (2400 by default), as CreateTopics.
    let m = h
        .call(
            &h.admin,
            "POST",
            &topics,
            Some(json!({"topicName": "huge", "partitionCount": 2400, "replicationFactor": 1})),
        )
        .await
        .expect_error(400, "BadRequestException");
    assert!(m.contains("limit"), "{m}");

    let topic = format!("{topics}/orders");
    let d = h.call(&h.admin, "GET", &topic, None).await.expect_ok();
    assert_eq!(d["partitionCount"], json!(3));
    assert_eq!(d["replicationFactor"], json!(1));
    let c = decode_configs(d["configs"].as_str().unwrap());
    assert_eq!(c["retention.ms"], json!("60000"));
    assert!(c["cleanup.policy"].is_string());

    h.call(
        &h.admin,
        "PUT",
        &topic,
        Some(json!({"configs": configs(json!({"retention.bytes": "1000"})), "partitionCount": 5})),
    )
    .await
    .expect_ok();
    let d = h.call(&h.admin, "GET", &topic, None).await.expect_ok();
    assert_eq!(d["partitionCount"], json!(5));
    let c = decode_configs(d["configs"].as_str().unwrap());
    assert_eq!(c["retention.ms"], json!("60000"), "SET keeps other configs");
    assert_eq!(c["retention.bytes"], json!("1000"));
    h.call(&h.admin, "PUT", &topic, Some(json!({"partitionCount": 2})))
        .await
        .expect_error(400, "BadRequestException");
    h.call(&h.admin, "PUT", &topic, Some(json!({})))
        .await
        .expect_error(400, "BadRequestException");

    let parts = h
        .call(
            &h.admin,
            "GET",
            &format!("{topic}/partitions?maxResults=4"),
            None,
        )
        .await
        .expect_ok();
    assert_eq!(parts["partitions"].as_array().unwrap().len(), 4);
    assert_eq!(
        parts["partitions"][0],
        json!({"partition": 0, "leader": 1, "replicas": [1], "isr": [1]})
    );
    let token = parts["nextToken"].as_str().unwrap();
    let rest = h
        .call(
            &h.admin,
            "GET",
            &format!("{topic}/partitions?nextToken={}", enc(token)),
            None,
        )
        .await
        .expect_ok();
    assert_eq!(rest["partitions"][0]["partition"], json!(4));
    assert!(rest["nextToken"].is_null());

    h.call(
        &h.admin,
        "POST",
        &topics,
        Some(json!({"topicName": "audit", "partitionCount": 1, "replicationFactor": 1})),
    )
    .await
    .expect_ok();
    let list = h
        .call(
            &h.admin,
            "GET",
            &format!("{topics}?topicNameFilter=or"),
            None,
        )
        .await
        .expect_ok();
    let names: Vec<&str> = list["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topicName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders"]);

    let del = h.call(&h.admin, "DELETE", &topic, None).await.expect_ok();
    assert_eq!(del["status"], json!("DELETING"));
    h.call(&h.admin, "GET", &topic, None)
        .await
        .expect_error(404, "NotFoundException");
    h.call(&h.admin, "DELETE", &topic, None)
        .await
        .expect_error(404, "NotFoundException");
}

#[tokio::test]
async fn topic_authorization_uses_msk_data_plane_actions() {
    let h = Harness::new().await;
    let arn = h.create_cluster(&h.admin, "c").await;
    let topics = format!("/v1/clusters/{}/topics", enc(&arn));
    for name in ["public.a", "private.b"] {
        h.call(
            &h.admin,
            "POST",
            &topics,
            Some(json!({"topicName": name, "partitionCount": 1, "replicationFactor": 1})),
        )
        .await
        .expect_ok();
    }
    let cluster = arn.replace(":cluster/", ":topic/");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kafka-cluster:Connect", "Resource": arn},
        {"Effect": "Allow", "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic"],
         "Resource": format!("{cluster}/public.*")},
    ]})
    .to_string();
    let reader = h
        .principal_with_key(&h.account, "user/reader", &[("p", &policy)])
        .await;
    let list = h.call(&reader, "GET", &topics, None).await.expect_ok();
    assert_eq!(list["topics"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["topics"][0]["topicName"], json!("public.a"));
    // Described without configs: no DescribeTopicDynamicConfiguration.
    let d = h
        .call(&reader, "GET", &format!("{topics}/public.a"), None)
        .await
        .expect_ok();
    assert!(d["configs"].is_null());
    let m = h
        .call(&reader, "GET", &format!("{topics}/private.b"), None)
        .await
        .expect_error(403, "ForbiddenException");
    assert!(m.contains("kafka-cluster:DescribeTopic"), "{m}");
    h.call(&reader, "DELETE", &format!("{topics}/public.a"), None)
        .await
        .expect_error(403, "ForbiddenException");
    h.call(
        &reader,
        "POST",
        &topics,
        Some(json!({"topicName": "public.c", "partitionCount": 1, "replicationFactor": 1})),
    )
    .await
    .expect_ok();
    h.call(
        &reader,
        "POST",
        &topics,
        Some(json!({"topicName": "private.c", "partitionCount": 1, "replicationFactor": 1})),
    )
    .await
    .expect_error(403, "ForbiddenException");
}

#[tokio::test]
async fn topic_admin_rate_follows_the_cluster_settings() {
    let h = Harness::new().await;
    let arn = h.create_cluster(&h.admin, "c").await;
    let settings = format!("/v1/clusters/{}/settings", enc(&arn));
    let s = h
        .call(
            &h.admin,
            "PUT",
            &settings,
            Some(json!({"limits": {"topic-admin-requests-per-sec": 1, "max-partitions": 4800}})),
        )
        .await
        .expect_ok();
    assert_eq!(s["effectiveLimits"]["max-partitions"], json!(4800));
    assert_eq!(s["effectiveLimits"]["max-consumer-groups"], json!(500));
    let got = h.call(&h.admin, "GET", &settings, None).await.expect_ok();
    assert_eq!(
        got["limits"],
        json!({"topic-admin-requests-per-sec": 1, "max-partitions": 4800})
    );
    h.call(
        &h.admin,
        "PUT",
        &settings,
        Some(json!({"limits": {"max-partitionz": 1}})),
    )
    .await
    .expect_error(400, "BadRequestException");
    h.call(
        &h.admin,
        "PUT",
        &settings,
        Some(json!({"limits": {"max-partitions": 0}})),
    )
    .await
    .expect_error(400, "BadRequestException");

    // One per second with a burst of one: the clock stands still, so the third change waits.
    let topics = format!("/v1/clusters/{}/topics", enc(&arn));
    let create =
        |name: &str| json!({"topicName": name, "partitionCount": 1, "replicationFactor": 1});
    h.call(&h.admin, "POST", &topics, Some(create("t1")))
        .await
        .expect_ok();
    h.call(&h.admin, "POST", &topics, Some(create("t2")))
        .await
        .expect_ok();
    h.call(&h.admin, "POST", &topics, Some(create("t3")))
        .await
        .expect_error(429, "TooManyRequestsException");
    h.advance(2_000);
    h.call(&h.admin, "POST", &topics, Some(create("t3")))
        .await
        .expect_ok();
}

#[tokio::test]
async fn usage_is_summed_per_period() {
    let h = Harness::new().await;
    let arn = h.create_cluster(&h.admin, "c").await;
    let id = fjord_tenancy::policy::parse_cluster_arn(&arn).unwrap().id;
    let hour = 3_600_000;
    let base = 1_700_000_000_000 / hour * hour;
    for (source, start, bytes_in) in [
        ("gw-1", base, 100),
        ("gw-2", base, 50),
        ("gw-1", base + hour, 7),
    ] {
        h.store
            .record_usage(&UsageRecord {
                cluster_id: id,
                source: source.into(),
                period_start_ms: start,
                period_end_ms: start + hour,
                cluster_hours: 1.0,
                partition_hours: 3.0,
                bytes_in,
                bytes_out: 10,
                storage_byte_hours: 5.0,
            })
            .await
            .unwrap();
    }
    let path = format!(
        "/v1/clusters/{}/usage?from={base}&to={}",
        enc(&arn),
        base + 2 * hour
    );
    let u = h.call(&h.admin, "GET", &path, None).await.expect_ok();
    let periods = u["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 2);
    assert_eq!(periods[0]["bytesIn"], json!(150));
    assert_eq!(periods[0]["clusterHours"], json!(1.0));
    assert_eq!(periods[0]["partitionHours"], json!(6.0));
    assert_eq!(u["total"]["bytesIn"], json!(157));
    assert_eq!(u["total"]["clusterHours"], json!(2.0));
    let bad = format!("/v1/clusters/{}/usage?from=later", enc(&arn));
    h.call(&h.admin, "GET", &bad, None)
        .await
        .expect_error(400, "BadRequestException");
}
