//! Topic creation and idle connections over a raw Kafka connection.
//!
//! Why not rdkafka's `AdminClient`: it polls only its own result queue, never the main queue
//! where librdkafka delivers OAUTHBEARER token-refresh events, so it can never log in with MSK
//! IAM. Over plain TCP (PLAINTEXT, SASL_PLAINTEXT) this module speaks the few requests it needs
//! itself (SaslHandshake, SaslAuthenticate, CreateTopics) with `kafka-protocol`. Over TLS it
//! uses `AdminClient` for PLAINTEXT-less SSL and SASL PLAIN; with SASL_SSL + OAUTHBEARER (MSK)
//! topics must already exist, and the runner checks that through the producer's metadata.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use tracing::{debug, info};

use crate::connection::{Auth, Connection};
use crate::LoadtestError;

/// Responses larger than this are refused rather than allocated.
const MAX_RESPONSE: usize = 64 << 20;
/// Kafka's TOPIC_ALREADY_EXISTS.
const TOPIC_ALREADY_EXISTS: i16 = 36;
/// Topics per CreateTopics request, so a 10,000-partition workload does not make one huge one.
const TOPICS_PER_REQUEST: usize = 100;

/// One blocking Kafka connection that speaks just enough of the protocol to log in and create
/// topics.
pub struct RawConn {
    addr: String,
    stream: TcpStream,
    correlation_id: i32,
}

impl RawConn {
    /// Connects to `addr` (plain TCP) and authenticates as `auth` says.
    pub fn connect(addr: &str, auth: &Auth) -> Result<RawConn, LoadtestError> {
        let stream = TcpStream::connect(addr).map_err(|e| admin_err(addr, e))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| admin_err(addr, e))?;
        stream.set_nodelay(true).map_err(|e| admin_err(addr, e))?;
        let mut conn = RawConn {
            addr: addr.to_string(),
            stream,
            correlation_id: 0,
        };
        match auth {
            Auth::None => {}
            Auth::Plain { username, password } => {
                conn.authenticate("PLAIN", format!("\0{username}\0{password}").into_bytes())?
            }
            Auth::MskIam(source) => {
                let token = source
                    .token(SystemTime::now())
                    .map_err(|e| admin_err(addr, format!("signing MSK IAM token: {e}")))?;
                let payload = fjord_tenancy::signer::oauthbearer_initial_response(&token.token);
                conn.authenticate("OAUTHBEARER", payload)?
            }
        }
        Ok(conn)
    }

    fn authenticate(&mut self, mechanism: &str, payload: Vec<u8>) -> Result<(), LoadtestError> {
        let hs: SaslHandshakeResponse = self.call(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_string(mechanism.into())),
        )?;
        if hs.error_code != 0 {
            return Err(admin_err(
                &self.addr,
                format!(
                    "SASL mechanism {mechanism} refused (error {}); broker offers {:?}",
                    hs.error_code,
                    hs.mechanisms.iter().map(|m| m.as_str()).collect::<Vec<_>>()
                ),
            ));
        }
        let auth: SaslAuthenticateResponse = self.call(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(payload)),
        )?;
        if auth.error_code != 0 {
            return Err(admin_err(
                &self.addr,
                format!(
                    "{mechanism} authentication failed (error {}): {}",
                    auth.error_code,
                    auth.error_message.as_deref().unwrap_or("")
                ),
            ));
        }
        Ok(())
    }

    /// Sends one request and decodes its response.
    fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> Result<Resp, LoadtestError> {
        let addr = self.addr.clone();
        let err = |m: String| admin_err(&addr, format!("{api:?} v{version}: {m}"));
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("fjord-loadtest")));
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0; 4]);
        header
            .encode(&mut buf, api.request_header_version(version))
            .map_err(|e| err(e.to_string()))?;
        body.encode(&mut buf, version)
            .map_err(|e| err(e.to_string()))?;
        let len = u32::try_from(buf.len() - 4).map_err(|e| err(e.to_string()))?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.stream
            .write_all(&buf)
            .map_err(|e| err(e.to_string()))?;
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .map_err(|e| err(e.to_string()))?;
        let size = u32::from_be_bytes(size) as usize;
        if size > MAX_RESPONSE {
            return Err(err(format!("response of {size} bytes is too large")));
        }
        let mut payload = vec![0u8; size];
        self.stream
            .read_exact(&mut payload)
            .map_err(|e| err(e.to_string()))?;
        let mut bytes = Bytes::from(payload);
        let header = ResponseHeader::decode(&mut bytes, api.response_header_version(version))
            .map_err(|e| err(e.to_string()))?;
        if header.correlation_id != self.correlation_id {
            return Err(err(format!(
                "correlation id {} in response to {}",
                header.correlation_id, self.correlation_id
            )));
        }
        Resp::decode(&mut bytes, version).map_err(|e| err(e.to_string()))
    }
}

