//! A minimal blocking Kafka client over a raw TCP socket, built on `kafka-protocol`, for tests
//! that must send exact bytes: replayed batches, garbage frames, hand-built SASL payloads.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One Kafka connection.
pub struct RawConn {
    stream: TcpStream,
    correlation_id: i32,
}

impl RawConn {
    /// Connects to `addr`.
    pub fn connect(addr: &str) -> RawConn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        RawConn {
            stream,
            correlation_id: 0,
        }
    }

    /// Writes bytes as they are (no framing).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        // The server may already have closed the connection; that is what some tests expect.
        let _ = self.stream.write_all(bytes);
    }

    /// True if the server closed the connection (read returns EOF or reset) within the timeout.
    pub fn closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue, // a response (e.g. an error) before closing
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    /// Encodes a request frame (size, header, body).
    pub fn frame<R: Encodable>(&mut self, api: ApiKey, version: i16, body: &R) -> Vec<u8> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("fjord-raw-test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api.request_header_version(version))
            .expect("encode header");
        body.encode(&mut buf, version).expect("encode body");
        let mut out = (buf.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&buf);
        out
    }

    /// Sends a request and decodes its response.
    pub fn call<R: Encodable, S: Decodable>(&mut self, api: ApiKey, version: i16, body: &R) -> S {
        let frame = self.frame(api, version, body);
        self.stream.write_all(&frame).expect("write request");
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .expect("read response size");
        let mut payload = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut payload).expect("read response");
        let mut bytes = Bytes::from(payload);
        let header = ResponseHeader::decode(&mut bytes, api.response_header_version(version))
            .expect("decode response header");
        assert_eq!(header.correlation_id, self.correlation_id, "correlation id");
        S::decode(&mut bytes, version).expect("decode response body")
    }

    /// SaslHandshake + SaslAuthenticate with `mechanism` and `auth_bytes`.
    pub fn authenticate(
        &mut self,
        mechanism: &str,
        auth_bytes: Vec<u8>,
    ) -> SaslAuthenticateResponse {
        let hs: SaslHandshakeResponse = self.call(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_string(mechanism.into())),
        );
        assert_eq!(
            hs.error_code, 0,
            "handshake for {mechanism}: {:?}",
            hs.mechanisms
        );
        self.call(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(auth_bytes)),
        )
    }

    /// Authenticates with PLAIN (access key id / secret) and asserts success.
    pub fn login_plain(&mut self, creds: &super::Credentials) {
        let payload = format!("\0{}\0{}", creds.access_key_id, creds.secret).into_bytes();
        let r = self.authenticate("PLAIN", payload);
        assert_eq!(r.error_code, 0, "PLAIN login: {:?}", r.error_message);
    }
}

/// One record batch (magic 2) with `count` records, for producer `producer_id` starting at
/// `sequence`.
pub fn batch(count: usize, producer_id: i64, producer_epoch: i16, sequence: i32) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if producer_id >= 0 {
                sequence + i as i32
            } else {
                -1
            },
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
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
    .expect("encode batch");
    buf.freeze()
}

/// A Produce v9 request of `records` to one partition.
pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let data = produce_request::PartitionProduceData::default()
        .with_index(partition)
        .with_records(Some(records));
    let topic_data = produce_request::TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.into())))
        .with_partition_data(vec![data]);
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic_data])
}
