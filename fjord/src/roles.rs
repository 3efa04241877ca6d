//! Starting and stopping the roles: gateway, storage node, and both together for `fjord dev`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use fjord_control_plane::{ControlPlane, ControlPlaneConfig};
use fjord_gateway::topics::{TopicService, TopicServiceConfig};
use fjord_gateway::{Gateway, GatewayConfig};
use fjord_gateway::{ListenerConfig, SaslFamily, TlsSettings};
use fjord_metadata::counting::CountingStore;
use fjord_metadata::{DynamoStore, MetadataStore, NodeInfo, SqliteStore};
use fjord_storage_node::counting_objects::CountingObjectStore;
use fjord_storage_node::local::WithLocalNode;
use fjord_storage_node::rpc::{NodeIdentity, QuicNodeDirectory, RpcServer};
use fjord_storage_node::NodeConfig;
use fjord_storage_node::NodeDirectory;
use fjord_storage_node::StorageNode;
use fjord_tenancy::bootstrap::{ensure_dev_tenant, DevTenant};
use fjord_tenancy::secrets::SecretSealer;
use fjord_tenancy::{AuthConfig, Authenticator};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::cli::{
    ControlPlaneArgs, ControlPlaneFlags, DevArgs, GatewayArgs, GatewayFlags, InitMetadataArgs,
    NodeArgs, NodeFlags, StateArgs,
};
use crate::shutdown::Shutdown;

/// How often a node renews its registration.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Shared state every role opens: metadata, object store, secret sealer.
struct State {
    data_dir: PathBuf,
    region: String,
    store: Arc<dyn MetadataStore>,
    objects: Arc<dyn object_store::ObjectStore>,
    sealer: SecretSealer,
    counters: Arc<RequestCounters>,
}

/// Handles on the counting wrappers around `State::store` and `State::objects`: every
/// metadata call and object-store request this process makes is counted (one relaxed atomic
/// increment each), so cost per GB can be read off a running process.
struct RequestCounters {
    store: Arc<CountingStore>,
    objects: Arc<CountingObjectStore>,
    /// The DynamoDB backend's own request and item counts (what AWS bills), when it is used.
    dynamo: Option<DynamoStore>,
    /// The gateway's topic cache, once a gateway runs: its reads on behalf of requests versus
    /// background refreshes show that the produce path reads no metadata in steady state.
    topics: std::sync::OnceLock<Arc<TopicService>>,
}

impl RequestCounters {
    /// The counts as one JSON object.
    fn to_json(&self) -> serde_json::Value {
        let (reads, writes) = self.store.totals();
        let (puts, gets) = self.objects.totals();
        let mut json = serde_json::json!({
            "metadata": self.store.snapshot(),
            "metadata_reads": reads,
            "metadata_writes": writes,
            "objects": self.objects.snapshot(),
            "object_puts": puts,
            "object_gets": gets,
        });
        if let Some(d) = &self.dynamo {
            json["dynamodb"] = serde_json::json!(d.request_counts());
        }
        if let Some(t) = self.topics.get() {
            json["topic_cache"] = serde_json::json!(t.read_counts());
        }
        json
    }

    /// Logs the counts and prints them on stdout as one line, `request-counts: {json}`, for
    /// scripts (see `scripts/bench-requests-per-gb`).
    fn report(&self, when: &str) {
        let json = self.to_json();
        info!(when, counts = %json, "request counts");
        println!("request-counts: {json}");
    }

