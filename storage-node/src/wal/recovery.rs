//! Recovery: reads every segment in order, repairs a torn tail of the last one, and reports
//! corruption anywhere else.
//!
//! Why a torn tail can be told from corruption: the writer writes one group at a time and
//! writes the next group only after the previous one's `fdatasync` returned. So only the last
//! group of the last segment can be torn by a crash, and every record stores `durable_before`,
//! the offset where its group began (everything before it was already synced). When the scan
//! meets a bad frame at offset `p` it looks at the frames after it: an intact record with
//! `durable_before > p` proves the bytes at `p` had been synced, so they are corrupt, not torn.
//! Otherwise the bad frame lies in the last group, which no ticket ever reported durable, and
//! the segment is truncated at `p`.
//!
//! Known limit: when the bad frame's length field is itself damaged the scan cannot find the
//! frames after it, and a damaged length in the last segment is treated as a torn tail.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use bytes::Bytes;

use super::format::{check_header, decode_frame, encode_header, Frame, SegmentHeader, HEADER_LEN};
use super::segment::{
    create_segment, io_err, list_free, list_segments, segment_path, sync_dir, IoHook, IoOp,
};
use super::{WalError, WalPosition, WalRecord};

/// What a scan of one segment found.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Intact records with the offset just after each.
    pub records: Vec<(u64, WalRecord)>,
    /// Length of the intact prefix of the segment.
    pub valid_len: u64,
    /// Why the rest of the segment is a torn tail, if it has one.
    pub torn: Option<&'static str>,
}

/// Scans the records of segment `seq` (contents `buf`, header already checked; records'
/// checksums start from `seed`). Only the last segment may have a torn tail; anything bad
/// elsewhere is [`WalError::Corrupt`].
pub(crate) fn scan_segment(
    seq: u64,
    buf: &Bytes,
    is_last: bool,
    seed: u32,
) -> Result<Scan, WalError> {
    let corrupt = |offset: usize, reason: String| WalError::Corrupt {
        segment: seq,
        offset: offset as u64,
        reason,
    };
    let mut records = Vec::new();
    let mut at = HEADER_LEN;
    while at < buf.len() {
        match decode_frame(buf, at, seed) {
            Frame::Record { record, end, .. } => {
                records.push((end as u64, record));
                at = end;
            }
            Frame::Invalid { reason } => return Err(corrupt(at, reason)),
            Frame::Bad { reason, end } => {
                if !is_last {
                    return Err(corrupt(at, reason.to_owned()));
                }
                if let Some(synced) = later_proof_of_sync(buf, at, end, seed) {
                    return Err(corrupt(
                        at,
                        format!("{reason}, but a later record shows the first {synced} bytes were synced"),
                    ));
                }
                return Ok(Scan {
                    records,
                    valid_len: at as u64,
                    torn: Some(reason),
                });
            }
        }
    }
    Ok(Scan {
        records,
        valid_len: at as u64,
        torn: None,
    })
}

/// Walks the frames after a bad one at `bad_at` (as far as their lengths allow) and returns the
/// largest `durable_before` beyond `bad_at` that an intact record claims, if any.
fn later_proof_of_sync(
    buf: &Bytes,
    bad_at: usize,
    mut next: Option<usize>,
    seed: u32,
) -> Option<u64> {
    while let Some(at) = next.filter(|&at| at < buf.len()) {
        next = match decode_frame(buf, at, seed) {
            Frame::Record {
                durable_before,
                end,
                ..
            } => {
                if durable_before > bad_at as u64 {
                    return Some(durable_before);
                }
                Some(end)
            }
            Frame::Bad { end, .. } => end,
            // A checksummed frame with nonsense contents was written by someone; it does not
            // tell us where groups began, so stop looking.
            Frame::Invalid { .. } => None,
        };
    }
    None
}

/// Everything [`recover`] hands to the writer.
pub(crate) struct Recovered {
    /// Intact records in log order, each with the position just after it.
    pub records: Vec<(WalPosition, WalRecord)>,
    /// Sealed (non-active) segments and their lengths.
    pub sealed: BTreeMap<u64, u64>,
    /// Sequence number of the active segment.
    pub active_seq: u64,
    /// Length of the active segment; everything in it is durable.
    pub active_len: u64,
    /// The active segment, opened for writing and positioned at its end.
    pub active: File,
    /// The active segment's record checksum seed.
    pub active_seed: u32,
    /// Trimmed segments kept for reuse, oldest first.
    pub free: Vec<std::path::PathBuf>,
}

