//! Appending, group commit, backpressure, rotation, trim, close and poisoning.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::FutureExt;

use super::*;
use crate::wal::{WalError, MAX_BATCH_BYTES};

#[tokio::test]
async fn append_then_reopen_returns_records_in_order_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, recovered) = Wal::open(dir.path(), WalConfig::default()).await.unwrap();
    assert!(recovered.is_empty());
    assert!(seg(dir.path(), 1).exists());

    let mut expected = Vec::new();
    let mut ticket_ends = Vec::new();
    for t in 0..5u64 {
        let records: Vec<_> = (0..=t % 3)
            .map(|k| rec(t * 10 + k, 50 + (t * k) as usize))
            .collect();
        let pos = append(&wal, records.clone()).await;
        ticket_ends.push(pos);
        expected.extend(records);
    }
    // An empty append is durable at the current end.
    let empty = append(&wal, Vec::new()).await;
    assert_eq!(empty, *ticket_ends.last().unwrap());
    wal.close().await.unwrap();

    let (wal, recovered) = Wal::open(dir.path(), WalConfig::default()).await.unwrap();
    let records: Vec<_> = recovered.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(records, expected);
    let positions: Vec<_> = recovered.iter().map(|(p, _)| *p).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions must increase"
    );
    for end in &ticket_ends {
        assert!(
            positions.contains(end),
            "ticket position {end:?} is a record end"
        );
    }
    assert_eq!(positions.last(), ticket_ends.last());

    // Appending after recovery continues after the recovered records.
    let next = append(&wal, vec![rec(99, 10)]).await;
    assert!(next > *ticket_ends.last().unwrap());
    wal.close().await.unwrap();
    let (_wal, recovered) = Wal::open(dir.path(), WalConfig::default()).await.unwrap();
    assert_eq!(recovered.len(), expected.len() + 1);
    assert_eq!(recovered.last().unwrap(), &(next, rec(99, 10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_queued_behind_a_sync_share_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, entered, release) = Gate::new();
    let (wal, _) = Wal::open_with_hook(dir.path(), WalConfig::default(), gate)
        .await
        .unwrap();
    let wal = Arc::new(wal);

    // The first append's group is held inside its write...
    let first = wal.reserve().await.unwrap().append(vec![rec(0, 100)]);
    entered.await.unwrap();
    // ...while 32 tasks each enqueue 8 appends.
    let mut tasks = Vec::new();
    for t in 0..32u64 {
        let wal = wal.clone();
        tasks.push(tokio::spawn(async move {
            let mut tickets = Vec::new();
            for k in 0..8u64 {
                let i = 1 + t * 8 + k;
                tickets.push((i, wal.reserve().await.unwrap().append(vec![rec(i, 64)])));
            }
            tickets
        }));
    }
    let mut tickets = Vec::new();
    for task in tasks {
        tickets.extend(task.await.unwrap());
    }
    release.send(()).unwrap();

    let first_pos = first.durable().await.unwrap();
    let mut positions = Vec::new();
    for (i, ticket) in tickets {
        positions.push((ticket.durable().await.unwrap(), i));
    }
    // One fsync for the first group and one for all 256 appends queued behind it.
    assert_eq!(wal.fsync_count(), 2);
    assert!(positions.iter().all(|(p, _)| *p > first_pos));

    wal.close().await.unwrap();
    let (_wal, recovered) = Wal::open(dir.path(), WalConfig::default()).await.unwrap();
    assert_eq!(recovered.len(), 257);
    assert_eq!(recovered[0], (first_pos, rec(0, 100)));
    for (pos, i) in positions {
        assert!(
            recovered.contains(&(pos, rec(i, 64))),
            "record {i} at {pos:?} recovered"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_appenders_are_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        segment_bytes: 16 << 10,
        queue_depth: 16,
    };
    let (wal, _) = Wal::open(dir.path(), config.clone()).await.unwrap();
    let wal = Arc::new(wal);
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let wal = wal.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for k in 0..25u64 {
                let r = rec(t * 100 + k, 200);
                out.push((append(&wal, vec![r.clone()]).await, r));
            }
            out
        }));
    }
    let mut written = Vec::new();
    for task in tasks {
        written.extend(task.await.unwrap());
    }
    let syncs = wal.fsync_count();
    assert!(
        (1..=400).contains(&syncs),
        "one fsync per group, at most one per append"
    );
    assert!(
        wal.segments().len() > 1,
        "16 KiB segments must have rotated"
    );
    wal.close().await.unwrap();

    let (_wal, recovered) = Wal::open(dir.path(), config).await.unwrap();
    written.sort_by_key(|(p, _)| *p);
    assert_eq!(recovered, written);
}

