//! The embedded [`MetadataStore`](crate::MetadataStore) backend: one SQLite file under the data
//! dir, shareable by several local processes (a gateway and storage nodes).
//!
//! How it stays correct across processes:
//! - the file is in WAL journal mode, so readers never block the single writer;
//! - every write runs in a `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock before
//!   the first read, so a read-check-write (an epoch fence, a version check, the producer id
//!   counter) cannot interleave with another process's;
//! - a busy timeout makes a writer wait for the lock instead of failing at once;
//! - `synchronous = FULL`: an ownership change that was acknowledged survives a power loss, since
//!   losing one could let two nodes believe they own the same partition.
//!
//! Each handle owns one writer connection and a few read-only connections, each behind a
//! `std::sync::Mutex` (never held across an `.await`); calls run on tokio's blocking pool so async
//! callers never wait on SQLite's file locks. In WAL mode a read on any connection sees every
//! transaction committed before it started, so splitting reads from writes keeps
//! read-your-writes.
//!
//! Layout: `schema` (tables and migrations), `rows` (column ⇄ domain type conversions), one
//! module per group of records (`tenants`, `principals`, `topics`, `nodes`, `manifest`, `groups`) with
//! plain synchronous functions over a `&Connection`, and `store_impl` wiring them to the trait.

mod groups;
mod manifest;
mod nodes;
mod principals;
mod rows;
mod schema;
mod store_impl;
mod tenants;
mod topics;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use tracing::Instrument;

use crate::error::{MetadataError, Result};

/// How long a writer waits for another connection's write lock before giving up with
/// [`MetadataError::Backend`]. Metadata transactions are a few statements long, so 5 s of
/// contention means something is wedged.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections per handle: enough for the gateway's concurrent cache misses, few enough
/// that file descriptors and page caches stay small.
const READERS: usize = 4;

/// The SQLite backend of [`MetadataStore`](crate::MetadataStore). Cheap to clone; clones share
/// the same connections.
///
/// A call whose future is dropped still runs to completion on the blocking pool: a caller that
/// times out a conditional write must re-read to learn whether it happened.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if missing) the metadata file at `path`, with its parent directories and
    /// schema, using [`DEFAULT_BUSY_TIMEOUT`]. Blocking: call it at startup, not on a hot path.
    pub fn open(path: &Path) -> Result<Self, MetadataError> {
        Self::open_with_busy_timeout(path, DEFAULT_BUSY_TIMEOUT)
    }

    /// Like [`SqliteStore::open`] with an explicit busy timeout.
    pub fn open_with_busy_timeout(path: &Path, busy_timeout: Duration) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                MetadataError::Backend(format!("creating {}: {e}", parent.display()))
            })?;
        }
        let mut writer = connect(path, busy_timeout)?;
        enable_wal(&writer, path, busy_timeout)?;
        schema::migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| {
                let conn = connect(path, busy_timeout)?;
                conn.execute_batch("PRAGMA query_only = ON;")?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>>>()?;
        tracing::info!(path = %path.display(), "opened SQLite metadata store");
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                path: path.to_path_buf(),
            }),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a read-only connection outside any explicit transaction (each statement
    /// sees the latest committed state). For reads that are a single statement.
    async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        self.blocking(op, move || f(&inner.reader())).await
    }

    /// Runs `f` inside a `BEGIN IMMEDIATE` transaction, committed if `f` returns `Ok` and rolled
    /// back otherwise, so a failed condition leaves nothing behind.
    async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        self.blocking(op, move || {
            let mut guard = lock(&inner.writer);
            let tx = guard.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn blocking<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let span = tracing::debug_span!("metadata.sqlite", op);
        let inner = span.clone();
        let res = tokio::task::spawn_blocking(move || inner.in_scope(f))
            .instrument(span)
            .await
            .map_err(|e| MetadataError::Backend(format!("{op}: blocking task failed: {e}")))?;
        match &res {
            Err(e @ (MetadataError::Backend(_) | MetadataError::Corrupt(_))) => {
                tracing::warn!(op, error = %e, "metadata operation failed");
            }
            Err(e) => tracing::debug!(op, error = %e, "metadata operation refused"),
            Ok(_) => {}
        }
        res
    }
}

impl Inner {
    /// A free reader if there is one, else waits for one in round-robin order.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        for i in 0..n {
            match self.readers[(start + i) % n].try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        lock(&self.readers[start % n])
    }
}

/// Switches the file to WAL journal mode (persistent: done once per file).
///
/// SQLite answers `SQLITE_BUSY` at once, without calling the busy handler, when two connections
/// try to switch a new file at the same moment (each holds a shared lock the other needs gone),
/// so processes starting together retry here until the busy timeout.
fn enable_wal(conn: &Connection, path: &Path, busy_timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + busy_timeout;
    let mut backoff = Duration::from_millis(1);
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(mode) => {
                if !mode.eq_ignore_ascii_case("wal") {
                    // Still correct (rollback-journal locking is cross-process too), only slower.
                    tracing::warn!(path = %path.display(), mode, "SQLite refused WAL journal mode");
                }
                return Ok(());
            }
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(50));
            }
            Err(e) => {
                return Err(MetadataError::Backend(format!(
                    "enabling WAL mode on {}: {e}",
                    path.display()
                )))
            }
        }
    }
}

/// Opens one connection with the settings every connection of the store needs.
fn connect(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    // NO_MUTEX: each connection is used by one thread at a time, under our own mutex.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| MetadataError::Backend(format!("opening {}: {e}", path.display())))?;
    conn.busy_timeout(busy_timeout)?;
    // FULL: an acknowledged ownership change must survive a power loss (see the module docs).
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")?;
    Ok(conn)
}

/// Locks a connection. A poisoned mutex is still usable: a panic inside `write` dropped the
/// open `Transaction` while unwinding, which rolled it back, so the connection holds no partial
/// state.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