    /// Until the guard is dropped, SIGUSR1 prints the counts so far (a snapshot at the edges of
    /// a measurement window).
    fn report_on_sigusr1(self: &Arc<Self>) -> AbortOnDrop {
        let counters = self.clone();
        AbortOnDrop(tokio::spawn(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::user_defined1()) {
                    Ok(mut usr1) => {
                        while usr1.recv().await.is_some() {
                            counters.report("sigusr1");
                        }
                    }
                    Err(e) => warn!("cannot listen for SIGUSR1 ({e}); counts only at exit"),
                }
            }
            #[cfg(not(unix))]
            let _ = counters;
        }))
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl State {
    async fn open(args: &StateArgs) -> Result<Self> {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
        let (metadata, dynamo) = open_metadata(args)?;
        let store = Arc::new(CountingStore::new(metadata));
        let objects = Arc::new(CountingObjectStore::new(open_object_store(
            &args.data_dir,
            args.object_store.as_deref(),
        )?));
        let sealer = match &args.kms_key_id {
            Some(key_id) => {
                crate::sealing::open_kms_sealer(
                    key_id,
                    &args.region,
                    args.kms_endpoint.as_deref(),
                    objects.as_ref(),
                )
                .await?
            }
            None => SecretSealer::load_or_create(&args.data_dir.join("secret.key"))
                .context("loading the secret-sealing key")?,
        };
        Ok(Self {
            data_dir: args.data_dir.clone(),
            region: args.region.clone(),
            store: store.clone(),
            objects: objects.clone(),
            sealer,
            counters: Arc::new(RequestCounters {
                store,
                objects,
                dynamo,
                topics: std::sync::OnceLock::new(),
            }),
        })
    }

    async fn dev_tenant(&self) -> Result<DevTenant> {
        ensure_dev_tenant(
            self.store.as_ref(),
            &self.sealer,
            &self.data_dir,
            &self.region,
            now_ms(),
        )
        .await
        .context("creating the dev account, cluster and access key")
    }
}

/// Which metadata backend `--metadata` names.
pub(crate) enum MetadataSpec {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A DynamoDB URL (`dynamodb://<table-prefix>?region=…`).
    Dynamo(String),
}

/// Parses `--metadata` (default: `<data-dir>/metadata.sqlite`).
pub(crate) fn metadata_spec(args: &StateArgs) -> Result<MetadataSpec> {
    Ok(match args.metadata.as_deref() {
        None => MetadataSpec::Sqlite(args.data_dir.join("metadata.sqlite")),
        Some(url) if url.starts_with("dynamodb://") => MetadataSpec::Dynamo(url.to_string()),
        Some(url) => match url.strip_prefix("sqlite://") {
            Some(path) => MetadataSpec::Sqlite(PathBuf::from(path)),
            None => {
                bail!("--metadata {url:?}: expected sqlite:///path or dynamodb://prefix?region=…")
            }
        },
    })
}

/// Opens the metadata store; for DynamoDB also returns a handle on it (a clone shares its
/// request counters).
fn open_metadata(args: &StateArgs) -> Result<(Arc<dyn MetadataStore>, Option<DynamoStore>)> {
    Ok(match metadata_spec(args)? {
        MetadataSpec::Sqlite(path) => (
            Arc::new(
                SqliteStore::open(&path)
                    .with_context(|| format!("opening metadata {}", path.display()))?,
            ),
            None,
        ),
        MetadataSpec::Dynamo(url) => {
            let store = DynamoStore::connect(&url)
                .with_context(|| format!("connecting to metadata {url}"))?;
            (Arc::new(store.clone()), Some(store))
        }
    })
}

/// `fjord admin init-metadata`.
pub async fn init_metadata(args: InitMetadataArgs) -> Result<()> {
    match metadata_spec(&args.state)? {
        MetadataSpec::Sqlite(path) => {
            SqliteStore::open(&path)
                .with_context(|| format!("creating metadata {}", path.display()))?;
            println!("metadata ready: {}", path.display());
        }
        MetadataSpec::Dynamo(url) => {
            let store = DynamoStore::connect(&url)
                .with_context(|| format!("connecting to metadata {url}"))?;
            store
                .create_tables()
                .await
                .context("creating the DynamoDB table")?;
            println!("metadata ready: DynamoDB table {}", store.table_name());
        }
    }
    Ok(())
}

