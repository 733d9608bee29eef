//! SQLite plumbing shared by the local stores (the table, the bus and the
//! engine's database; the object store takes [`blocking`]).
//!
//! Several processes write the same files at once (job processes, the engine,
//! the CLI), so every connection runs in WAL mode with a long busy timeout, and
//! every write is a `BEGIN IMMEDIATE` transaction retried while the database
//! stays busy, up to [`BUSY_TIMEOUT`].

use std::{
    path::Path,
    sync::{Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::PortError;

/// How long a write waits for another process's lock before it gives up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Page cache per connection, in KiB (grows only as used): big enough that a
/// large batch does not spill pages to the WAL before it commits — a batch
/// of random keys dirties most of a shard's key index, ~26 bytes a row (a
/// 2M-row `orders` table: 12.4 MB per shard), so 64 MB holds the index of a
/// shard of ~2.5M rows (a table of ~10M) and the batch's new rows.
///
/// Not larger: what else a cache keeps is mostly the pages of rows appended
/// by earlier batches, never touched again (reads go through the memory
/// map), and every page of it is fresh memory the kernel zeroes and, at
/// exit, frees. At 256 MB, a 2M-row `orders` run's service grew to 626 MB
/// resident against 370 MB at 64 MB, and was no faster (three alternated
/// pairs: 3.95 / 3.98 / 4.15 s against 4.02 / 3.91 / 3.76 s).
const CACHE_KIB: u32 = 64 * 1024;

/// Bytes of the database file read through a memory map instead of `pread`
/// copies (SQLite maps only what the file has).
const MMAP_BYTES: u64 = 4 << 30;

/// A busy or locked database is [`PortError::Throttled`] (retryable).
impl From<rusqlite::Error> for PortError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        let port = match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                PortError::throttled(format!("sqlite: {e}"))
            }
            _ => PortError::backend(format!("sqlite: {e}")),
        };
        port.caused_by(e)
    }
}

/// Opens (creating if needed) a database file in WAL mode and applies `schema`.
/// `page_size` only matters for a new file.
pub(crate) fn open(path: &Path, page_size: u32, schema: &str) -> Result<Connection, PortError> {
    let conn = connect(path, page_size)?;
    // The schema is created in one transaction, so as many tables as it
    // creates means all of it: most opens (every job process) then skip a
    // write transaction. Fewer: a new file, or one from before a table was
    // added to the schema (every statement is `IF NOT EXISTS`).
    let tables: usize =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))?;
    if tables < schema.matches("CREATE TABLE").count() {
        write(&conn, |tx| Ok(tx.execute_batch(schema)?))?;
    }
    Ok(conn)
}

/// Opens (creating if needed) a database file as every local store does —
/// the table shards, the bus and the engine's database: WAL mode,
/// `synchronous=NORMAL`, [`BUSY_TIMEOUT`], the page cache and memory map
/// above. `page_size` only matters for a new file.
pub(crate) fn connect(path: &Path, page_size: u32) -> Result<Connection, PortError> {
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        PortError::backend(format!(
            "cannot open sqlite file {}: {e}: check the directory exists and is writable",
            path.display()
        ))
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(32);
    conn.execute_batch(&format!(
        "PRAGMA page_size={page_size}; PRAGMA cache_size=-{CACHE_KIB}; PRAGMA mmap_size={MMAP_BYTES};"
    ))?;
    let mode = retry_busy(|| Ok(conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))?))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "sqlite file is not in WAL mode");
    }
    conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
    Ok(conn)
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction and commits it; retries the
/// whole transaction while the database is busy, up to [`BUSY_TIMEOUT`].
///
/// `f` may run more than once, so it must not have side effects outside `tx`.
pub(crate) fn write<T>(
    conn: &Connection,
    mut f: impl FnMut(&Transaction<'_>) -> Result<T, PortError>,
) -> Result<T, PortError> {
    retry_busy(|| {
        if !conn.is_autocommit() {
            // A panic in an earlier holder of this connection left a transaction open.
            conn.execute_batch("ROLLBACK")?;
        }
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    })
}

/// `BEGIN IMMEDIATE` without waiting: `Ok(false)` when another process holds
/// the write lock (the caller tries another file, or pauses, and comes back).
pub(crate) fn try_begin(conn: &Connection) -> Result<bool, PortError> {
    if !conn.is_autocommit() {
        // A panic in an earlier holder of this connection left a transaction open.
        conn.execute_batch("ROLLBACK")?;
    }
    conn.busy_timeout(Duration::ZERO)?;
    let began = conn.execute_batch("BEGIN IMMEDIATE");
    conn.busy_timeout(BUSY_TIMEOUT)?;
    match began.map_err(PortError::from) {
        Ok(()) => Ok(true),
        Err(PortError::Throttled(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Retries `f` while it fails with a busy/locked error, up to [`BUSY_TIMEOUT`].
///
/// SQLite's busy handler already waits inside most calls; this loop covers the
/// cases where SQLite reports busy at once (WAL recovery, snapshot conflicts).
pub(crate) fn retry_busy<T>(mut f: impl FnMut() -> Result<T, PortError>) -> Result<T, PortError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match f() {
            Err(PortError::Throttled(reason)) if Instant::now() < deadline => {
                tracing::debug!(%reason, pause_ms = pause.as_millis() as u64, "sqlite busy, retrying");
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Locks a mutex, recovering it if an earlier holder panicked (for a
/// connection, [`write`] rolls back any transaction such a panic left open).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs blocking SQLite or filesystem work without stalling the async executor.
///
/// On a multi-threaded runtime the work runs in place ([`block_in_place`]:
/// the worker hands its other tasks to another thread), which halves the
/// latency of small operations (measured: about twice the single puts per
/// second of `spawn_blocking`). On a
/// current-thread runtime, where that is not allowed, it goes to the blocking
/// thread pool.
///
/// [`block_in_place`]: tokio::task::block_in_place
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PortError> + Send + 'static,
) -> Result<T, PortError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread) {
        return tokio::task::block_in_place(f);
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PortError::backend(format!("blocking task failed: {e}")).caused_by(e))?
}

#[cfg(test)]
mod source_tests {
    use std::error::Error;

    use super::PortError;

    #[test]
    fn a_sqlite_error_stays_the_port_errors_source() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let e = PortError::from(conn.execute_batch("SELECT * FROM nowhere").unwrap_err());
        assert!(matches!(&e, PortError::Backend(m) if m.contains("no such table: nowhere")), "{e}");
        assert!(e.source().and_then(|s| s.downcast_ref::<rusqlite::Error>()).is_some(), "{e:?}");
    }
}
