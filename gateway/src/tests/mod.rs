//! In-memory protocol tests: a client codec on one side, [`Gateway::handle_frame`] on the
//! other, real SQLite metadata and a real authenticator in between, and storage nodes that keep
//! batches in memory (a test double of [`NodeApi`] that records what reached it, so routing can
//! be checked).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

mod auth;
mod authz;
mod data;
mod framing;
mod groups;
mod isolation;
mod owner_moves;
mod pipelining;
mod policy_per_api;
mod real_node;
mod shared_quota;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use fjord_metadata::{MetadataStore, NodeInfo, SqliteStore};
use fjord_storage_node::api as node;
use fjord_storage_node::api::{
    DeleteRecordsPartitionResult, FetchPartitionResult, GroupRequest, GroupResponse,
    ListOffsetsPartitionResult, NodeApi, NodeDirectory, NodeError, ProducePartitionResult,
};
use fjord_tenancy::bootstrap::{ensure_dev_tenant, DevTenant};
use fjord_tenancy::secrets::SecretSealer;
use fjord_tenancy::{AuthConfig, Authenticator};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use parking_lot::Mutex;
use uuid::Uuid;

use crate::request::Outcome;
use crate::topics::TopicService;
use crate::{Gateway, GatewayConfig, Session};

/// A fixed "now" for the core (the tenancy checks use it too).
pub(crate) const NOW: i64 = 1_790_000_000_000;

