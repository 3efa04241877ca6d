//! The gateway's per-request wire work on the data path, through the functions it runs.
//!
//! Produce requests (v9, the first flexible version) carry real v2 record batches from
//! kafka-protocol's encoder, 16 records of 1 KiB each (~16 KiB) per partition: one partition
//! (`1p`) and eight partitions of one topic (`8p`).
//!
//! Throughputs of `produce_request/*` are frame bytes per second (the records are not copied,
//! only sliced); of `fetch_response/encode`, record bytes per second (they are copied once).
//!
//! - `produce_request/pipeline_walk`: `pipeline::produce_partitions`, which every frame goes
//!   through to find the partitions a produce writes (request prefix, header, wire walk).
//! - `produce_request/quota_walk`: `quota::wire::produce_partitions` over the body, which the
//!   ingress quotas run on every produce.
//! - `produce_request/decode`: `frame::Prefix::parse`, the request header decode and
//!   `request::decode::<ProduceRequest>`, as the request core and the produce handler do.
//! - `produce_request/all`: the three in a row: the whole decode cost of one produce frame.
//! - `produce_response/encode`: `frame::encode_response` of the ProduceResponse.
//! - `fetch_response/encode/v{12,16}`: `frame::encode_response` of a FetchResponse of 4
//!   partitions × 256 KiB of batches (1 MiB of records held as `Bytes`), by topic name (v12)
//!   and by topic id (v16).
//! - `fetch_response_quota_walk/v{12,16}`: `quota::wire::fetch_partitions` over that frame,
//!   which the egress quotas run on every fetch response.
//!
//! Setup failures abort the benchmark, hence the `expect`s.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fjord_gateway::frame::{encode_response, response_header_version, Prefix};
use fjord_gateway::quota::wire;
use fjord_gateway::request::decode;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, FetchResponse, ProduceRequest, ProduceResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const PRODUCE_VERSION: i16 = 9;
const NOW_MS: i64 = 1_795_654_923_000;
const TOPIC: &str = "bench-topic";

/// Incompressible bytes (xorshift).
fn payload(len: usize, seed: u64) -> Bytes {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// One uncompressed v2 batch of `count` × 1 KiB records, as a non-idempotent producer sends it.
fn encode_batch(count: usize, base_offset: i64, seed: u64) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: base_offset + i as i64,
            // offset - sequence constant keeps one batch; base sequence -1: not idempotent.
            sequence: i as i32 - 1,
            timestamp: NOW_MS + i as i64,
            key: Some(Bytes::from(format!("key-{i:04}"))),
            value: Some(payload(1024, seed * 1000 + i as u64)),
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
    .expect("encode a record batch");
    buf.freeze()
}

/// A Produce frame (the bytes after the size prefix) writing one batch to each of
/// `partitions` partitions, as librdkafka sends it.
fn produce_frame(partitions: i32) -> Bytes {
    let data = (0..partitions)
        .map(|p| {
            PartitionProduceData::default()
                .with_index(p)
                .with_records(Some(encode_batch(16, 0, p as u64 + 1)))
        })
        .collect();
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_data(data)]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(PRODUCE_VERSION)
        .with_correlation_id(42)
        .with_client_id(Some(StrBytes::from_static_str("rdkafka")));
    let mut buf = BytesMut::new();
    header
        .encode(
            &mut buf,
            ApiKey::Produce.request_header_version(PRODUCE_VERSION),
        )
        .expect("encode the request header");
    req.encode(&mut buf, PRODUCE_VERSION)
        .expect("encode the request");
    buf.freeze()
}

/// What the request core does before the handler: prefix, header, then the body decode.
fn decode_produce(frame: &Bytes) -> (i32, ProduceRequest) {
    let prefix = Prefix::parse(frame).expect("prefix");
    let api = ApiKey::try_from(prefix.api_key).expect("a known API");
    let mut body = frame.clone();
    let header = RequestHeader::decode(&mut body, api.request_header_version(prefix.api_version))
        .expect("header");
    let req = decode::<ProduceRequest>(api, prefix.api_version, &mut body).expect("request");
    (header.correlation_id, req)
}

/// The produce body (after the request header) inside `frame`.
fn produce_body(frame: &Bytes) -> Bytes {
    let mut body = frame.clone();
    RequestHeader::decode(
        &mut body,
        ApiKey::Produce.request_header_version(PRODUCE_VERSION),
    )
    .expect("header");
    body
}