fn open_object_store(
    data_dir: &Path,
    spec: Option<&str>,
) -> Result<Arc<dyn object_store::ObjectStore>> {
    /// `s3://bucket/prefix?region=…&endpoint=…&sse_kms_key_id=…` on `object_store`'s S3 client:
    /// credentials from the AWS environment (variables, web identity, ECS, instance metadata),
    /// conditional creates (If-None-Match) for `PutMode::Create`, its retries with backoff.
    fn open_s3(spec: &str) -> Result<Arc<dyn object_store::ObjectStore>> {
        use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
        let url = url::Url::parse(spec).with_context(|| format!("--object-store {spec}"))?;
        let bucket = url.host_str().unwrap_or_default();
        if bucket.is_empty() {
            bail!("--object-store {spec}: no bucket");
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch);
        let mut local_endpoint = false;
        for (k, v) in url.query_pairs() {
            builder = match k.as_ref() {
                "region" => builder.with_region(v.as_ref()),
                "endpoint" => {
                    local_endpoint = true;
                    // Emulators and private endpoints serve buckets as paths, often over http.
                    builder
                        .with_endpoint(v.as_ref())
                        .with_allow_http(v.starts_with("http://"))
                        .with_virtual_hosted_style_request(false)
                }
                "sse_kms_key_id" => builder.with_sse_kms_encryption(v.as_ref()),
                other => bail!("--object-store {spec}: unknown parameter {other:?}"),
            };
        }
        // A local endpoint (moto, MinIO in dev) needs some signature but no real identity; do
        // not let the credential chain wander off to instance metadata for it.
        if local_endpoint && std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            builder = builder
                .with_access_key_id("fjord-local")
                .with_secret_access_key("fjord-local");
        }
        let s3 = builder
            .build()
            .with_context(|| format!("--object-store {spec}"))?;
        let prefix = url.path().trim_matches('/');
        info!(bucket, prefix, "object store: S3");
        Ok(if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
        })
    }

    let path = match spec {
        None => data_dir.join("objects"),
        Some(s) if s.starts_with("s3://") => return open_s3(s),
        Some(s) => PathBuf::from(s.strip_prefix("file://").unwrap_or(s)),
    };
    std::fs::create_dir_all(&path)
        .with_context(|| format!("creating object-store directory {}", path.display()))?;
    // Durable writes: the WAL is trimmed once an upload returns (see durable_local).
    let fs = fjord_storage_node::durable_local::DurableLocalStore::new(&path)
        .with_context(|| format!("opening object-store directory {}", path.display()))?;
    Ok(Arc::new(fs))
}

/// A running storage node.
struct RunningNode {
    id: String,
    node: Arc<StorageNode>,
    rpc: tokio::task::JoinHandle<()>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl RunningNode {
    async fn stop(self) {
        // The RPC server has drained (its shutdown future fired); now flush and close the WAL.
        let _ = self.rpc.await;
        self.heartbeat.abort();
        self.node.shutdown().await;
    }
}

async fn start_node(
    state: &State,
    flags: &NodeFlags,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<RunningNode> {
    let node_dir = state.data_dir.join("nodes").join(&flags.node_id);
    let identity = NodeIdentity::load_or_create(&node_dir).context("loading node certificate")?;
    let mut config = NodeConfig::new(flags.node_id.clone(), node_dir.join("wal"));
    config.upload_bytes = flags.upload_bytes;
    config.upload_interval = Duration::from_millis(flags.upload_interval_ms);
    config.tail_cache_bytes = flags.tail_cache_bytes;
    config.wal.segment_bytes = flags.wal_segment_bytes;
    config.multipart_threshold_bytes = flags.multipart_threshold_bytes;
    config.multipart_part_bytes = flags.multipart_part_bytes;
    config.multipart_concurrency = flags.multipart_concurrency;
    config.gc_interval = Duration::from_millis(flags.gc_interval_ms);
    config.gc_grace = Duration::from_millis(flags.gc_grace_ms);
    config.gc_max_objects_per_run = flags.gc_max_objects_per_run;
    let node = StorageNode::open(config, state.store.clone(), state.objects.clone())
        .await
        .context("opening the storage node")?;
    let server = RpcServer::bind(flags.node_rpc_addr, &identity, node.clone())
        .context("starting node RPC")?;
    let rpc_addr = server.local_addr().context("node RPC address")?;
    let info = NodeInfo {
        id: flags.node_id.clone(),
        rpc_addr: rpc_addr.to_string(),
        cert_der: identity.cert_der.clone(),
        heartbeat_ms: now_ms(),
    };
    state
        .store
        .register_node(&info)
        .await
        .context("registering the node")?;
    info!(node = %info.id, %rpc_addr, "storage node serving");
    let store = state.store.clone();
    let node_id = flags.node_id.clone();
    let heartbeat = tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = store.heartbeat_node(&node_id, now_ms()).await {
                warn!("node heartbeat failed: {e}");
            }
        }
    });
    let rpc = tokio::spawn(server.serve(stop));
    Ok(RunningNode {
        id: flags.node_id.clone(),
        node,
        rpc,
        heartbeat,
    })
}