fn admin_err(addr: &str, e: impl std::fmt::Display) -> LoadtestError {
    LoadtestError::Admin {
        addr: addr.to_string(),
        message: e.to_string(),
    }
}

/// What topic creation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// The topics were created (or already existed).
    Created,
    /// Creation is impossible on this connection; the topics must already exist.
    MustExist,
}

/// Creates `topics` with `partitions` each; a topic that already exists is fine.
pub fn create_topics(
    conn: &Connection,
    topics: &[String],
    partitions: u32,
) -> Result<Created, LoadtestError> {
    let partitions = i32::try_from(partitions)
        .map_err(|_| LoadtestError::InvalidWorkload("partitionsPerTopic is too large".into()))?;
    if conn.args.security_protocol.is_tls() {
        if conn.token_source().is_some() {
            info!("SASL_SSL + OAUTHBEARER: not creating topics (rdkafka's AdminClient cannot refresh tokens); they must exist");
            return Ok(Created::MustExist);
        }
        return create_with_admin_client(conn, topics, partitions).map(|()| Created::Created);
    }
    let mut raw = RawConn::connect(conn.first_bootstrap(), &conn.auth)?;
    for chunk in topics.chunks(TOPICS_PER_REQUEST) {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(60_000)
            .with_topics(
                chunk
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.clone())))
                            .with_num_partitions(partitions)
                            .with_replication_factor(-1)
                    })
                    .collect(),
            );
        let resp: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 5, &req)?;
        for r in resp.topics {
            if r.error_code != 0 && r.error_code != TOPIC_ALREADY_EXISTS {
                return Err(LoadtestError::CreateTopic {
                    topic: r.name.0.to_string(),
                    code: r.error_code,
                    message: r.error_message.map(|m| m.to_string()).unwrap_or_default(),
                });
            }
            debug!(topic = %r.name.0.as_str(), code = r.error_code, "topic created");
        }
    }
    Ok(Created::Created)
}

fn create_with_admin_client(
    conn: &Connection,
    topics: &[String],
    partitions: i32,
) -> Result<(), LoadtestError> {
    let admin: AdminClient<DefaultClientContext> = conn.client_config().create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(-1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    for result in futures::executor::block_on(admin.create_topics(&new, &opts))? {
        match result {
            Ok(_) => {}
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(LoadtestError::CreateTopic {
                    topic,
                    code: code as i16,
                    message: code.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// Opens `n` authenticated connections and returns them, to be kept open (idle) for the run.
pub fn open_idle_connections(conn: &Connection, n: u32) -> Result<Vec<RawConn>, LoadtestError> {
    if n == 0 {
        // Most workloads: nothing to open, whatever the endpoint's protocol.
        return Ok(Vec::new());
    }
    if conn.args.security_protocol.is_tls() {
        return Err(LoadtestError::Config(
            "idleConnections needs a PLAINTEXT or SASL_PLAINTEXT endpoint (no TLS in the raw client)"
                .into(),
        ));
    }
    (0..n)
        .map(|_| RawConn::connect(conn.first_bootstrap(), &conn.auth))
        .collect()
}