#[tokio::test]
async fn a_full_queue_makes_reserve_wait() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, entered, release) = Gate::new();
    let config = WalConfig {
        queue_depth: 2,
        ..WalConfig::default()
    };
    let (wal, _) = Wal::open_with_hook(dir.path(), config, gate).await.unwrap();

    // The writer takes the first append off the queue and blocks in its write.
    let first = wal.reserve().await.unwrap().append(vec![rec(0, 10)]);
    entered.await.unwrap();
    let p1 = wal.reserve().await.unwrap();
    let p2 = wal.reserve().await.unwrap();
    assert!(
        wal.reserve().now_or_never().is_none(),
        "third slot must not be available"
    );
    drop(p1);
    let p3 = wal
        .reserve()
        .now_or_never()
        .expect("a dropped permit frees its slot")
        .unwrap();

    let t2 = p2.append(vec![rec(2, 10)]);
    let t3 = p3.append(vec![rec(3, 10)]);
    release.send(()).unwrap();
    let a = first.durable().await.unwrap();
    let b = t2.durable().await.unwrap();
    let c = t3.durable().await.unwrap();
    assert!(a < b && b < c, "appends are written in queue order");
}

#[tokio::test]
async fn rotation_and_trim_delete_only_segments_fully_before_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments(1000);
    let (wal, _) = Wal::open(dir.path(), config.clone()).await.unwrap();
    let mut ends = Vec::new();
    for i in 0..12u64 {
        // 57 + 300 bytes per record: a segment rotates after its third record.
        ends.push(append(&wal, vec![rec(i, 300)]).await);
    }
    let segs: Vec<u64> = ends.iter().map(|p| p.segment).collect();
    assert_eq!(segs, [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
    assert_eq!(wal.segments(), [1, 2, 3, 4, 5]);
    assert!(
        seg(dir.path(), 5).exists(),
        "the next segment is created on rotation"
    );

    // A position inside segment 3 frees 1 and 2 but not 3.
    wal.trim(ends[7]).await.unwrap();
    assert_eq!(wal.segments(), [3, 4, 5]);
    assert!(!seg(dir.path(), 1).exists() && !seg(dir.path(), 2).exists());
    assert!(seg(dir.path(), 3).exists());
    // The end of segment 3 frees it.
    wal.trim(ends[8]).await.unwrap();
    assert_eq!(wal.segments(), [4, 5]);
    // A position past everything never deletes the active segment.
    wal.trim(WalPosition {
        segment: u64::MAX,
        offset: u64::MAX,
    })
    .await
    .unwrap();
    assert_eq!(wal.segments(), [5]);
    assert!(seg(dir.path(), 5).exists());

    let last = append(&wal, vec![rec(12, 10)]).await;
    assert_eq!(last.segment, 5);
    wal.close().await.unwrap();
    let (wal, recovered) = Wal::open(dir.path(), config).await.unwrap();
    assert_eq!(recovered, vec![(last, rec(12, 10))]);
    assert_eq!(wal.segments(), [5]);
}

#[tokio::test]
async fn trim_survives_reopen_of_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments(1000);
    let (wal, _) = Wal::open(dir.path(), config.clone()).await.unwrap();
    let mut ends = Vec::new();
    for i in 0..7u64 {
        ends.push(append(&wal, vec![rec(i, 300)]).await);
    }
    wal.close().await.unwrap();
    // Sealed segment lengths are learned again by recovery.
    let (wal, recovered) = Wal::open(dir.path(), config).await.unwrap();
    assert_eq!(recovered.len(), 7);
    wal.trim(ends[5]).await.unwrap();
    assert_eq!(wal.segments(), [3]);
}

#[tokio::test]
async fn close_flushes_queued_appends_and_refuses_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), WalConfig::default()).await.unwrap();
    let t1 = wal.reserve().await.unwrap().append(vec![rec(1, 10)]);
    let held = wal.reserve().await.unwrap();
    let t2 = wal.reserve().await.unwrap().append(vec![rec(2, 10)]);
    wal.close().await.unwrap();
    assert!(t1.durable().await.is_ok());
    assert!(t2.durable().await.is_ok());
    // A permit taken before close must not hang after it.
    let late = held.append(vec![rec(3, 10)]);
    assert!(matches!(late.durable().await, Err(WalError::Closed)));
    assert!(matches!(wal.reserve().await, Err(WalError::Closed)));
    wal.close().await.unwrap();

    let (_wal, recovered) = Wal::open(dir.path(), WalConfig::default()).await.unwrap();
    let records: Vec<_> = recovered.into_iter().map(|(_, r)| r).collect();
    assert_eq!(records, vec![rec(1, 10), rec(2, 10)]);
}

#[tokio::test]
async fn a_failed_fsync_poisons_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Arc::new(FailSync::default());
    let (wal, _) = Wal::open_with_hook(dir.path(), WalConfig::default(), hook.clone())
        .await
        .unwrap();
    let good = append(&wal, vec![rec(1, 10)]).await;

    hook.armed.store(true, Ordering::SeqCst);
    let held = wal.reserve().await.unwrap();
    let failed = wal.reserve().await.unwrap().append(vec![rec(2, 10)]);
    assert!(matches!(failed.durable().await, Err(WalError::Poisoned)));
    assert!(wal.is_poisoned());
    assert_eq!(
        hook.failures.load(Ordering::SeqCst),
        1,
        "no retry after a failed fsync"
    );
    assert!(matches!(
        held.append(vec![rec(3, 10)]).durable().await,
        Err(WalError::Poisoned)
    ));
    assert!(matches!(wal.reserve().await, Err(WalError::Poisoned)));
    assert!(matches!(wal.close().await, Err(WalError::Poisoned)));
    assert_eq!(wal.fsync_count(), 1);
    drop(wal);

    // What was acknowledged survives.
    let (_wal, recovered) = Wal::open(dir.path(), WalConfig::default()).await.unwrap();
    assert_eq!(recovered[0], (good, rec(1, 10)));
}

