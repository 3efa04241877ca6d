//! The node's write-ahead log: every produced batch is appended here and acknowledged only
//! after the `fdatasync` that covers it. The log is read back only by recovery.
//!
//! # Use
//!
//! [`Wal::open`] recovers and returns every intact record. A producer takes a queue slot with
//! [`Wal::reserve`] (this is where backpressure waits), enqueues with [`WalPermit::append`]
//! (synchronous, so callers that assign offsets under a short lock keep the log in offset
//! order), and awaits [`WalTicket::durable`]. Once the records up to a [`WalPosition`] live in
//! object storage, [`Wal::trim`] deletes the segments before it.
//!
//! # Group commit
//!
//! One writer thread owns the active segment. It takes everything queued (up to 8 MiB), writes
//! it with vectored writes, calls `fdatasync` once, and then completes all those tickets, so
//! concurrent producers share syncs. A failed write or sync poisons the WAL: the group's
//! tickets and every later one fail with [`WalError::Poisoned`], because after a failed
//! `fsync` the kernel may have dropped the dirty pages and nothing can be reported durable.
//!
//! # On-disk layout (format version 2, all integers little-endian)
//!
//! The WAL directory holds segment files named by a 20-digit sequence number starting at 1,
//! e.g. `00000000000000000001.wal`. Segments are consecutive; trim removes the oldest ones.
//! Up to two trimmed segments are kept as `<number>.free` and reused for the next segments
//! (their blocks are overwritten in place, so a group's `fdatasync` writes no file-system
//! metadata; see `segment::recycle_segment`). Other files are ignored. Each segment is:
//!
//! ```text
//! file header, 32 bytes:
//!   0  magic            8   b"FJORDWAL"
//!   8  format version   u32 2
//!  12  header crc       u32 CRC-32C of bytes 0..12 followed by bytes 16..32
//!  16  segment          u64 the sequence number in the file name
//!  24  previous length  u64 final length of the previous segment (0 for the first): that
//!                           segment's records end there, whatever its file holds beyond
//! then records, back to back:
//!   0  len              u32 length of the body (bytes from offset 8 to the end of the record)
//!   4  crc              u32 CRC-32C, started from the CRC-32C of the segment number (u64),
//!                           of `len` (its 4 bytes) followed by the body
//!   body:
//!   8  kind             u8  1 = the batches of one partition
//!   9  durable_before   u64 offset in this segment where the record's write group starts;
//!                           every byte before it had been fsynced when the record was written
//!  17  topic_id         16  UUID bytes
//!  33  partition        i32
//!  37  epoch            i32
//!  41  base_offset      i64
//!  49  last_offset      i64
//!  57  batches          len - 49 bytes, the record batches verbatim
//! ```
//!
//! Version 1 (still read, and appended to while one is the active segment) had `reserved`
//! at 12, the header crc (of bytes 0..24) at 24, and record checksums started from zero.
//!
//! A body is at most 256 MiB ([`MAX_RECORD_BYTES`]). A [`WalPosition`] is (segment, offset
//! just after a record). A segment is sealed and a new one started after the group that makes
//! it reach [`WalConfig::segment_bytes`]: the new file's header is written and synced under a
//! name recovery ignores, then the file is renamed and the directory synced.
//!
//! # Recovery
//!
//! Segments are read in order, each sealed one up to the length its successor's header
//! gives. A frame that is cut short or fails its CRC at the end of the last segment is a torn
//! write (or, in a reused file, the previous life's records): the segment is truncated there
//! (and synced). The same thing
//! anywhere else, a missing segment, a bad header or an unknown record kind is
//! [`WalError::Corrupt`]. `durable_before` is what tells a torn tail from a damaged synced
//! record in the last segment; see the `recovery` module.
//!
//! Modules: `format` (encoding), `segment` (files, [`IoHook`]), `recovery`, `writer`.

mod format;
mod recovery;
mod segment;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

pub use format::MAX_RECORD_BYTES;
pub use segment::{IoHook, IoOp};

use format::{BODY_FIXED_LEN, HEADER_LEN};
use segment::{free_path, io_err, segment_path, sync_dir, NoHook};
use writer::{Command, Pending, Writer};

/// Largest `batches` payload of one [`WalRecord`].
pub const MAX_BATCH_BYTES: usize = MAX_RECORD_BYTES - BODY_FIXED_LEN;

