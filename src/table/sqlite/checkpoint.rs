//! Background WAL checkpoints, so a writer never pays for copying the WAL
//! into the database file.
//!
//! SQLite normally checkpoints inside the commit that pushes the WAL past
//! 1,000 pages; for a batch of 30,000 items that doubles the commit's cost.
//! Writers here only wake a thread, which runs a `PASSIVE` checkpoint (it
//! never waits for readers or writers) at most every [`MIN_INTERVAL`]. A large
//! `wal_autocheckpoint` stays on the writers as a backstop in case this thread
//! falls behind.

use std::{
    path::{Path, PathBuf},
    sync::{
        mpsc::{sync_channel, Receiver, SyncSender},
        OnceLock,
    },
    thread,
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};

/// Shortest pause between two checkpoints of one file.
const MIN_INTERVAL: Duration = Duration::from_millis(50);
/// WAL size after which a writer checkpoints itself, in bytes.
pub(crate) const BACKSTOP_BYTES: u32 = 128 * 1024 * 1024;

/// WAL size below which writers do not bother the checkpoint thread: a
/// short-lived job process that writes one result never starts one.
///
/// A checkpoint copies the last version of each page in the WAL, so the
/// fewer of them, the fewer times a page that every batch rewrites (the key
/// index, with keys in random order) is written to the database. At 4 MB a
/// 1M-row `orders` run wrote 420 MB into its table files for 262 MB of
/// table, and the checkpoint threads took 16 % of the run's CPU; at 64 MB,
/// 300 MB and 6 %. The cost is WAL files of 64 MB and more between two
/// checkpoints (writers checkpoint themselves past [`BACKSTOP_BYTES`]),
/// which readers search through SQLite's WAL index.
const WAKE_BYTES: u64 = 64 * 1024 * 1024;

/// Wakes the checkpoint thread of one database file, started on first need;
/// the thread ends when this is dropped.
pub(crate) struct Checkpointer {
    path: PathBuf,
    wal: PathBuf,
    wake: OnceLock<Option<SyncSender<()>>>,
}

impl Checkpointer {
    /// A checkpointer for the database at `path` (no thread yet).
    pub(crate) fn new(path: &Path) -> Checkpointer {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Checkpointer { path: path.to_path_buf(), wal: wal.into(), wake: OnceLock::new() }
    }

    /// Asks for a checkpoint soon (after a write committed) when the WAL has
    /// grown past [`WAKE_BYTES`]; never blocks.
    pub(crate) fn wake(&self) {
        if std::fs::metadata(&self.wal).map_or(0, |m| m.len()) < WAKE_BYTES {
            return;
        }
        let sender = self.wake.get_or_init(|| {
            let (wake, woken) = sync_channel(1);
            let path = self.path.clone();
            match thread::Builder::new().name("batchfan-checkpoint".into()).spawn(move || run(path, woken)) {
                Ok(_) => Some(wake),
                Err(e) => {
                    // SQLite's own autocheckpoint remains as the backstop.
                    tracing::warn!(error = %e, "cannot start the checkpoint thread");
                    None
                }
            }
        });
        if let Some(s) = sender {
            let _ = s.try_send(());
        }
    }
}

fn run(path: PathBuf, woken: Receiver<()>) {
    let mut conn: Option<Connection> = None;
    while woken.recv().is_ok() {
        if conn.is_none() {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            match Connection::open_with_flags(&path, flags) {
                Ok(c) => conn = Some(c),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot open for checkpoints"),
            }
        }
        if let Some(c) = &conn {
            let done = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            });
            match done {
                Ok((busy, wal, copied)) => {
                    tracing::trace!(path = %path.display(), busy, wal, copied, "checkpoint")
                }
                Err(e) => tracing::debug!(path = %path.display(), error = %e, "checkpoint failed"),
            }
        }
        thread::sleep(MIN_INTERVAL);
    }
}
