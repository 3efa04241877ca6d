//! WAL append + fdatasync, through the WAL's public API and its real writer thread.
//!
//! The log lives in a temporary directory (`FJORD_BENCH_DIR` if set, else the system temp
//! directory): for the figures to mean anything it must be on the disk the data directory
//! would use, not a tmpfs, where `fdatasync` costs nothing.
//!
//! - `wal/append_sync/{16KiB,1MiB}`: one producer: reserve a slot, append one record, await
//!   its ticket (which resolves after the writer's `fdatasync`). One sync per append.
//! - `wal/group_commit/{8,64}x16KiB`: that many appends enqueued back to back from separate
//!   permits, as the node does for the partitions of concurrent produces, then all tickets
//!   awaited. The writer shares syncs between whatever is queued when it wakes; the number
//!   of syncs it actually took per round is printed after the benchmark.
//!
//! Setup failures abort the benchmark, hence the `expect`s.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fjord_storage_node::wal::{Wal, WalConfig, WalRecord};
use tokio::runtime::Runtime;

/// Where the temporary WAL directories go.
fn bench_root() -> PathBuf {
    std::env::var_os("FJORD_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// Incompressible bytes (xorshift), so nothing below the WAL can shortcut them.
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

fn record(partition: i32, batches: Bytes) -> WalRecord {
    WalRecord {
        topic_id: uuid::Uuid::from_u128(0xf10d),
        partition,
        epoch: 1,
        base_offset: 0,
        last_offset: 15,
        batches,
    }
}

/// A fresh, empty WAL in its own temporary directory (kept alive by the returned guard).
fn open_wal(rt: &Runtime) -> (tempfile::TempDir, Wal) {
    let dir = tempfile::Builder::new()
        .prefix("fjord-wal-bench")
        .tempdir_in(bench_root())
        .expect("create the benchmark's WAL directory");
    let (wal, recovered) = rt
        .block_on(Wal::open(dir.path(), WalConfig::default()))
        .expect("open the WAL");
    assert!(recovered.is_empty(), "a fresh WAL recovers nothing");
    (dir, wal)
}

fn append_sync(c: &mut Criterion) {
    let rt = Runtime::new().expect("tokio runtime");
    let mut group = c.benchmark_group("wal/append_sync");
    for (name, len) in [("16KiB", 16 << 10), ("1MiB", 1 << 20)] {
        let (_dir, wal) = open_wal(&rt);
        let batches = payload(len, 7);
        group.throughput(Throughput::Bytes(len as u64));
        let (wal, batches) = (&wal, &batches);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&rt).iter(|| async move {
                let permit = wal.reserve().await.expect("reserve a WAL slot");
                let ticket = permit.append(vec![record(0, batches.clone())]);
                ticket.durable().await.expect("append is durable")
            })
        });
        rt.block_on(wal.close()).expect("close the WAL");
    }
    group.finish();
}

fn group_commit(c: &mut Criterion) {
    let rt = Runtime::new().expect("tokio runtime");
    let mut group = c.benchmark_group("wal/group_commit");
    for appends in [8usize, 64] {
        let (_dir, wal) = open_wal(&rt);
        let batches: Vec<Bytes> = (0..appends)
            .map(|i| payload(16 << 10, i as u64 + 1))
            .collect();
        group.throughput(Throughput::Bytes((appends * (16 << 10)) as u64));
        let mut rounds = 0u64;
        let fsyncs_before = wal.fsync_count();
        group.bench_function(
            BenchmarkId::from_parameter(format!("{appends}x16KiB")),
            |b| {
                b.to_async(&rt).iter(|| {
                    rounds += 1;
                    let (wal, batches) = (&wal, &batches);
                    async move {
                        let mut tickets = Vec::with_capacity(batches.len());
                        for (i, bytes) in batches.iter().enumerate() {
                            let permit = wal.reserve().await.expect("reserve a WAL slot");
                            tickets.push(permit.append(vec![record(i as i32, bytes.clone())]));
                        }
                        for ticket in tickets {
                            ticket.durable().await.expect("append is durable");
                        }
                    }
                })
            },
        );
        let fsyncs = wal.fsync_count() - fsyncs_before;
        println!(
            "wal/group_commit/{appends}x16KiB: {fsyncs} fdatasyncs over {rounds} rounds \
             ({:.2} per round of {appends} appends)",
            fsyncs as f64 / rounds.max(1) as f64
        );
        rt.block_on(wal.close()).expect("close the WAL");
    }
    group.finish();
}

fn config() -> Criterion {
    // fdatasync takes milliseconds: few samples, a short window, no plots.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .without_plots()
}

// criterion_group! defines an undocumented `pub fn`; missing_docs is on workspace-wide.
#[allow(missing_docs)]
mod group {
    use super::*;

    criterion_group! {
        name = benches;
        config = config();
        targets = append_sync, group_commit
    }
}
criterion_main!(group::benches);