/// A storage node double: batches in memory, every request recorded.
#[derive(Default)]
pub(crate) struct MemNode {
    pub id: String,
    /// (topic, partition) → (next offset, batches with their base offsets).
    logs: Mutex<HashMap<(Uuid, i32), (i64, Vec<(i64, Bytes)>)>>,
    /// Every request's kind and partitions, in arrival order.
    pub seen: Mutex<Vec<(&'static str, Vec<(Uuid, i32)>)>>,
    pub groups: Mutex<Vec<GroupRequest>>,
    /// When set, every call fails as if the node were unreachable.
    pub down: Mutex<bool>,
    /// When set, produce and fetch answer every partition with this Kafka error code (as a
    /// node that no longer owns them does).
    pub refuse: Mutex<Option<i16>>,
    /// Body to answer group requests with.
    pub group_reply: Mutex<Bytes>,
    /// The response byte budget (`max_bytes`) of every fetch, in arrival order.
    pub fetch_budgets: Mutex<Vec<u32>>,
    /// Produces to a partition listed here wait for a permit of its semaphore before they
    /// are applied (to hold requests in flight).
    pub gates: Mutex<HashMap<i32, Arc<tokio::sync::Semaphore>>>,
    /// Every applied produce's partitions, in the order they were applied.
    pub applied: Mutex<Vec<Vec<(Uuid, i32)>>>,
    /// Orders produces on arrival (see `MemNode::produce_with`) instead of with the answer.
    pub early_order: Mutex<bool>,
}

impl MemNode {
    /// A produce; with `early_order` set, `sequenced` is dropped as soon as the request has
    /// arrived (before any gate), as a real node does once offsets are assigned.
    async fn produce_with(
        &self,
        req: node::ProduceRequest,
        sequenced: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<node::ProduceResponse, NodeError> {
        self.check()?;
        self.seen.lock().push((
            "produce",
            req.partitions
                .iter()
                .map(|p| (p.topic_id, p.partition))
                .collect(),
        ));
        let sequenced = if *self.early_order.lock() {
            drop(sequenced);
            None
        } else {
            sequenced
        };
        let gates: Vec<_> = {
            let gates = self.gates.lock();
            req.partitions
                .iter()
                .filter_map(|p| gates.get(&p.partition).cloned())
                .collect()
        };
        for gate in gates {
            gate.acquire().await.unwrap().forget();
        }
        self.applied.lock().push(
            req.partitions
                .iter()
                .map(|p| (p.topic_id, p.partition))
                .collect(),
        );
        if let Some(code) = *self.refuse.lock() {
            let refused = ProducePartitionResult {
                error_code: code,
                error_message: Some(format!("refused by {}", self.id)),
                base_offset: -1,
                log_append_time_ms: -1,
                log_start_offset: -1,
            };
            return Ok(node::ProduceResponse {
                partitions: vec![refused; req.partitions.len()],
            });
        }
        let mut logs = self.logs.lock();
        let partitions = req
            .partitions
            .into_iter()
            .map(|p| {
                // lastOffsetDelta sits at bytes 23..27 of a v2 batch header.
                let Some(delta) = p.records.get(23..27) else {
                    return ProducePartitionResult {
                        error_code: 2,
                        error_message: Some("batch too short".into()),
                        base_offset: -1,
                        log_append_time_ms: -1,
                        log_start_offset: -1,
                    };
                };
                let count = i64::from(i32::from_be_bytes(delta.try_into().unwrap())) + 1;
                let log = logs.entry((p.topic_id, p.partition)).or_default();
                let base = log.0;
                let mut batch = BytesMut::from(&p.records[..]);
                batch[0..8].copy_from_slice(&base.to_be_bytes());
                log.1.push((base, batch.freeze()));
                log.0 += count;
                ProducePartitionResult {
                    error_code: 0,
                    error_message: None,
                    base_offset: base,
                    log_append_time_ms: -1,
                    log_start_offset: 0,
                }
            })
            .collect();
        drop(sequenced);
        Ok(node::ProduceResponse { partitions })
    }

    fn check(&self) -> Result<(), NodeError> {
        if *self.down.lock() {
            Err(NodeError::Unreachable(format!("{} is down", self.id)))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl NodeApi for MemNode {
    async fn produce(&self, req: node::ProduceRequest) -> Result<node::ProduceResponse, NodeError> {
        self.produce_with(req, None).await
    }

    async fn produce_ordered(
        &self,
        req: node::ProduceRequest,
        sequenced: tokio::sync::oneshot::Sender<()>,
    ) -> Result<node::ProduceResponse, NodeError> {
        self.produce_with(req, Some(sequenced)).await
    }

    async fn fetch(&self, req: node::FetchRequest) -> Result<node::FetchResponse, NodeError> {
        self.check()?;
        self.fetch_budgets.lock().push(req.max_bytes);
        self.seen.lock().push((
            "fetch",
            req.partitions
                .iter()
                .map(|p| (p.topic_id, p.partition))
                .collect(),
        ));
        if let Some(code) = *self.refuse.lock() {
            let refused = FetchPartitionResult {
                error_code: code,
                high_watermark: -1,
                log_start_offset: -1,
                records: Bytes::new(),
            };
            return Ok(node::FetchResponse {
                partitions: vec![refused; req.partitions.len()],
            });
        }
        let logs = self.logs.lock();
        let partitions = req
            .partitions
            .iter()
            .map(|p| {
                let (end, batches) = logs
                    .get(&(p.topic_id, p.partition))
                    .cloned()
                    .unwrap_or_default();
                let mut out = BytesMut::new();
                for (base, b) in batches {
                    if base >= p.fetch_offset || p.fetch_offset < end && base <= p.fetch_offset {
                        out.put_slice(&b);
                    }
                }
                FetchPartitionResult {
                    error_code: 0,
                    high_watermark: end,
                    log_start_offset: 0,
                    records: out.freeze(),
                }
            })
            .collect();
        Ok(node::FetchResponse { partitions })
    }

    async fn list_offsets(
        &self,
        req: node::ListOffsetsRequest,
    ) -> Result<node::ListOffsetsResponse, NodeError> {
        self.check()?;
        self.seen.lock().push((
            "list_offsets",
            req.partitions
                .iter()
                .map(|p| (p.topic_id, p.partition))
                .collect(),
        ));
        let logs = self.logs.lock();
        let partitions = req
            .partitions
            .iter()
            .map(|p| {
                let end = logs.get(&(p.topic_id, p.partition)).map_or(0, |l| l.0);
                let offset = match p.timestamp {
                    -1 => end,
                    -2 => 0,
                    _ => -1,
                };
                ListOffsetsPartitionResult {
                    error_code: 0,
                    offset,
                    timestamp: -1,
                    leader_epoch: 0,
                }
            })
            .collect();
        Ok(node::ListOffsetsResponse { partitions })
    }

    async fn delete_records(
        &self,
        req: node::DeleteRecordsRequest,
    ) -> Result<node::DeleteRecordsResponse, NodeError> {
        self.check()?;
        self.seen.lock().push((
            "delete_records",
            req.partitions
                .iter()
                .map(|p| (p.topic_id, p.partition))
                .collect(),
        ));
        let partitions = req
            .partitions
            .iter()
            .map(|p| DeleteRecordsPartitionResult {
                error_code: 0,
                low_watermark: p.offset,
            })
            .collect();
        Ok(node::DeleteRecordsResponse { partitions })
    }

    async fn group(&self, req: GroupRequest) -> Result<GroupResponse, NodeError> {
        self.check()?;
        self.groups.lock().push(req);
        Ok(GroupResponse {
            body: self.group_reply.lock().clone(),
        })
    }
}

/// Nodes by id.
#[derive(Default)]
pub(crate) struct MemDirectory(pub BTreeMap<String, Arc<MemNode>>);

#[async_trait]
impl NodeDirectory for MemDirectory {
    async fn node(&self, node_id: &str) -> Result<Arc<dyn NodeApi>, NodeError> {
        self.0
            .get(node_id)
            .map(|n| n.clone() as Arc<dyn NodeApi>)
            .ok_or_else(|| NodeError::Unreachable(format!("no node {node_id}")))
    }
}

/// A temp dir with SQLite metadata, the dev tenant in it, and an authenticator for it.
pub(crate) async fn tenant_env() -> (
    tempfile::TempDir,
    Arc<dyn MetadataStore>,
    DevTenant,
    Arc<Authenticator>,
) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetadataStore> =
        Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
    let sealer = SecretSealer::from_key([7; 32]);
    let tenant = ensure_dev_tenant(&*store, &sealer, dir.path(), "us-east-1", NOW)
        .await
        .unwrap();
    let auth = Arc::new(Authenticator::new(
        store.clone(),
        sealer,
        AuthConfig {
            region: "us-east-1".into(),
            default_cluster: tenant.cluster.id,
            max_clock_skew_ms: 5 * 60 * 1000,
        },
    ));
    (dir, store, tenant, auth)
}

/// A gateway over real SQLite metadata with the dev tenant and in-memory nodes.
pub(crate) struct Env {
    pub _dir: tempfile::TempDir,
    pub gw: Arc<Gateway>,
    pub store: Arc<dyn MetadataStore>,
    pub topics: Arc<TopicService>,
    pub nodes: BTreeMap<String, Arc<MemNode>>,
    pub tenant: DevTenant,
}

impl Env {
    pub async fn new(node_ids: &[&str]) -> Env {
        let (dir, store, tenant, auth) = tenant_env().await;
        let mut nodes = BTreeMap::new();
        for id in node_ids {
            store
                .register_node(&NodeInfo {
                    id: id.to_string(),
                    rpc_addr: "127.0.0.1:1".into(),
                    cert_der: vec![],
                    heartbeat_ms: NOW,
                })
                .await
                .unwrap();
            nodes.insert(
                id.to_string(),
                Arc::new(MemNode {
                    id: id.to_string(),
                    ..Default::default()
                }),
            );
        }
        let topics = Arc::new(TopicService::new(store.clone()));
        let mut config = GatewayConfig::new("gw.us-east-1.fjord.test", 9092);
        config.broker_id = 7;
        config.auth_failure_delay = std::time::Duration::from_millis(1);
        let gw = Gateway::new(
            config,
            store.clone(),
            auth,
            topics.clone(),
            Arc::new(MemDirectory(nodes.clone())),
        )
        .unwrap();
        Env {
            _dir: dir,
            gw: Arc::new(gw),
            store,
            topics,
            nodes,
            tenant,
        }
    }

    pub async fn create_topic(&self, name: &str, partitions: i32) -> Uuid {
        let info = self
            .topics
            .create_topic(
                self.tenant.cluster.id,
                name,
                partitions,
                BTreeMap::new(),
                false,
                NOW,
            )
            .await
            .unwrap();
        info.topic.id
    }

    /// A client connection that has not authenticated.
    pub fn client(&self) -> Client {
        Client {
            gw: self.gw.clone(),
            session: Session::new(Uuid::from_u128(1)),
            corr: 0,
            now_ms: NOW,
        }
    }

    /// A client connection authenticated with PLAIN as the dev key.
    pub async fn authed(&self) -> Client {
        let mut c = self.client();
        let hs: SaslHandshakeResponse = c
            .call(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
            )
            .await;
        assert_eq!(hs.error_code, 0);
        let resp: SaslAuthenticateResponse = c
            .call(ApiKey::SaslAuthenticate, 2, &plain(&self.tenant))
            .await;
        assert_eq!(resp.error_code, 0, "{:?}", resp.error_message);
        c
    }
}

/// A PLAIN SaslAuthenticate with the dev key.
pub(crate) fn plain(t: &DevTenant) -> SaslAuthenticateRequest {
    let bytes = format!("\0{}\0{}", t.access_key_id, t.secret_access_key.expose());
    SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes))
}

/// The client side of one connection.
pub(crate) struct Client {
    pub gw: Arc<Gateway>,
    pub session: Session,
    pub corr: i32,
    pub now_ms: i64,
}

/// Encodes a request frame body (header + body, without the size).
pub(crate) fn request_frame<M: Encodable>(api: ApiKey, version: i16, corr: i32, body: &M) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(corr)
        .with_client_id(Some(StrBytes::from_static_str("test")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.freeze()
}

/// Puts the size prefix back on a frame read by `connection::read_frame`.
pub(crate) fn reframe(body: &Bytes) -> Bytes {
    let mut f = BytesMut::with_capacity(4 + body.len());
    f.put_i32(body.len() as i32);
    f.put_slice(body);
    f.freeze()
}

/// Splits a response frame into its header's correlation id and the body.
pub(crate) fn parse_response(api: ApiKey, version: i16, frame: &Bytes) -> (i32, Bytes) {
    let mut b = frame.clone();
    let size = bytes::Buf::get_i32(&mut b);
    assert_eq!(size as usize, b.len(), "size prefix");
    let hv = crate::frame::response_header_version(api, version);
    let header = ResponseHeader::decode(&mut b, hv).unwrap();
    (header.correlation_id, b)
}

impl Client {
    pub async fn send_raw(&mut self, frame: Bytes) -> Outcome {
        self.gw
            .handle_frame(&mut self.session, frame, self.now_ms)
            .await
    }

    pub async fn send<M: Encodable>(&mut self, api: ApiKey, version: i16, body: &M) -> Outcome {
        self.corr += 1;
        let frame = request_frame(api, version, self.corr, body);
        self.send_raw(frame).await
    }

    /// Sends a request and decodes the response, which must come.
    pub async fn call<M: Encodable, R: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &M,
    ) -> R {
        match self.send(api, version, body).await {
            Outcome::Respond(frame) => {
                let (corr, mut b) = parse_response(api, version, &frame);
                assert_eq!(corr, self.corr);
                let r = R::decode(&mut b, version).unwrap();
                assert!(
                    b.is_empty(),
                    "trailing bytes in {api:?} v{version} response"
                );
                r
            }
            other => panic!("{api:?} v{version}: expected a response, got {other:?}"),
        }
    }
}

/// A v2 record batch of `n` records with values `value-<i>`.
pub(crate) fn batch(n: usize) -> Bytes {
    use kafka_protocol::records::*;
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // offset - sequence must be constant for the encoder to keep one batch; this gives
            // base sequence -1 (no idempotence).
            sequence: i as i32 - 1,
            timestamp: NOW,
            key: None,
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}
