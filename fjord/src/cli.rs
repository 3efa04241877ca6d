//! Command-line flags. Every flag also reads a `FJORD_…` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Fjord: a serverless, Kafka-compatible streaming service with MSK IAM authentication.
#[derive(Debug, Parser)]
#[command(name = "fjord", version, about, long_about = None)]
pub struct Cli {
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "FJORD_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: LogFormat,

    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The roles and tools of the `fjord` binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process on embedded defaults: a gateway, one storage node (reached over
    /// QUIC on loopback, as in a multi-process deployment) and a dev account with credentials.
    Dev(DevArgs),
    /// A gateway: the Kafka protocol server. Finds storage nodes through the shared metadata.
    Gateway(GatewayArgs),
    /// A storage node: WAL, tiering to object storage, fetch and group coordination.
    StorageNode(NodeArgs),
    /// The control plane: the MSK cluster API (CreateClusterV2, …), topics, principals, access
    /// keys, STS AssumeRole and usage, over HTTP with SigV4.
    ControlPlane(ControlPlaneArgs),
    /// Administrative tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// `fjord admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Creates the metadata tables (DynamoDB) or schema (SQLite) if they do not exist yet.
    /// Safe to run again.
    InitMetadata(InitMetadataArgs),
    /// Creates a tenant account with an administrator principal and access key, and appends
    /// the key to an AWS credentials file (as AWS Organizations creates accounts outside MSK).
    CreateAccount(crate::accounts::CreateAccountArgs),
}

/// `fjord admin init-metadata`.
#[derive(Debug, Args)]
pub struct InitMetadataArgs {
    /// Where state lives (only --metadata and --data-dir matter here).
    #[command(flatten)]
    pub state: StateArgs,
}

/// Flags every role shares: where state lives.
#[derive(Debug, Args, Clone)]
pub struct StateArgs {
    /// Data directory: SQLite metadata file, node WALs, the object-store directory (unless
    /// --object-store says otherwise), the dev credentials file and the secret-sealing key.
    #[arg(long, env = "FJORD_DATA_DIR", default_value = "./fjord-data")]
    pub data_dir: PathBuf,

    /// Metadata store: `sqlite:///path/file.sqlite`, or `dynamodb://<table-prefix>?region=…`
    /// (`&endpoint=…` for a DynamoDB-compatible endpoint; create the table once with
    /// `fjord admin init-metadata`). Defaults to `<data-dir>/metadata.sqlite`.
    #[arg(long, env = "FJORD_METADATA")]
    pub metadata: Option<String>,

    /// Object store for tiered data: a local directory path, `file:///path`, or
    /// `s3://bucket/prefix?region=…` (`&endpoint=…` for an S3-compatible endpoint,
    /// `&sse_kms_key_id=…` for SSE-KMS; credentials from the AWS environment). Defaults to
    /// `<data-dir>/objects`.
    #[arg(long, env = "FJORD_OBJECT_STORE")]
    pub object_store: Option<String>,

    /// AWS region name clients sign for (the MSK IAM signers put it in the credential scope).
    #[arg(long, env = "FJORD_REGION", default_value = "us-east-1")]
    pub region: String,

    /// KMS key (key id, key ARN, alias name or alias ARN) wrapping the secret-sealing key, so
    /// that every instance shares one key: the wrapped key is stored once in the object store
    /// (`_fjord/secret-sealing.key`) and unwrapped by KMS at each start. Without it the key is
    /// the file `<data-dir>/secret.key`, private to one instance (dev).
    #[arg(long, env = "FJORD_KMS_KEY_ID")]
    pub kms_key_id: Option<String>,

    /// KMS endpoint override (a KMS-compatible emulator); the regional AWS endpoint by default.
    #[arg(long, env = "FJORD_KMS_ENDPOINT", requires = "kms_key_id")]
    pub kms_endpoint: Option<String>,
}

/// Flags of the Kafka listener.
#[derive(Debug, Args, Clone)]
pub struct GatewayFlags {
    /// Address of the Kafka listener (SASL_PLAINTEXT: AWS_MSK_IAM, OAUTHBEARER, PLAIN). Port 0
    /// picks a free port; the bound address is printed.
    #[arg(long, env = "FJORD_KAFKA_ADDR", default_value = "127.0.0.1:9092")]
    pub kafka_addr: SocketAddr,

