//! The writer thread: group commit, rotation and poisoning.
//!
//! One dedicated OS thread owns the active segment. It blocks for the first queued command,
//! drains whatever else is queued (up to [`GROUP_BYTES_CAP`]), writes the whole group with
//! vectored writes (batch bytes are never copied), issues one `fdatasync`, and only then
//! completes the group's tickets. Producers that enqueue while a sync is running form the next
//! group, so they share its sync.

use std::fs::File;
use std::io::{IoSlice, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::format::{encode_record_head, SegmentHeader, HEADER_LEN, RECORD_OVERHEAD};
use super::segment::{create_segment, io_err, recycle_segment, segment_path, IoOp};
use super::{Shared, WalError, WalPosition, WalRecord};

/// A group commit slower than this is logged as a warning: every produce waiting on it waited
/// that long, and on a healthy disk a commit takes about a millisecond.
const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_millis(100);

/// A group stops taking more appends once it holds this many bytes (one append may exceed it).
pub(crate) const GROUP_BYTES_CAP: usize = 8 << 20;

/// What the writer's queue carries.
pub(crate) enum Command {
    /// Records to write, and where to report their durability.
    Append(Pending),
    /// Stop after everything queued before this; reply when done.
    Close(oneshot::Sender<Result<(), WalError>>),
}

/// One append waiting for its group's sync.
pub(crate) struct Pending {
    /// The records, written contiguously in this order.
    pub records: Vec<WalRecord>,
    /// Receives the position after the last record once it is durable.
    pub done: oneshot::Sender<Result<WalPosition, WalError>>,
}

impl Pending {
    fn bytes(&self) -> usize {
        self.records
            .iter()
            .map(|r| RECORD_OVERHEAD + r.batches.len())
            .sum()
    }
}

/// State owned by the writer thread.
pub(crate) struct Writer {
    pub shared: Arc<Shared>,
    pub segment_bytes: u64,
    pub file: File,
    pub seq: u64,
    pub len: u64,
    /// The active segment's record checksum seed.
    pub seed: u32,
}

impl Writer {
    /// Runs until closed, until every sender is gone, or until an I/O failure poisons the WAL.
    pub(crate) fn run(mut self, rx: &mut mpsc::Receiver<Command>) {
        let mut group: Vec<Pending> = Vec::new();
        let mut heads: Vec<u8> = Vec::new();
        loop {
            let Some(first) = rx.blocking_recv() else {
                // Every `Wal` and permit is gone: nothing more can arrive.
                return;
            };
            let mut close = None;
            let mut bytes = 0;
            match first {
                Command::Append(p) => {
                    bytes += p.bytes();
                    group.push(p);
                }
                Command::Close(reply) => close = Some(reply),
            }
            while close.is_none() && bytes < GROUP_BYTES_CAP {
                match rx.try_recv() {
                    Ok(Command::Append(p)) => {
                        bytes += p.bytes();
                        group.push(p);
                    }
                    Ok(Command::Close(reply)) => close = Some(reply),
                    Err(_) => break,
                }
            }
            if let Err(error) = self.commit(&mut group, &mut heads) {
                tracing::error!(%error, segment = self.seq, "WAL write failed; poisoning the WAL");
                self.shared.poisoned.store(true, Ordering::SeqCst);
                for p in group.drain(..) {
                    let _ = p.done.send(Err(WalError::Poisoned));
                }
                if let Some(reply) = close {
                    let _ = reply.send(Err(WalError::Poisoned));
                }
                self.shared.shut_down(rx, || WalError::Poisoned);
                return;
            }
            if let Some(reply) = close {
                self.shared.shut_down(rx, || WalError::Closed);
                let _ = reply.send(Ok(()));
                tracing::info!(segment = self.seq, offset = self.len, "WAL closed");
                return;
            }
        }
    }

    /// Writes and syncs one group, rotates if the segment is full, then completes the group's
    /// tickets (rotating first means a caller that saw its ticket resolve also sees the new
    /// segment). On error the tickets that were not completed are left in `group`.
    fn commit(&mut self, group: &mut Vec<Pending>, heads: &mut Vec<u8>) -> Result<(), WalError> {
        if group.is_empty() {
            return Ok(());
        }
        let path = segment_path(&self.shared.dir, self.seq);
        let group_start = self.len;
        heads.clear();
        let mut ends = Vec::with_capacity(group.len());
        let mut end = group_start;
        for p in group.iter() {
            for r in &p.records {
                encode_record_head(r, group_start, self.seed, heads);
                end += (RECORD_OVERHEAD + r.batches.len()) as u64;
            }
            ends.push(end);
        }
        let mut slices = Vec::with_capacity(group.iter().map(|p| 2 * p.records.len()).sum());
        let mut head_at = 0;
        for r in group.iter().flat_map(|p| &p.records) {
            slices.push(IoSlice::new(&heads[head_at..head_at + RECORD_OVERHEAD]));
            head_at += RECORD_OVERHEAD;
            if !r.batches.is_empty() {
                slices.push(IoSlice::new(&r.batches));
            }
        }

        let started = Instant::now();
        self.shared
            .hook
            .before(IoOp::Write, &path)
            .map_err(io_err("write group", &path))?;
        write_all_vectored(&mut self.file, &mut slices).map_err(io_err("write group", &path))?;
        self.shared
            .hook
            .before(IoOp::SyncData, &path)
            .map_err(io_err("fdatasync group", &path))?;
        self.file
            .sync_data()
            .map_err(io_err("fdatasync group", &path))?;
        self.len = end;
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        let (took, bytes) = (started.elapsed(), end - group_start);
        tracing::debug!(
            segment = self.seq,
            appends = group.len(),
            bytes,
            micros = took.as_micros() as u64,
            "WAL group committed"
        );
        if took >= SLOW_COMMIT {
            let millis = took.as_millis() as u64;
            tracing::warn!(
                segment = self.seq,
                bytes,
                millis,
                "slow WAL group commit (write + fdatasync)"
            );
        }
        let segment = self.seq;
        // The group is durable whatever happens to the rotation, so its tickets succeed even
        // when the rotation fails (and poisons the WAL for everything after).
        let rotated = self.rotate_if_full();
        for (p, offset) in group.drain(..).zip(ends) {
            let _ = p.done.send(Ok(WalPosition { segment, offset }));
        }
        rotated
    }

    /// Starts the next segment once the active one has reached the configured size, in a
    /// trimmed segment's file when one is kept (see [`recycle_segment`]).
    fn rotate_if_full(&mut self) -> Result<(), WalError> {
        if self.len < self.segment_bytes {
            return Ok(());
        }
        let next = self.seq.checked_add(1).ok_or_else(|| WalError::Corrupt {
            segment: self.seq,
            offset: self.len,
            reason: "segment sequence numbers exhausted".to_owned(),
        })?;
        let (dir, hook, previous_len) =
            (&self.shared.dir, self.shared.hook.as_ref(), Some(self.len));
        let reused = self.shared.free.lock().pop();
        let file = match &reused {
            Some(free) => recycle_segment(dir, free, next, previous_len, hook)?,
            None => create_segment(dir, next, previous_len, hook)?,
        };
        {
            let mut segs = self.shared.segments.lock();
            segs.sealed.insert(self.seq, self.len);
            segs.active = next;
        }
        tracing::info!(
            sealed = self.seq,
            sealed_bytes = self.len,
            active = next,
            reused = reused.is_some(),
            "WAL segment rotated"
        );
        self.file = file;
        self.seq = next;
        self.seed = SegmentHeader::v2_seed(next);
        self.len = HEADER_LEN as u64;
        Ok(())
    }
}

/// `write_all` for vectored writes (the std one is unstable).
fn write_all_vectored(file: &mut File, mut slices: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