/// WAL settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalConfig {
    /// A segment is sealed and a new one started once it holds this many bytes (default
    /// 64 MiB). Smaller segments let trim free space sooner; larger ones mean fewer files.
    pub segment_bytes: u64,
    /// Appends that may wait for the writer (default 1024). When full, [`Wal::reserve`] waits,
    /// which pushes back on producers instead of buffering without bound. Must be > 0.
    pub queue_depth: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_bytes: 64 << 20,
            queue_depth: 1024,
        }
    }
}

/// A position in the log: (segment sequence number, byte offset in it). Ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalPosition {
    /// Sequence number of the segment.
    pub segment: u64,
    /// Byte offset in the segment.
    pub offset: u64,
}

/// One appended unit: the batches of one partition, offsets already assigned in their headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalRecord {
    /// The topic.
    pub topic_id: uuid::Uuid,
    /// The partition index.
    pub partition: i32,
    /// The partition epoch under which the batches were accepted.
    pub epoch: i32,
    /// Offset of the first record in `batches`.
    pub base_offset: i64,
    /// Offset of the last record in `batches`.
    pub last_offset: i64,
    /// The record batches, stored verbatim (at most [`MAX_BATCH_BYTES`]).
    pub batches: Bytes,
}

/// Errors of the WAL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// A file-system operation failed.
    #[error("WAL {op} failed for {}: {source}", path.display())]
    Io {
        /// What the WAL was doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Recovery found damaged data outside a torn tail.
    #[error("WAL segment {segment} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// Sequence number of the segment.
        segment: u64,
        /// Byte offset of the damage in the segment.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A previous write or fsync failed: the WAL refuses all further writes.
    #[error(
        "WAL is poisoned: an earlier write or fsync failed, so nothing more can be made durable"
    )]
    Poisoned,
    /// The WAL was closed.
    #[error("WAL is closed")]
    Closed,
    /// A record's batches exceed [`MAX_BATCH_BYTES`]; nothing of that append was written.
    #[error("WAL record of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// Size of the offending batches.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The configuration cannot work.
    #[error("invalid WAL config: {0}")]
    InvalidConfig(&'static str),
}

/// Segment bookkeeping shared by the writer (rotation) and trim.
#[derive(Debug)]
struct Segments {
    /// Sealed segments and their final lengths.
    sealed: BTreeMap<u64, u64>,
    /// The segment being written.
    active: u64,
}

/// State shared by [`Wal`], permits, tickets and the writer thread.
pub(crate) struct Shared {
    dir: PathBuf,
    hook: Arc<dyn IoHook>,
    poisoned: AtomicBool,
    fsyncs: AtomicU64,
    segments: Mutex<Segments>,
    /// Becomes true (under the write lock) once the writer takes no more commands. Appends
    /// check it under the read lock, so none can slip into the queue after the writer's final
    /// drain and wait forever.
    stopped: RwLock<bool>,
    /// Serialises trims so segments are always deleted oldest first.
    trim_lock: Mutex<()>,
    /// Trimmed segments kept for the writer to reuse (at most [`KEPT_FREE_SEGMENTS`]).
    free: Mutex<Vec<PathBuf>>,
}

/// Trimmed segments kept for reuse rather than deleted: one for the next rotation and one
/// spare, so a steady log never allocates or frees segment files (see
/// [`segment::recycle_segment`]). Costs this many segments of disk beyond the live ones.
const KEPT_FREE_SEGMENTS: usize = 2;

impl Shared {
    /// The error for anything attempted after the writer stopped.
    fn stopped_error(&self) -> WalError {
        if self.poisoned.load(Ordering::SeqCst) {
            WalError::Poisoned
        } else {
            WalError::Closed
        }
    }

