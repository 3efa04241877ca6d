//! Segment files on disk: naming, listing, creation, and the I/O failure-injection hook.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::format::{encode_header, HEADER_LEN};
use super::WalError;

/// File extension of segment files.
const EXT: &str = "wal";
/// File extension of trimmed segments kept for reuse (see [`recycle_segment`]).
const FREE_EXT: &str = "free";
/// Digits in a segment file name, enough for any `u64`.
const NAME_DIGITS: usize = 20;

/// A file-system step the WAL is about to take, reported to an [`IoHook`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoOp {
    /// Creating a segment file and writing its header.
    CreateSegment,
    /// Writing a group of records to the active segment.
    Write,
    /// `fdatasync` of a segment after a write (or of a new or repaired segment).
    SyncData,
    /// `fsync` of the WAL directory.
    SyncDir,
    /// Truncating a torn tail during recovery.
    Truncate,
    /// Deleting a trimmed segment.
    Remove,
    /// Renaming a trimmed segment to keep it for reuse, or a kept one to become the next
    /// segment.
    Recycle,
}

/// Called before every file-system step that changes the WAL, so tests can inject failures
/// (a failpoint). Production uses a hook that always answers `Ok`.
pub trait IoHook: Send + Sync + 'static {
    /// Returns an error to make the step fail as if the file system had failed it.
    fn before(&self, op: IoOp, path: &Path) -> std::io::Result<()>;
}

/// The hook used in production: never injects anything.
#[derive(Debug, Default)]
pub(crate) struct NoHook;

impl IoHook for NoHook {
    fn before(&self, _op: IoOp, _path: &Path) -> std::io::Result<()> {
        Ok(())
    }
}

/// Builds a [`WalError::Io`] naming the step and the file.
pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WalError {
    let path = path.to_path_buf();
    move |source| WalError::Io { op, path, source }
}

/// Path of segment `seq` in `dir`, e.g. `00000000000000000001.wal`.
pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:0width$}.{EXT}", width = NAME_DIGITS))
}

/// Path under which trimmed segment `seq` is kept for reuse, e.g. `00000000000000000001.free`.
pub(crate) fn free_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:0width$}.{FREE_EXT}", width = NAME_DIGITS))
}

/// Sequence number encoded in a segment file name, or `None` for any other file.
fn parse_name(name: &str) -> Option<u64> {
    parse_with_ext(name, EXT)
}

/// The number in `<20 digits>.<ext>`, or `None` for any other name.
fn parse_with_ext(name: &str, ext: &str) -> Option<u64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != NAME_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Sequence numbers of the segment files in `dir`, ascending. Other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let mut seqs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err("list directory", dir))? {
        let entry = entry.map_err(io_err("list directory", dir))?;
        let name = entry.file_name();
        match name.to_str().and_then(parse_name) {
            Some(seq) => seqs.push(seq),
            None => tracing::debug!(file = ?name, "ignoring non-segment file in WAL directory"),
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// `fsync`s the directory so that created, renamed or deleted entries survive a crash.
pub(crate) fn sync_dir(dir: &Path, hook: &dyn IoHook) -> Result<(), WalError> {
    hook.before(IoOp::SyncDir, dir)
        .map_err(io_err("fsync directory", dir))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Trimmed segments kept for reuse in `dir`, oldest first.
pub(crate) fn list_free(dir: &Path) -> Result<Vec<PathBuf>, WalError> {
    let mut free = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err("list directory", dir))? {
        let entry = entry.map_err(io_err("list directory", dir))?;
        if let Some(seq) = entry
            .file_name()
            .to_str()
            .and_then(|n| parse_with_ext(n, FREE_EXT))
        {
            free.push(seq);
        }
    }
    free.sort_unstable();
    Ok(free.into_iter().map(|seq| free_path(dir, seq)).collect())
}

/// Turns the kept file `free` into segment `seq`: writes the new header over the old one,
/// syncs it, renames the file and fsyncs the directory. Returns the file positioned after the
/// header.
///
/// Why reuse files: appending to a fresh file allocates blocks and grows it, so every group's
/// `fdatasync` must also commit file-system metadata (on ext4 a journal commit, which waits
/// for whatever else the commit carries), and deleting a 64 MiB segment frees (and, with
/// `discard`, trims) its blocks in one go; both stalled group commits for tens of
/// milliseconds. Overwriting a kept segment changes neither size nor allocation, so a group's
/// `fdatasync` only writes data. The old records left beyond the new ones cannot be mistaken
/// for new ones: record checksums are seeded with the segment number, and the next segment's
/// header records where this one ends.
pub(crate) fn recycle_segment(
    dir: &Path,
    free: &Path,
    seq: u64,
    previous_len: Option<u64>,
    hook: &dyn IoHook,
) -> Result<File, WalError> {
    let path = segment_path(dir, seq);
    hook.before(IoOp::Recycle, free)
        .map_err(io_err("reuse segment", free))?;
    let mut file = OpenOptions::new()
        .write(true)
        .open(free)
        .map_err(io_err("reuse segment", free))?;
    file.write_all(&encode_header(seq, previous_len))
        .map_err(io_err("write segment header", free))?;
    hook.before(IoOp::SyncData, free)
        .map_err(io_err("fsync reused segment", free))?;
    // Synced under the old name first: once the new name exists, its header is the new one.
    file.sync_data()
        .map_err(io_err("fsync reused segment", free))?;
    std::fs::rename(free, &path).map_err(io_err("rename reused segment", &path))?;
    sync_dir(dir, hook)?;
    file.seek(SeekFrom::Start(HEADER_LEN as u64))
        .map_err(io_err("seek reused segment", &path))?;
    Ok(file)
}

/// Creates segment `seq` holding only its header, makes the file durable and fsyncs the
/// directory. Returns the file opened for appending, positioned after the header.
///
/// The file is made under a name recovery ignores and renamed once its header is synced (as
/// a reused one is), so a segment file never has a torn header.
pub(crate) fn create_segment(
    dir: &Path,
    seq: u64,
    previous_len: Option<u64>,
    hook: &dyn IoHook,
) -> Result<File, WalError> {
    let fresh = free_path(dir, seq);
    hook.before(IoOp::CreateSegment, &fresh)
        .map_err(io_err("create segment", &fresh))?;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&fresh)
        .map_err(io_err("create segment", &fresh))?;
    recycle_segment(dir, &fresh, seq, previous_len, hook)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = segment_path(Path::new("/x"), 1);
        assert_eq!(p, Path::new("/x/00000000000000000001.wal"));
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(parse_name(name), Some(1));
        let max = segment_path(Path::new("/x"), u64::MAX);
        let name = max.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(parse_name(name), Some(u64::MAX));
    }

    #[test]
    fn other_names_are_not_segments() {
        for name in [
            "1.wal",
            "0000000000000000000a.wal",
            "00000000000000000001.tmp",
            "LOCK",
            ".wal",
        ] {
            assert_eq!(parse_name(name), None, "{name}");
        }
        // 20 digits that overflow u64.
        assert_eq!(parse_name("99999999999999999999.wal"), None);
    }
}
