//! Test harness: a control plane on a loopback port over a SQLite store in a tempdir, with a
//! manual clock, and a client that signs requests with `aws-sigv4` (real signatures).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use fjord_control_plane::{ControlPlane, ControlPlaneConfig};
use fjord_gateway::topics::TopicService;
use fjord_metadata::{
    AccessKey, Account, KeyStatus, MetadataStore, NodeInfo, Principal, SqliteStore,
};
use fjord_tenancy::{SecretSealer, SecretString};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

pub const REGION: &str = "us-east-1";
pub const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// What botocore's `percent_encode` keeps: the RFC 3986 unreserved characters.
const BOTO_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Encodes a path parameter the way botocore does (`/` and `:` included).
pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, BOTO_ENCODE).to_string()
}

#[derive(Clone, Debug)]
pub struct Creds {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The REST-JSON error code.
    pub fn error_type(&self) -> Option<&str> {
        self.headers
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and REST-JSON error code, returning the message.
    pub fn expect_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(self.error_type(), Some(code), "body: {}", self.text());
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn expect_ok(&self) -> Value {
        assert_eq!(self.status, 200, "body: {}", self.text());
        self.json()
    }
}

pub struct Harness {
    pub addr: SocketAddr,
    pub store: Arc<dyn MetadataStore>,
    pub sealer: SecretSealer,
    pub account: String,
    pub admin: Creds,
    pub clock: Arc<AtomicI64>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_config(ControlPlaneConfig {
            region: REGION.into(),
            bootstrap_brokers: "boot-{cluster}.{region}.fjord.local:9098".into(),
            bootstrap_brokers_scram: Some("boot-{cluster}.{region}.fjord.local:9096".into()),
            ..Default::default()
        })
        .await
    }

    pub async fn with_config(config: ControlPlaneConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MetadataStore> =
            Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
        let sealer = SecretSealer::from_key([7; 32]);
        let now = real_now_ms();
        let clock = Arc::new(AtomicI64::new(now));
        // A live storage node, so topics can be placed.
        store
            .register_node(&NodeInfo {
                id: "node-1".into(),
                rpc_addr: "127.0.0.1:1".into(),
                cert_der: vec![],
                heartbeat_ms: now,
            })
            .await
            .unwrap();
        let account = "111122223333".to_string();
        store
            .create_account(&Account {
                id: account.clone(),
                name: "a".into(),
                created_ms: now,
            })
            .await
            .unwrap();
        let topics = Arc::new(TopicService::new(Arc::clone(&store)));
        let c = Arc::clone(&clock);
        let cp = ControlPlane::with_clock(
            config,
            Arc::clone(&store),
            sealer.clone(),
            topics,
            Arc::new(move || c.load(Ordering::SeqCst)),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(cp.serve(listener, async move {
            let _ = rx.await;
        }));
        let mut h = Harness {
            addr,
            store,
            sealer,
            account: account.clone(),
            admin: Creds {
                id: String::new(),
                secret: String::new(),
                token: None,
            },
            clock,
            client: Client::builder(TokioExecutor::new()).build_http(),
            shutdown: Some(tx),
            _dir: dir,
        };
        h.admin = h
            .principal_with_key(&account, "user/admin", &[("all", ALLOW_ALL)])
            .await;
        h
    }

    pub fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    pub fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    /// Creates a principal (in the store) with policies and a long-lived key.
    pub async fn principal_with_key(
        &self,
        account: &str,
        name: &str,
        policies: &[(&str, &str)],
    ) -> Creds {
        let policies: BTreeMap<String, String> = policies
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.store
            .create_principal(&Principal {
                account_id: account.into(),
                name: name.into(),
                policies,
                scram: None,
                version: 0,
                created_ms: self.now(),
            })
            .await
            .unwrap();
        self.key_for(account, name, None).await
    }

    /// Stores a key for a principal; with `expires_ms`, a temporary key and its token.
    pub async fn key_for(&self, account: &str, principal: &str, expires_ms: Option<i64>) -> Creds {
        let n = rand_suffix();
        let id = if expires_ms.is_some() {
            format!("ASIATEST{n}")
        } else {
            format!("AKIATEST{n}")
        };
        let secret = format!("secret-{n}-abcdefghijklmnopqrstuvwxyz");
        self.store
            .create_access_key(&AccessKey {
                sealed_secret: self
                    .sealer
                    .seal(&id, &SecretString::new(secret.clone()))
                    .unwrap(),
                id: id.clone(),
                account_id: account.into(),
                principal: principal.into(),
                status: KeyStatus::Active,
                expires_ms,
                created_ms: self.now(),
            })
            .await
            .unwrap();
        let token = expires_ms.map(|e| fjord_tenancy::session::mint(&self.sealer, &id, e).unwrap());
        Creds { id, secret, token }
    }

    /// A signed request at the harness clock's time.
    pub async fn call(
        &self,
        creds: &Creds,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.call_raw(creds, method, path, body, "kafka", REGION, self.now())
            .await
    }

    /// A signed request with every signing input chosen.
    #[allow(clippy::too_many_arguments)]
    pub async fn call_raw(
        &self,
        creds: &Creds,
        method: &str,
        path: &str,
        body: Vec<u8>,
        service: &str,
        region: &str,
        time_ms: i64,
    ) -> Response {
        let mut req = self.signed(creds, method, path, &body, service, region, time_ms);
        *req.body_mut() = Full::new(Bytes::from(body));
        self.send(req).await
    }

    #[allow(clippy::too_many_arguments)]
    pub fn signed(
        &self,
        creds: &Creds,
        method: &str,
        path: &str,
        body: &[u8],
        service: &str,
        region: &str,
        time_ms: i64,
    ) -> http::Request<Full<Bytes>> {
        let url = format!("http://{}{}", self.addr, path);
        let mut req = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("content-type", content_type(service))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let identity: Identity =
            Credentials::new(&creds.id, &creds.secret, creds.token.clone(), None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(UNIX_EPOCH + Duration::from_millis(time_ms as u64))
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let signable = SignableRequest::new(
            method,
            url.clone(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut req);
        req
    }

    pub async fn send(&self, req: http::Request<Full<Bytes>>) -> Response {
        let resp = self.client.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Response {
            status,
            headers,
            body,
        }
    }

    /// An STS form request signed for `sts`.
    pub async fn sts(&self, creds: &Creds, form: &str) -> Response {
        self.call_raw(
            creds,
            "POST",
            "/",
            form.as_bytes().to_vec(),
            "sts",
            REGION,
            self.now(),
        )
        .await
    }

    /// Creates a cluster through the API; returns its ARN.
    pub async fn create_cluster(&self, creds: &Creds, name: &str) -> String {
        let body = serde_json::json!({
            "clusterName": name,
            "serverless": {"vpcConfigs": [{"subnetIds": ["subnet-1"]}],
                           "clientAuthentication": {"sasl": {"iam": {"enabled": true}}}},
        });
        let r = self
            .call(creds, "POST", "/api/v2/clusters", Some(body))
            .await;
        r.expect_ok()["clusterArn"].as_str().unwrap().to_string()
    }
}

fn content_type(service: &str) -> &'static str {
    if service == "sts" {
        "application/x-www-form-urlencoded; charset=utf-8"
    } else {
        "application/json"
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{:012}", N.fetch_add(1, Ordering::SeqCst))
}

/// The text of the first `<tag>…</tag>` in an XML answer.
pub fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml[start..end].to_string())
}