/// Binds the gateway's Kafka listener; `local` is a storage node in this process, called
/// directly instead of over QUIC.
async fn bind_gateway(
    state: &State,
    flags: &GatewayFlags,
    tenant: &DevTenant,
    local: Option<&RunningNode>,
) -> Result<(Arc<Gateway>, TcpListener)> {
    let listener = TcpListener::bind(flags.kafka_addr)
        .await
        .with_context(|| format!("binding the Kafka listener on {}", flags.kafka_addr))?;
    let bound = listener.local_addr()?;
    let advertised = flags
        .advertised_addr
        .clone()
        .unwrap_or_else(|| bound.to_string());
    let (host, port) = advertised
        .rsplit_once(':')
        .and_then(|(h, p)| {
            Some((
                h.trim_matches(['[', ']']).to_string(),
                p.parse::<u16>().ok()?,
            ))
        })
        .with_context(|| format!("--advertised-addr {advertised:?} is not host:port"))?;
    let auth = Authenticator::new(
        state.store.clone(),
        state.sealer.clone(),
        AuthConfig {
            region: state.region.clone(),
            default_cluster: tenant.cluster.id,
            max_clock_skew_ms: 15 * 60 * 1000,
        },
    );
    let mut config = GatewayConfig::new(host, port);
    config.broker_id = flags.broker_id;
    config.max_frame_bytes = flags.max_frame_bytes;
    config.max_connections = flags.max_connections;
    config.gateway_id = format!("gateway-{}", flags.broker_id);
    // One gateway per dev process: it may meter cluster- and partition-hours.
    config.meter_cluster_hours = true;
    config.cluster_domain = flags.cluster_domain.clone();
    config.tls_dir = Some(state.data_dir.join("tls"));
    let tls = tls_listeners(flags, tenant.cluster.id);
    if !tls.is_empty() {
        // The gateway then binds every listener itself, the plaintext one on the port found
        // here (released just before, in `serve_kafka`).
        let mut plain = ListenerConfig::plaintext(
            bound,
            vec![SaslFamily::Iam, SaslFamily::Plain, SaslFamily::Scram],
        );
        plain.default_cluster = Some(tenant.cluster.id);
        plain.advertised_port = Some(port);
        config.listeners = std::iter::once(plain).chain(tls).collect();
    }
    let quic = QuicNodeDirectory::new(state.store.clone()).context("starting the QUIC client")?;
    let nodes: Arc<dyn NodeDirectory> = match local {
        Some(n) => Arc::new(WithLocalNode::new(n.id.clone(), n.node.clone(), quic)),
        None => Arc::new(quic),
    };
    let topic_config = TopicServiceConfig {
        max_partitions_per_cluster: flags.max_partitions_per_cluster,
        ..TopicServiceConfig::default()
    };
    topic_config
        .validate()
        .map_err(|e| anyhow::anyhow!("topic settings: {e}"))?;
    let topics = Arc::new(TopicService::with_config(state.store.clone(), topic_config));
    // One gateway per process: a second set would be a bug, and the first keeps counting.
    let _ = state.counters.topics.set(topics.clone());
    let gateway = Gateway::new(config, state.store.clone(), Arc::new(auth), topics, nodes)
        .context("gateway settings")?;
    Ok((Arc::new(gateway), listener))
}