/// Opens the WAL in `dir` (creating it if needed) and recovers its records. Blocking.
pub(crate) fn recover(dir: &Path, hook: &dyn IoHook) -> Result<Recovered, WalError> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        // The new directory's own entry must survive a crash too.
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sync_dir(parent, hook)?;
    }
    let seqs = list_segments(dir)?;
    let Some(&last_seq) = seqs.last() else {
        tracing::info!(dir = %dir.display(), "creating a new WAL");
        let free = list_free(dir)?;
        let active = create_segment(dir, 1, None, hook)?;
        return Ok(Recovered {
            records: Vec::new(),
            sealed: BTreeMap::new(),
            active_seq: 1,
            active_len: HEADER_LEN as u64,
            active,
            active_seed: SegmentHeader::v2_seed(1),
            free,
        });
    };
    // Trim deletes a prefix of the segments one at a time, fsyncing the directory after each,
    // so a gap means a segment was lost.
    for pair in seqs.windows(2) {
        if pair[1] != pair[0] + 1 {
            return Err(WalError::Corrupt {
                segment: pair[0] + 1,
                offset: 0,
                reason: format!("segment missing: found {} then {}", pair[0], pair[1]),
            });
        }
    }

    let mut bufs = Vec::with_capacity(seqs.len());
    for &seq in &seqs {
        let path = segment_path(dir, seq);
        bufs.push(Bytes::from(
            std::fs::read(&path).map_err(io_err("read segment", &path))?,
        ));
    }
    let mut records = Vec::new();
    let mut sealed = BTreeMap::new();
    let mut active_len = HEADER_LEN as u64;
    let mut active_seed = SegmentHeader::v2_seed(last_seq);
    for (i, &seq) in seqs.iter().enumerate() {
        let is_last = seq == last_seq;
        let path = segment_path(dir, seq);
        let buf = &bufs[i];
        let header = match check_header(buf, seq) {
            Ok(header) => header,
            // A crash while a version-1 build created the last segment can leave its header
            // torn; records were only written after the header was synced, so such a file
            // holds nothing else. (This build syncs a header before the file gets its name.)
            Err(reason) if is_last && buf.len() <= HEADER_LEN => {
                tracing::warn!(segment = seq, %reason, "rewriting the torn header of the last WAL segment");
                rewrite_header(dir, seq, hook)?;
                continue;
            }
            Err(reason) => {
                return Err(WalError::Corrupt {
                    segment: seq,
                    offset: 0,
                    reason,
                })
            }
        };
        // A sealed segment ends where the next one's header says: a reused file may hold
        // older bytes beyond that.
        let bound = bufs
            .get(i + 1)
            .and_then(|next| check_header(next, seq + 1).ok())
            .and_then(|next| next.previous_len);
        let end = bound.map_or(buf.len(), |b| {
            usize::try_from(b).map_or(buf.len(), |b| b.min(buf.len()))
        });
        let scan = scan_segment(seq, &buf.slice(..end), is_last, header.crc_seed())?;
        if let Some(bound) = bound.filter(|&b| b != scan.valid_len) {
            // Only a file cut short or a damaged header gets here (a record cut by the end
            // of the file was reported by the scan).
            return Err(WalError::Corrupt {
                segment: seq,
                offset: scan.valid_len,
                reason: format!(
                    "segment {} says this one ends at {bound}, but its records end at {}",
                    seq + 1,
                    scan.valid_len
                ),
            });
        }
        if let Some(reason) = scan.torn {
            tracing::warn!(
                segment = seq,
                offset = scan.valid_len,
                dropped_bytes = buf.len() as u64 - scan.valid_len,
                reason,
                "truncating the torn tail of the last WAL segment"
            );
            truncate(&path, scan.valid_len, hook)?;
        }
        records.extend(scan.records.into_iter().map(|(offset, rec)| {
            (
                WalPosition {
                    segment: seq,
                    offset,
                },
                rec,
            )
        }));
        if is_last {
            active_len = scan.valid_len;
            active_seed = header.crc_seed();
        } else {
            sealed.insert(seq, scan.valid_len);
        }
    }
    drop(bufs);

    let path = segment_path(dir, last_seq);
    let mut active = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io_err("open active segment", &path))?;
    active
        .seek(SeekFrom::Start(active_len))
        .map_err(io_err("seek active segment", &path))?;
    // The recovered bytes may sit only in the page cache (the previous process died before its
    // fsync). Sync them now: they are handed out as durable, and later records will claim so.
    hook.before(IoOp::SyncData, &path)
        .map_err(io_err("fsync segment", &path))?;
    active.sync_data().map_err(io_err("fsync segment", &path))?;
    sync_dir(dir, hook)?;
    tracing::info!(
        dir = %dir.display(),
        segments = seqs.len(),
        records = records.len(),
        active_segment = last_seq,
        "recovered WAL"
    );
    Ok(Recovered {
        records,
        sealed,
        active_seq: last_seq,
        active_len,
        active,
        active_seed,
        free: list_free(dir)?,
    })
}

/// Cuts the file at `len` and makes the cut durable.
fn truncate(path: &Path, len: u64, hook: &dyn IoHook) -> Result<(), WalError> {
    hook.before(IoOp::Truncate, path)
        .map_err(io_err("truncate torn tail", path))?;
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("truncate torn tail", path))?;
    file.set_len(len)
        .map_err(io_err("truncate torn tail", path))?;
    hook.before(IoOp::SyncData, path)
        .map_err(io_err("fsync truncated segment", path))?;
    file.sync_all()
        .map_err(io_err("fsync truncated segment", path))
}

/// Replaces the contents of segment `seq` by a fresh header.
fn rewrite_header(dir: &Path, seq: u64, hook: &dyn IoHook) -> Result<(), WalError> {
    let path = segment_path(dir, seq);
    hook.before(IoOp::Truncate, &path)
        .map_err(io_err("rewrite segment header", &path))?;
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(io_err("rewrite segment header", &path))?;
    file.write_all(&encode_header(seq, None))
        .map_err(io_err("rewrite segment header", &path))?;
    hook.before(IoOp::SyncData, &path)
        .map_err(io_err("fsync segment", &path))?;
    file.sync_all().map_err(io_err("fsync segment", &path))
}