#[tokio::test]
async fn a_failed_rotation_poisons_the_wal() {
    struct FailCreate;
    impl IoHook for FailCreate {
        fn before(&self, op: IoOp, path: &std::path::Path) -> std::io::Result<()> {
            // A new segment is created under its `.free` name and renamed once synced.
            if op == IoOp::CreateSegment && path.ends_with("00000000000000000002.free") {
                return Err(std::io::Error::other("injected create failure"));
            }
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open_with_hook(dir.path(), small_segments(100), Arc::new(FailCreate))
        .await
        .unwrap();
    // The group itself was synced before the rotation failed.
    let pos = append(&wal, vec![rec(1, 100)]).await;
    assert_eq!(pos.segment, 1);
    let next = wal.reserve().await;
    let next = match next {
        Ok(permit) => permit.append(vec![rec(2, 1)]).durable().await,
        Err(e) => Err(e),
    };
    assert!(matches!(next, Err(WalError::Poisoned)));
}

#[tokio::test]
async fn oversized_records_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), WalConfig::default()).await.unwrap();
    // calloc'd and never touched, so this costs no real memory.
    let big = WalRecord {
        batches: Bytes::from(vec![0u8; MAX_BATCH_BYTES + 1]),
        ..rec(0, 0)
    };
    let ticket = wal.reserve().await.unwrap().append(vec![rec(1, 5), big]);
    assert!(matches!(
        ticket.durable().await,
        Err(WalError::RecordTooLarge { .. })
    ));
    assert!(!wal.is_poisoned());
    append(&wal, vec![rec(2, 5)]).await;
    wal.close().await.unwrap();
    let (_wal, recovered) = Wal::open(dir.path(), WalConfig::default()).await.unwrap();
    let records: Vec<_> = recovered.into_iter().map(|(_, r)| r).collect();
    assert_eq!(records, vec![rec(2, 5)]);
}

#[tokio::test]
async fn invalid_config_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let zero_queue = WalConfig {
        queue_depth: 0,
        ..WalConfig::default()
    };
    assert!(matches!(
        Wal::open(dir.path(), zero_queue).await,
        Err(WalError::InvalidConfig(_))
    ));
    assert!(matches!(
        Wal::open(dir.path(), small_segments(10)).await,
        Err(WalError::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn dropping_the_wal_still_writes_what_was_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), WalConfig::default()).await.unwrap();
    let tickets: Vec<_> = {
        let mut v = Vec::new();
        for i in 0..10 {
            v.push(wal.reserve().await.unwrap().append(vec![rec(i, 30)]));
        }
        v
    };
    drop(wal);
    for t in tickets {
        t.durable().await.unwrap();
    }
    let (_wal, recovered) = Wal::open(dir.path(), WalConfig::default()).await.unwrap();
    assert_eq!(recovered.len(), 10);
}

#[tokio::test]
async fn a_failed_delete_stops_trim_at_the_oldest_remaining_segment() {
    struct FailRemove(std::sync::atomic::AtomicBool);
    impl IoHook for FailRemove {
        fn before(&self, op: IoOp, path: &std::path::Path) -> std::io::Result<()> {
            if op == IoOp::Remove
                && path.ends_with("00000000000000000003.wal")
                && self.0.load(Ordering::SeqCst)
            {
                return Err(std::io::Error::other("injected unlink failure"));
            }
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let hook = Arc::new(FailRemove(std::sync::atomic::AtomicBool::new(true)));
    let (wal, _) = Wal::open_with_hook(dir.path(), small_segments(250), hook.clone())
        .await
        .unwrap();
    let mut ends = Vec::new();
    for i in 0..4 {
        ends.push(append(&wal, vec![rec(i, 200)]).await);
    }
    assert_eq!(wal.segments(), [1, 2, 3, 4, 5]);
    let err = wal.trim(ends[3]).await.unwrap_err();
    assert!(
        matches!(
            err,
            WalError::Io {
                op: "delete segment",
                ..
            }
        ),
        "{err}"
    );
    // 1 and 2 are kept for reuse (two at most); 3 failed, so 4 stays too: never a gap.
    assert_eq!(wal.segments(), [3, 4, 5]);
    assert!(seg(dir.path(), 4).exists());
    assert!(dir.path().join("00000000000000000001.free").exists());
    assert!(dir.path().join("00000000000000000002.free").exists());
    assert!(!wal.is_poisoned(), "trim failures do not affect writes");

    hook.0.store(false, Ordering::SeqCst);
    wal.trim(ends[3]).await.unwrap();
    assert_eq!(wal.segments(), [5]);
}