    /// `host:port` that Metadata responses advertise to clients. Defaults to the listener's
    /// bound address.
    #[arg(long, env = "FJORD_ADVERTISED_ADDR")]
    pub advertised_addr: Option<String>,

    /// Broker id this gateway announces in Metadata responses.
    #[arg(long, env = "FJORD_BROKER_ID", default_value_t = 1)]
    pub broker_id: i32,

    /// Largest Kafka request frame accepted from an authenticated client, in bytes. Larger
    /// frames close the connection. Must exceed the largest max.message.bytes a topic allows.
    #[arg(long, env = "FJORD_MAX_FRAME_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_frame_bytes: usize,

    /// Most concurrent client connections; further connections wait in the accept backlog.
    #[arg(long, env = "FJORD_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// TLS listener for the IAM mechanisms (AWS_MSK_IAM, OAUTHBEARER), as MSK's port 9098
    /// (e.g. `0.0.0.0:9098`). Off unless given; the plaintext `--kafka-addr` listener stays.
    #[arg(long, env = "FJORD_KAFKA_IAM_ADDR")]
    pub kafka_iam_addr: Option<SocketAddr>,

    /// TLS listener for SASL/SCRAM-SHA-512, as MSK's port 9096. Off unless given.
    #[arg(long, env = "FJORD_KAFKA_SCRAM_ADDR")]
    pub kafka_scram_addr: Option<SocketAddr>,

    /// Mutual-TLS listener (client certificates signed by --tls-client-ca), as MSK's port 9094.
    /// Off unless given.
    #[arg(long, env = "FJORD_KAFKA_MTLS_ADDR", requires = "tls_client_ca")]
    pub kafka_mtls_addr: Option<SocketAddr>,

    /// PEM certificate chain of the TLS listeners. Without --tls-cert/--tls-key a development
    /// CA and certificate are generated under `<data-dir>/tls` (trust `fjord-dev-ca.pem`).
    #[arg(long, env = "FJORD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "FJORD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA whose client certificates the mTLS listener accepts.
    #[arg(long, env = "FJORD_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,

    /// Domain of the per-cluster bootstrap names (`<cluster-uuid>.kafka.<region>.<domain>`)
    /// that TLS clients reach a cluster by (SNI).
    #[arg(long, env = "FJORD_CLUSTER_DOMAIN")]
    pub cluster_domain: Option<String>,

    /// How often usage records (bytes in/out, cluster- and partition-hours) are written, in
    /// milliseconds.
    #[arg(long, env = "FJORD_METERING_PERIOD_MS", default_value_t = 3_600_000)]
    pub metering_period_ms: u64,

    /// Partitions a cluster may have in total (MSK Serverless: 2,400). Raise it for tests such
    /// as the 10,000-partition benchmark.
    #[arg(
        long,
        env = "FJORD_MAX_PARTITIONS_PER_CLUSTER",
        default_value_t = 2_400
    )]
    pub max_partitions_per_cluster: i64,
}

/// Flags of a storage node.
#[derive(Debug, Args, Clone)]
pub struct NodeFlags {
    /// Stable id of this storage node (its WAL lives under `<data-dir>/nodes/<id>`).
    #[arg(long, env = "FJORD_NODE_ID", default_value = "node-1")]
    pub node_id: String,

    /// UDP address of the node's QUIC RPC endpoint that gateways dial (port 0 picks one; the
    /// bound address is registered in metadata).
    #[arg(long, env = "FJORD_NODE_RPC_ADDR", default_value = "127.0.0.1:0")]
    pub node_rpc_addr: SocketAddr,

    /// Upload WAL data to the object store once this many bytes are pending. Larger objects
    /// mean fewer object-store requests per GB; smaller ones shorten the WAL.
    #[arg(long, env = "FJORD_UPLOAD_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub upload_bytes: u64,

    /// Upload pending WAL data at least this often, in milliseconds, even below --upload-bytes.
    /// The WAL is fsynced before any ack, so this bounds how long data lives only on the
    /// node's disk, not whether it is durable.
    #[arg(long, env = "FJORD_UPLOAD_INTERVAL_MS", default_value_t = 10_000)]
    pub upload_interval_ms: u64,