fn produce_request(c: &mut Criterion) {
    let mut g = c.benchmark_group("produce_request");
    for partitions in [1, 8] {
        let frame = produce_frame(partitions);
        let body = produce_body(&frame);
        let name = format!("{partitions}p_{}KiB", frame.len() >> 10);
        // The fixtures are what the gateway would accept.
        let parts = fjord_gateway::pipeline::produce_partitions(&frame).expect("walkable");
        assert_eq!(parts.len(), partitions as usize);
        assert_eq!(
            decode_produce(&frame).1.topic_data[0].partition_data.len(),
            parts.len()
        );
        g.throughput(Throughput::Bytes(frame.len() as u64));

        g.bench_function(BenchmarkId::new("pipeline_walk", &name), |b| {
            b.iter(|| fjord_gateway::pipeline::produce_partitions(black_box(&frame)))
        });
        g.bench_function(BenchmarkId::new("quota_walk", &name), |b| {
            b.iter(|| {
                let mut bytes = 0usize;
                let parsed =
                    wire::produce_partitions(black_box(&body), PRODUCE_VERSION, |_, _, n| {
                        bytes += n
                    });
                (parsed, bytes)
            })
        });
        g.bench_function(BenchmarkId::new("decode", &name), |b| {
            b.iter(|| decode_produce(black_box(&frame)))
        });
        g.bench_function(BenchmarkId::new("all", &name), |b| {
            b.iter(|| {
                let parts = fjord_gateway::pipeline::produce_partitions(black_box(&frame));
                let mut bytes = 0usize;
                wire::produce_partitions(&body, PRODUCE_VERSION, |_, _, n| bytes += n);
                (parts, bytes, decode_produce(&frame))
            })
        });
    }
    g.finish();
}

/// The response the produce handler builds for `partitions` successful partitions.
fn produce_response(partitions: i32) -> ProduceResponse {
    let parts = (0..partitions)
        .map(|p| {
            PartitionProduceResponse::default()
                .with_index(p)
                .with_error_code(0)
                .with_base_offset(1_000_000 + i64::from(p) * 16)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(0)
                .with_error_message(None)
        })
        .collect();
    ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partition_responses(parts)])
}

fn produce_response_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("produce_response");
    for partitions in [1, 8] {
        let resp = produce_response(partitions);
        g.bench_function(BenchmarkId::new("encode", format!("{partitions}p")), |b| {
            b.iter(|| encode_response(ApiKey::Produce, PRODUCE_VERSION, 42, black_box(&resp)))
        });
    }
    g.finish();
}

/// The response the fetch handler builds: 4 partitions, each 16 batches of ~16 KiB (the
/// storage node's bytes, shared, not copied).
fn fetch_response(version: i16) -> FetchResponse {
    let topic_id = uuid::Uuid::from_u128(0xf10d);
    let partitions = (0..4)
        .map(|p| {
            let mut records = BytesMut::new();
            for batch in 0..16 {
                records.extend_from_slice(&encode_batch(16, batch * 16, p * 100 + batch as u64));
            }
            PartitionData::default()
                .with_partition_index(p as i32)
                .with_error_code(0)
                .with_high_watermark(256)
                .with_last_stable_offset(256)
                .with_log_start_offset(0)
                .with_records(Some(records.freeze()))
        })
        .collect();
    let mut topic = FetchableTopicResponse::default().with_partitions(partitions);
    topic = if version >= 13 {
        topic.with_topic_id(topic_id)
    } else {
        topic.with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
    };
    FetchResponse::default().with_responses(vec![topic])
}

fn fetch_response_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("fetch_response");
    let mut frames = Vec::new();
    for version in [12i16, 16] {
        let resp = fetch_response(version);
        let records: usize = resp.responses[0]
            .partitions
            .iter()
            .filter_map(|p| p.records.as_ref())
            .map(Bytes::len)
            .sum();
        g.throughput(Throughput::Bytes(records as u64));
        g.bench_function(BenchmarkId::new("encode", format!("v{version}")), |b| {
            b.iter(|| encode_response(ApiKey::Fetch, version, 42, black_box(&resp)))
        });
        let frame = encode_response(ApiKey::Fetch, version, 42, &resp).expect("encodes");
        frames.push((version, records, frame));
    }
    g.finish();
    // The walk skips the record bytes, so a byte throughput would say nothing: time only.
    let mut g = c.benchmark_group("fetch_response_quota_walk");
    for (version, records, frame) in &frames {
        let version = *version;
        let hv = response_header_version(ApiKey::Fetch, version);
        let mut seen = 0usize;
        wire::fetch_partitions(frame, version, hv, |_, _, n| seen += n).expect("walkable");
        assert_eq!(seen, *records, "the walk finds every partition's records");
        g.bench_function(BenchmarkId::from_parameter(format!("v{version}")), |b| {
            b.iter(|| {
                let mut bytes = 0usize;
                let parsed =
                    wire::fetch_partitions(black_box(frame), version, hv, |_, _, n| bytes += n);
                (parsed, bytes)
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
}

// criterion_group! defines an undocumented `pub fn`; missing_docs is on workspace-wide.
#[allow(missing_docs)]
mod group {
    use super::*;

    criterion_group! {
        name = benches;
        config = config();
        targets = produce_request, produce_response_encode, fetch_response_encode
    }
}
criterion_main!(group::benches);