    /// Called by the writer as it exits: refuses further appends and fails everything queued.
    fn shut_down(&self, rx: &mut mpsc::Receiver<Command>, error: fn() -> WalError) {
        let mut stopped = self.stopped.write();
        *stopped = true;
        rx.close();
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                Command::Append(p) => {
                    let _ = p.done.send(Err(error()));
                }
                Command::Close(reply) => {
                    let _ = reply.send(match error() {
                        WalError::Closed => Ok(()),
                        other => Err(other),
                    });
                }
            }
        }
    }

    /// Deletes the sealed segments that end at or before `upto`, oldest first, syncing the
    /// directory after each so a crash never leaves a gap. Blocking.
    fn trim_blocking(&self, upto: WalPosition) -> Result<(), WalError> {
        let _serial = self.trim_lock.lock();
        let victims: Vec<u64> = {
            let segs = self.segments.lock();
            segs.sealed
                .iter()
                .filter(|&(&segment, &len)| {
                    segment != segs.active
                        && WalPosition {
                            segment,
                            offset: len,
                        } <= upto
                })
                .map(|(&segment, _)| segment)
                .collect()
        };
        for &seq in &victims {
            let path = segment_path(&self.dir, seq);
            let keep = self.free.lock().len() < KEPT_FREE_SEGMENTS;
            let kept = if keep {
                let free = free_path(&self.dir, seq);
                self.hook
                    .before(IoOp::Recycle, &path)
                    .map_err(io_err("keep segment", &path))?;
                std::fs::rename(&path, &free).map_err(io_err("keep segment", &path))?;
                Some(free)
            } else {
                self.hook
                    .before(IoOp::Remove, &path)
                    .map_err(io_err("delete segment", &path))?;
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        tracing::warn!(segment = seq, "trimmed WAL segment was already gone");
                    }
                    Err(e) => return Err(io_err("delete segment", &path)(e)),
                }
                None
            };
            sync_dir(&self.dir, self.hook.as_ref())?;
            self.segments.lock().sealed.remove(&seq);
            if let Some(free) = kept {
                self.free.lock().push(free);
            }
        }
        if !victims.is_empty() {
            tracing::info!(segments = victims.len(), ?upto, "WAL trimmed");
        }
        Ok(())
    }
}