    /// Objects of at least this many bytes are uploaded in parts (S3 multipart upload).
    #[arg(long, env = "FJORD_MULTIPART_THRESHOLD_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub multipart_threshold_bytes: u64,

    /// Size of one part of a multipart upload, in bytes (S3 allows 5 MiB to 5 GiB).
    #[arg(long, env = "FJORD_MULTIPART_PART_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub multipart_part_bytes: u64,

    /// Parts of one multipart upload in flight at once.
    #[arg(long, env = "FJORD_MULTIPART_CONCURRENCY", default_value_t = 4)]
    pub multipart_concurrency: usize,

    /// How often the node looks for objects under its prefix that no manifest references
    /// (left by a crash between upload and commit), in milliseconds.
    #[arg(long, env = "FJORD_GC_INTERVAL_MS", default_value_t = 600_000)]
    pub gc_interval_ms: u64,

    /// An unreferenced object younger than this (milliseconds) may still be on its way into
    /// the manifest and is kept.
    #[arg(long, env = "FJORD_GC_GRACE_MS", default_value_t = 3_600_000)]
    pub gc_grace_ms: u64,

    /// Objects one garbage-collection run checks at most.
    #[arg(long, env = "FJORD_GC_MAX_OBJECTS_PER_RUN", default_value_t = 1_000)]
    pub gc_max_objects_per_run: usize,

    /// Size at which the WAL starts a new segment file, in bytes. Only whole segments whose data
    /// is all in the object store are deleted, so smaller segments free disk sooner at the cost
    /// of more files.
    #[arg(long, env = "FJORD_WAL_SEGMENT_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub wal_segment_bytes: u64,

    /// Memory for recent batches served to tailing consumers, in bytes.
    #[arg(long, env = "FJORD_TAIL_CACHE_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub tail_cache_bytes: u64,
}

/// Flags of the control plane.
#[derive(Debug, Args, Clone)]
pub struct ControlPlaneFlags {
    /// Address of the control plane's HTTP API (SigV4, service `kafka`; `aws kafka
    /// --endpoint-url http://<addr>` and boto3 work against it).
    #[arg(
        long,
        env = "FJORD_CONTROL_PLANE_ADDR",
        default_value = "127.0.0.1:9080"
    )]
    pub control_plane_addr: SocketAddr,

    /// What GetBootstrapBrokers answers (`bootstrapBrokerStringSaslIam`): a template in which
    /// `{cluster}`, `{cluster_id}`, `{account}` and `{region}` are replaced. Unset, `fjord dev`
    /// answers `{cluster_id}.kafka.{region}.<cluster domain>:<port>` when it has a cluster
    /// domain and a TLS IAM listener on a fixed port, else its plaintext Kafka listener.
    #[arg(long, env = "FJORD_BOOTSTRAP_BROKERS")]
    pub bootstrap_brokers: Option<String>,
}

/// `fjord control-plane`.
#[derive(Debug, Args)]
pub struct ControlPlaneArgs {
    /// Where state lives.
    #[command(flatten)]
    pub state: StateArgs,
    /// The HTTP API.
    #[command(flatten)]
    pub control: ControlPlaneFlags,
}

/// `fjord dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where state lives.
    #[command(flatten)]
    pub state: StateArgs,
    /// The Kafka listener.
    #[command(flatten)]
    pub gateway: GatewayFlags,
    /// The storage node.
    #[command(flatten)]
    pub node: NodeFlags,
    /// The control plane.
    #[command(flatten)]
    pub control: ControlPlaneFlags,
    /// Send the gateway's calls to the storage node over QUIC on loopback, as separate gateway
    /// and node processes do, instead of calling it in-process (to measure that hop).
    #[arg(long, env = "FJORD_DEV_NODE_OVER_QUIC")]
    pub node_over_quic: bool,
}

/// `fjord gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Where state lives.
    #[command(flatten)]
    pub state: StateArgs,
    /// The Kafka listener.
    #[command(flatten)]
    pub gateway: GatewayFlags,
}

/// `fjord storage-node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Where state lives.
    #[command(flatten)]
    pub state: StateArgs,
    /// The storage node.
    #[command(flatten)]
    pub node: NodeFlags,
}
