//! Gateway membership on real metadata (SQLite files; DynamoDB's client against an endpoint
//! that refuses every request), driven with explicit times.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use fjord_metadata::dynamodb::{Credentials, DynamoConfig, DynamoStore};
use fjord_metadata::SqliteStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const T: i64 = 1_790_000_000_000;
const PERIOD: Duration = Duration::from_secs(1);

fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn MetadataStore> {
    Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap())
}

fn member(store: &Arc<dyn MetadataStore>) -> Membership {
    Membership::new(store.clone(), PERIOD, GatewayCount::default())
}

async fn ids(store: &Arc<dyn MetadataStore>) -> Vec<String> {
    store
        .list_gateways()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect()
}

#[tokio::test]
async fn counts_gateways_heartbeating_within_three_periods() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir);
    let a = member(&store);
    let b = member(&store);
    assert_ne!(a.id(), b.id(), "one id per process run");
    assert_eq!(a.refresh(T).await, 1);
    assert_eq!(b.refresh(T).await, 2);
    assert_eq!(a.refresh(T + 1000).await, 2);
    assert_eq!(a.gateways(), 2, "published");
    // b stops heartbeating: still counted three periods after its last heartbeat...
    assert_eq!(a.refresh(T + 3000).await, 2);
    // ...and no longer after.
    assert_eq!(a.refresh(T + 3001).await, 1);
    assert_eq!(a.gateways(), 1);
    // It comes back.
    assert_eq!(b.refresh(T + 4000).await, 2);
    assert_eq!(a.refresh(T + 4000).await, 2);
}

#[tokio::test]
async fn a_gateway_that_leaves_is_no_longer_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir);
    let a = member(&store);
    let b = member(&store);
    a.refresh(T).await;
    assert_eq!(b.refresh(T).await, 2);
    b.leave().await;
    assert_eq!(ids(&store).await, vec![a.id().to_string()]);
    assert_eq!(
        a.refresh(T + 1).await,
        1,
        "at once, without waiting for expiry"
    );
}

#[tokio::test]
async fn long_expired_registrations_are_swept_and_recent_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir);
    store
        .heartbeat_gateway("crashed-long-ago", T - SWEEP_AFTER_MS - 3001)
        .await
        .unwrap();
    store
        .heartbeat_gateway("crashed-just-now", T - 3001)
        .await
        .unwrap();
    let a = member(&store);
    assert_eq!(a.refresh(T).await, 1, "neither is alive");
    let mut want = vec!["crashed-just-now".to_string(), a.id().to_string()];
    want.sort();
    assert_eq!(ids(&store).await, want);
}

#[tokio::test]
async fn run_registers_at_once_and_leaves_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir);
    let m = Arc::new(member(&store));
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(m.clone().run(stop_rx));
    // The first round runs as the task starts; wait for it (bounded), not for a period.
    tokio::time::timeout(Duration::from_secs(10), async {
        while ids(&store).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("registered");
    assert_eq!(ids(&store).await, vec![m.id().to_string()]);
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    assert!(ids(&store).await.is_empty(), "removed on a clean stop");
}

/// Answers every HTTP request on `listener` with DynamoDB's ValidationException (not retried
/// by the SDK, so each call fails at once).
async fn refuse_all(listener: tokio::net::TcpListener) {
    const BODY: &str = concat!(
        r#"{"__type":"com.amazon.coral.validate#ValidationException","#,
        r#""message":"refused by the test"}"#
    );
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            // Read the whole request (headers, then Content-Length bytes) before answering.
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let Ok(n) = sock.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let resp = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\n\
                 x-amzn-requestid: test\r\ncontent-length: {}\r\n\r\n{BODY}",
                BODY.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

#[tokio::test]
async fn unreachable_metadata_keeps_the_last_count() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(refuse_all(listener));
    let mut config = DynamoConfig::from_url(&format!(
        "dynamodb://fjord?region=us-east-1&endpoint=http://{addr}"
    ))
    .unwrap();
    config.credentials = Some(Credentials::new("test", "test", None, None, "test"));
    let broken: Arc<dyn MetadataStore> = Arc::new(DynamoStore::from_config(config).unwrap());
    assert!(
        broken.list_gateways().await.is_err(),
        "the endpoint refuses"
    );

    let count = GatewayCount::default();
    count.set(3);
    let m = Membership::new(broken, PERIOD, count.clone());
    assert_eq!(m.refresh(T).await, 3, "the last count is kept");
    assert_eq!(count.get(), 3);
    server.abort();
}