/// The write-ahead log. `Send + Sync`; share it through an `Arc`.
pub struct Wal {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir)
            .field("poisoned", &self.shared.poisoned.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens the WAL in `dir` (creating the directory if needed) and recovers it: returns every
    /// intact record in log order with the position just after it. Truncates only a torn tail
    /// of the last segment; corruption elsewhere is [`WalError::Corrupt`].
    pub async fn open(
        dir: &Path,
        config: WalConfig,
    ) -> Result<(Wal, Vec<(WalPosition, WalRecord)>), WalError> {
        Self::open_with_hook(dir, config, Arc::new(NoHook)).await
    }

    /// [`Wal::open`] with a hook called before every file-system step (failure injection).
    #[tracing::instrument(name = "wal_open", skip(config, hook), fields(dir = %dir.display()))]
    pub async fn open_with_hook(
        dir: &Path,
        config: WalConfig,
        hook: Arc<dyn IoHook>,
    ) -> Result<(Wal, Vec<(WalPosition, WalRecord)>), WalError> {
        if config.queue_depth == 0 {
            return Err(WalError::InvalidConfig("queue_depth must be at least 1"));
        }
        if config.segment_bytes <= HEADER_LEN as u64 {
            return Err(WalError::InvalidConfig(
                "segment_bytes must exceed the 32-byte header",
            ));
        }
        let dir = dir.to_path_buf();
        let recovered = {
            let (dir2, hook) = (dir.clone(), hook.clone());
            tokio::task::spawn_blocking(move || recovery::recover(&dir2, hook.as_ref()))
                .await
                .map_err(|e| io_err("recover", &dir)(std::io::Error::other(e)))??
        };
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            hook,
            poisoned: AtomicBool::new(false),
            fsyncs: AtomicU64::new(0),
            segments: Mutex::new(Segments {
                sealed: recovered.sealed,
                active: recovered.active_seq,
            }),
            stopped: RwLock::new(false),
            trim_lock: Mutex::new(()),
            free: Mutex::new(recovered.free),
        });
        let writer = Writer {
            shared: shared.clone(),
            segment_bytes: config.segment_bytes,
            file: recovered.active,
            seq: recovered.active_seq,
            len: recovered.active_len,
            seed: recovered.active_seed,
        };
        let (tx, rx) = mpsc::channel(config.queue_depth);
        std::thread::Builder::new()
            .name("fjord-wal-writer".to_owned())
            .spawn(move || {
                let shared = writer.shared.clone();
                let mut rx = rx;
                let run = std::panic::AssertUnwindSafe(|| writer.run(&mut rx));
                if std::panic::catch_unwind(run).is_err() {
                    // A bug, not an I/O failure, but what was in flight is unknown all the same.
                    tracing::error!("WAL writer panicked; poisoning the WAL");
                    shared.poisoned.store(true, Ordering::SeqCst);
                    shared.shut_down(&mut rx, || WalError::Poisoned);
                }
            })
            .map_err(io_err("start writer thread", &dir))?;
        Ok((Wal { tx, shared }, recovered.records))
    }

    /// Waits for room in the bounded queue (backpressure). Holding a permit reserves a slot.
    pub async fn reserve(&self) -> Result<WalPermit, WalError> {
        if *self.shared.stopped.read() {
            return Err(self.shared.stopped_error());
        }
        match self.tx.clone().reserve_owned().await {
            Ok(permit) => Ok(WalPermit {
                permit,
                shared: self.shared.clone(),
            }),
            Err(_) => Err(self.shared.stopped_error()),
        }
    }

    /// Deletes whole segments whose every record lies before `upto` (never the active
    /// segment), oldest first, fsyncing the directory after each deletion.
    pub async fn trim(&self, upto: WalPosition) -> Result<(), WalError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.trim_blocking(upto))
            .await
            .map_err(|e| io_err("trim", &self.shared.dir)(std::io::Error::other(e)))?
    }

    /// Stops the writer after flushing everything queued so far. Later appends fail with
    /// [`WalError::Closed`]. Closing twice is fine; closing a poisoned WAL returns `Poisoned`.
    pub async fn close(&self) -> Result<(), WalError> {
        let (reply, done) = oneshot::channel();
        if self.tx.send(Command::Close(reply)).await.is_err() {
            return match self.shared.stopped_error() {
                WalError::Closed => Ok(()),
                other => Err(other),
            };
        }
        done.await
            .unwrap_or_else(|_| match self.shared.stopped_error() {
                WalError::Closed => Ok(()),
                other => Err(other),
            })
    }

    /// Number of group fsyncs so far (one per committed group); for tests and metrics.
    pub fn fsync_count(&self) -> u64 {
        self.shared.fsyncs.load(Ordering::Relaxed)
    }

    /// True once a write or fsync failed; the WAL then accepts nothing more.
    pub fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::SeqCst)
    }

    /// Sequence numbers of the segments currently on disk, oldest first (the last is active).
    pub fn segments(&self) -> Vec<u64> {
        let segs = self.shared.segments.lock();
        segs.sealed
            .keys()
            .copied()
            .chain(std::iter::once(segs.active))
            .collect()
    }
}

/// A reserved slot in the WAL queue. `'static`; dropping it frees the slot.
pub struct WalPermit {
    permit: mpsc::OwnedPermit<Command>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WalPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalPermit").finish_non_exhaustive()
    }
}

impl WalPermit {
    /// Enqueues `records` without waiting, so that callers holding a short sync lock keep
    /// their order: records enqueued earlier are written earlier, contiguously per call.
    pub fn append(self, records: Vec<WalRecord>) -> WalTicket {
        let (done, rx) = oneshot::channel();
        let ticket = WalTicket {
            rx,
            shared: self.shared.clone(),
        };
        if let Some(r) = records.iter().find(|r| r.batches.len() > MAX_BATCH_BYTES) {
            let _ = done.send(Err(WalError::RecordTooLarge {
                len: r.batches.len(),
                max: MAX_BATCH_BYTES,
            }));
            return ticket;
        }
        let stopped = self.shared.stopped.read();
        if *stopped {
            let _ = done.send(Err(self.shared.stopped_error()));
        } else {
            self.permit.send(Command::Append(Pending { records, done }));
        }
        drop(stopped);
        ticket
    }
}

/// Completion of one append.
pub struct WalTicket {
    rx: oneshot::Receiver<Result<WalPosition, WalError>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WalTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalTicket").finish_non_exhaustive()
    }
}

impl WalTicket {
    /// Resolves once the fdatasync covering these records has returned; yields the position
    /// just after the last of them.
    pub async fn durable(self) -> Result<WalPosition, WalError> {
        match self.rx.await {
            Ok(result) => result,
            Err(_) => Err(self.shared.stopped_error()),
        }
    }
}
