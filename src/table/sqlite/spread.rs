//! Writes that span shards: one transaction per shard, taking whichever
//! shard's lock is free.
//!
//! A writer goes round its pending shards (starting at [`first_shard`]) and
//! tries `BEGIN IMMEDIATE` on each without waiting; a shard another writer
//! holds is skipped and tried again on the next round. Only when every pending
//! shard is busy does the writer sleep, briefly, before the next round; it
//! gives up after [`BUSY_TIMEOUT`] without progress. So two processes writing
//! one table mostly write different files instead of queueing for one.
//!
//! Each shard's part is atomic; the batch as a whole is not (a failure part
//! way leaves the parts already committed).

use std::{
    sync::TryLockError,
    thread,
    time::{Duration, Instant},
};

use rusqlite::Connection;

use super::shard::{first_shard, Shards, TableFile, SHARDS};
use crate::error::PortError;
use crate::sqlite::{try_begin, BUSY_TIMEOUT};

/// First pause when every pending shard is busy; doubles up to [`MAX_PAUSE`].
const MIN_PAUSE: Duration = Duration::from_micros(200);
const MAX_PAUSE: Duration = Duration::from_millis(5);

/// Writes each `(shard, group)` with `write` in a transaction of its own on
/// that shard. `write` may run more than once for a group (after a busy
/// error), so it must not have side effects outside the transaction.
pub(super) fn write_groups<G>(
    shards: &Shards,
    mut pending: Vec<(usize, G)>,
    write: impl Fn(&Connection, &G) -> Result<(), PortError>,
) -> Result<(), PortError> {
    let first = first_shard();
    pending.sort_by_key(|(shard, _)| (shard + SHARDS - first) % SHARDS);
    let mut pause = MIN_PAUSE;
    let mut since = Instant::now();
    while !pending.is_empty() {
        let mut wrote = false;
        let mut i = 0;
        while i < pending.len() {
            let (shard, group) = &pending[i];
            let file = shards.file(*shard)?;
            if try_write(&file, |conn| write(conn, group))? {
                shards.wrote(&file);
                pending.remove(i);
                wrote = true;
            } else {
                i += 1;
            }
        }
        if wrote {
            (pause, since) = (MIN_PAUSE, Instant::now());
        } else if since.elapsed() < BUSY_TIMEOUT {
            thread::sleep(pause);
            pause = (pause * 2).min(MAX_PAUSE);
        } else {
            return Err(PortError::throttled(format!(
                "{} shard(s) of the table stayed locked by other writers for {BUSY_TIMEOUT:?}: \
                 retry later, or write from fewer processes at once",
                pending.len()
            )));
        }
    }
    Ok(())
}

/// Runs `f` in a transaction on `file` if its write lock is free now and
/// commits; `Ok(false)` (nothing written) if another writer holds it.
fn try_write(
    file: &TableFile,
    f: impl FnOnce(&Connection) -> Result<(), PortError>,
) -> Result<bool, PortError> {
    let conn = match file.conn.try_lock() {
        Ok(conn) => conn,
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
    };
    if !try_begin(&conn)? {
        return Ok(false);
    }
    match f(&conn).and_then(|()| Ok(conn.execute_batch("COMMIT")?)) {
        Ok(()) => Ok(true),
        Err(e) => {
            if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                tracing::warn!(error = %rollback, "rollback of a failed shard write failed");
            }
            match e {
                PortError::Throttled(_) => Ok(false),
                e => Err(e),
            }
        }
    }
}
