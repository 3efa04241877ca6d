//! The record-batch work the node does on every produced partition, before the WAL append:
//! `partition::batch::validate` (header checks and the CRC-32C of each batch) and
//! `partition::batch::assign` (one copy of the bytes, then each header rewritten with its base
//! offset and leader epoch; with LogAppendTime also the timestamp and the CRC).
//!
//! Inputs are real v2 batches from kafka-protocol's encoder: 16 records of 1 KiB each
//! (a ~16 KiB batch, librdkafka's default `batch.size` region), and a 1 MiB partition payload of
//! 64 such batches.
//!
//! - `batch/validate/{16KiB,1MiB}`
//! - `batch/assign_create_time/{16KiB,1MiB}`: offsets only (the CRC does not cover them).
//! - `batch/assign_log_append_time/{16KiB,1MiB}`: offsets, timestamp and a new CRC.
//! - `batch/validate_assign/{16KiB,1MiB}`: both, as the produce path runs them.
//!
//! Setup failures abort the benchmark, hence the `expect`s.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fjord_storage_node::partition::batch;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const RECORDS_PER_BATCH: usize = 16;
const VALUE_BYTES: usize = 1024;
const NOW_MS: i64 = 1_795_654_923_000;

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

/// One uncompressed v2 batch of 16 × 1 KiB records, as a non-idempotent producer sends it.
fn encode_batch(seed: u64) -> Bytes {
    let records: Vec<Record> = (0..RECORDS_PER_BATCH)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // offset - sequence constant keeps one batch; base sequence -1: not idempotent.
            sequence: i as i32 - 1,
            timestamp: NOW_MS + i as i64,
            key: Some(Bytes::from(format!("key-{i:04}"))),
            value: Some(payload(VALUE_BYTES, seed * 1000 + i as u64)),
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

fn inputs() -> Vec<(&'static str, Bytes)> {
    let one = encode_batch(1);
    let mut many = BytesMut::new();
    for seed in 0..64 {
        many.extend_from_slice(&encode_batch(seed + 1));
    }
    vec![("16KiB", one), ("1MiB", many.freeze())]
}

fn batches(c: &mut Criterion) {
    let inputs = inputs();
    let limit = u32::MAX;
    for (name, buf) in &inputs {
        let headers = batch::validate(buf, limit).expect("the encoder's batches validate");
        assert_eq!(headers.len(), if *name == "16KiB" { 1 } else { 64 });
        let bytes = Throughput::Bytes(buf.len() as u64);

        let mut g = c.benchmark_group("batch/validate");
        g.throughput(bytes.clone());
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| batch::validate(black_box(buf), limit))
        });
        g.finish();

        let mut g = c.benchmark_group("batch/assign_create_time");
        g.throughput(bytes.clone());
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| batch::assign(black_box(buf), &headers, 1_000, 3, None))
        });
        g.finish();

        let mut g = c.benchmark_group("batch/assign_log_append_time");
        g.throughput(bytes.clone());
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| batch::assign(black_box(buf), &headers, 1_000, 3, Some(NOW_MS)))
        });
        g.finish();

        let mut g = c.benchmark_group("batch/validate_assign");
        g.throughput(bytes);
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let headers = batch::validate(black_box(buf), limit).expect("valid batches");
                batch::assign(buf, &headers, 1_000, 3, None)
            })
        });
        g.finish();
    }
    // The rewritten bytes must still be valid batches at the assigned offsets.
    for (_, buf) in &inputs {
        let headers = batch::validate(buf, limit).expect("valid batches");
        let out = batch::assign(buf, &headers, 1_000, 3, Some(NOW_MS));
        let rewritten = batch::validate(&out, limit).expect("rewritten batches validate");
        assert_eq!(rewritten[0].base_offset, 1_000);
    }
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
        targets = batches
    }
}
criterion_main!(group::benches);