/// The TLS listeners the flags ask for, each defaulting to the dev cluster.
fn tls_listeners(flags: &GatewayFlags, cluster: uuid::Uuid) -> Vec<ListenerConfig> {
    let tls = || TlsSettings {
        cert_chain: flags.tls_cert.clone(),
        key: flags.tls_key.clone(),
        client_ca: None,
    };
    let mut out = Vec::new();
    if let Some(addr) = flags.kafka_iam_addr {
        out.push(ListenerConfig {
            tls: Some(tls()),
            ..ListenerConfig::iam(addr)
        });
    }
    if let Some(addr) = flags.kafka_scram_addr {
        out.push(ListenerConfig {
            tls: Some(tls()),
            ..ListenerConfig::scram(addr)
        });
    }
    if let (Some(addr), Some(ca)) = (flags.kafka_mtls_addr, &flags.tls_client_ca) {
        out.push(ListenerConfig {
            tls: Some(TlsSettings {
                client_ca: Some(ca.clone()),
                ..tls()
            }),
            ..ListenerConfig::mtls(addr, ca.clone())
        });
    }
    for l in &mut out {
        l.default_cluster = Some(cluster);
    }
    out
}

/// Serves Kafka: on the one plaintext listener, or on every configured listener when TLS ones
/// were asked for (their bound addresses are printed).
async fn serve_kafka(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<()> {
    if gateway.config().listeners.is_empty() {
        return gateway
            .serve(listener, shutdown.wait())
            .await
            .context("serving Kafka");
    }
    drop(listener);
    let bound = gateway
        .bind_listeners()
        .await
        .context("binding the Kafka listeners")?;
    for l in &bound {
        println!("  kafka listener: {}", l.local_addr());
    }
    gateway
        .serve_listeners(bound, shutdown.wait())
        .await
        .context("serving Kafka")
}

fn print_banner(listener: &TcpListener, state: &State, tenant: &DevTenant) {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let creds = tenant.credentials_path.display();
    let region = &state.region;
    let key = &tenant.access_key_id;
    println!(
        "Fjord is running.
  bootstrap: {addr}
  security protocol: SASL_PLAINTEXT (mechanisms AWS_MSK_IAM, OAUTHBEARER, PLAIN)
  region: {region}
  cluster: {cluster} ({cluster_id})
  credentials: {creds} (profile fjord, access key {key})

confluent-kafka + aws-msk-iam-sasl-signer-python:
  AWS_SHARED_CREDENTIALS_FILE={creds} AWS_PROFILE=fjord python3 - <<'PY'
  from confluent_kafka import Producer
  from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
  def token(_):
      tok, expiry_ms = MSKAuthTokenProvider.generate_auth_token('{region}')
      return tok, expiry_ms / 1000
  p = Producer({{'bootstrap.servers': '{addr}', 'security.protocol': 'SASL_PLAINTEXT',
                'sasl.mechanism': 'OAUTHBEARER', 'oauth_cb': token}})
  p.produce('my-topic', b'hello'); p.flush()
  PY

kcat (PLAIN: username = access key id, password = secret from the credentials file):
  kcat -b {addr} -X security.protocol=SASL_PLAINTEXT -X sasl.mechanism=PLAIN \\
       -X sasl.username={key} -X sasl.password=<secret> -L
",
        cluster = tenant.cluster.name,
        cluster_id = tenant.cluster.id,
    );
}

/// Creates (or reuses) the dev tenant, then serves Kafka until `shutdown`, draining in-flight
/// requests before returning.
async fn serve_gateway(state: &State, flags: &GatewayFlags, shutdown: Shutdown) -> Result<()> {
    let tenant = state.dev_tenant().await?;
    let (gateway, listener) = bind_gateway(state, flags, &tenant, None).await?;
    print_banner(&listener, state, &tenant);
    serve_kafka(gateway, listener, shutdown).await
}

/// Binds the control plane's listener and serves it on a task until `shutdown`; returns its
/// address.
async fn start_control_plane(
    state: &State,
    flags: &ControlPlaneFlags,
    topics: Arc<TopicService>,
    default_bootstrap: String,
    shutdown: Shutdown,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let config = ControlPlaneConfig {
        region: state.region.clone(),
        bootstrap_brokers: flags.bootstrap_brokers.clone().unwrap_or(default_bootstrap),
        ..ControlPlaneConfig::default()
    };
    let cp = ControlPlane::new(config, state.store.clone(), state.sealer.clone(), topics)
        .map_err(|e| anyhow::anyhow!("control plane settings: {e}"))?;
    let listener = TcpListener::bind(flags.control_plane_addr)
        .await
        .with_context(|| format!("binding the control plane to {}", flags.control_plane_addr))?;
    let addr = listener.local_addr().context("control plane address")?;
    let task = tokio::spawn(async move {
        if let Err(e) = cp.serve(listener, shutdown.wait()).await {
            warn!("control plane stopped: {e}");
        }
    });
    info!(%addr, "control plane serving");
    Ok((addr, task))
}

/// `fjord dev`: gateway + storage node + control plane + dev tenant in one process, talking
/// over QUIC.
pub async fn run_dev(args: DevArgs) -> Result<()> {
    let shutdown = Shutdown::on_signals();
    let state = State::open(&args.state).await?;
    let _usr1 = state.counters.report_on_sigusr1();
    let (node_stop_tx, node_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let node = start_node(&state, &args.node, async move {
        let _ = node_stop_rx.await;
    })
    .await?;
    let tenant = state.dev_tenant().await?;
    // In one process the gateway calls its node directly, unless asked to measure the QUIC
    // hop that separate gateways and nodes take.
    let local = (!args.node_over_quic).then_some(&node);
    let (gateway, listener) = bind_gateway(&state, &args.gateway, &tenant, local).await?;
    // GetBootstrapBrokers: each cluster's own name on the TLS IAM listener when clusters have
    // names (as MSK answers), else the plaintext listener every cluster shares.
    let default_bootstrap = match (&args.gateway.cluster_domain, args.gateway.kafka_iam_addr) {
        (Some(domain), Some(iam)) if iam.port() != 0 => format!(
            "{{cluster_id}}.kafka.{{region}}.{domain}:{port}",
            port = iam.port()
        ),
        _ => listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
    };
    let (cp_addr, cp_task) = start_control_plane(
        &state,
        &args.control,
        gateway.topics().clone(),
        default_bootstrap,
        shutdown.clone(),
    )
    .await?;
    print_banner(&listener, &state, &tenant);
    println!("  control plane: http://{cp_addr}");
    let served = serve_kafka(gateway, listener, shutdown).await;
    let _ = cp_task.await;
    // The gateway has drained; only now stop the node, so no in-flight request loses its node.
    let _ = node_stop_tx.send(());
    node.stop().await;
    info!("fjord dev stopped");
    state.counters.report("exit");
    served
}

/// `fjord gateway`.
pub async fn run_gateway(args: GatewayArgs) -> Result<()> {
    let shutdown = Shutdown::on_signals();
    let state = State::open(&args.state).await?;
    let _usr1 = state.counters.report_on_sigusr1();
    let served = serve_gateway(&state, &args.gateway, shutdown).await;
    state.counters.report("exit");
    served?;
    info!("gateway stopped");
    Ok(())
}

/// `fjord storage-node`.
pub async fn run_node(args: NodeArgs) -> Result<()> {
    let shutdown = Shutdown::on_signals();
    let state = State::open(&args.state).await?;
    let _usr1 = state.counters.report_on_sigusr1();
    let node = start_node(&state, &args.node, shutdown.wait()).await?;
    println!("storage node {} running", args.node.node_id);
    node.stop().await;
    info!("storage node stopped");
    state.counters.report("exit");
    Ok(())
}

/// `fjord control-plane`.
pub async fn run_control_plane(args: ControlPlaneArgs) -> Result<()> {
    let shutdown = Shutdown::on_signals();
    let state = State::open(&args.state).await?;
    let topics = Arc::new(TopicService::new(state.store.clone()));
    let default_bootstrap = format!("{{cluster_id}}.kafka.{}.fjord.localhost:9098", state.region);
    let (addr, task) =
        start_control_plane(&state, &args.control, topics, default_bootstrap, shutdown).await?;
    println!("control plane: http://{addr}");
    let _ = task.await;
    info!("control plane stopped");
    Ok(())
}
