//! Group commit for `put_rows`: the chunks that concurrent calls have for one
//! shard go into one transaction.
//!
//! Each commit writes every page the transaction dirtied to the WAL, and a
//! batch of rows with random keys dirties most of the key index: the commit,
//! not the rows, is what a batch costs most (1M `orders` rows written 10,000
//! at a time instead of 30,000 took 0.65 s more CPU). The local service
//! writes for two `orders` children at once, and their calls arrive
//! together (both parse, then both write). So a call first queues its chunk
//! for each shard ([`Queue`]); a thread that takes a shard's connection writes
//! every chunk queued for it by then, its own and other calls', in one
//! transaction, and settles each one ([`Ticket`]). Inserting a large chunk
//! takes milliseconds (an `orders` child's share of a shard, 7,500 rows), and
//! the other call's rows often arrive meanwhile: before it commits, the
//! writer takes in what was queued for the shard while it inserted
//! ([`ABSORB_ROUNDS`]). A call returns once all its chunks are settled: its
//! rows are committed, as before; two calls mostly cost one commit per shard
//! instead of two.
//!
//! Each chunk is still written whole in one transaction. A transaction that
//! fails is rolled back and its chunks are written again one at a time, so a
//! call only ever gets its own chunk's error. Chunks are written in the order
//! they were queued. Another process holding a shard's file (SQLite's lock)
//! is waited for as [`super::spread`] does: the chunks go back to the head of
//! the queue, the call pauses and tries again, up to [`BUSY_TIMEOUT`].

use std::{
    sync::{Arc, Condvar, Mutex, TryLockError},
    time::{Duration, Instant},
};

use rusqlite::Connection;

use super::{
    batch::{self, Chunk},
    shard::{first_shard, Shards, SHARDS},
};
use crate::{
    error::PortError,
    sqlite::{lock, try_begin, BUSY_TIMEOUT},
};

/// First pause when every shard a call waits on is locked by another process; doubles up to [`MAX_PAUSE`].
const MIN_PAUSE: Duration = Duration::from_micros(200);
const MAX_PAUSE: Duration = Duration::from_millis(5);

/// How many times a writer, before it commits, takes in the chunks queued
/// for its shard while it inserted the ones it had: another call's rows
/// that arrive during a large insert share its commit instead of paying
/// for one of their own. Bounded, so a stream of calls cannot keep one
/// transaction open (and its first calls waiting) for ever.
const ABSORB_ROUNDS: usize = 2;

/// One call's chunk for one shard, and what became of it.
pub(super) struct Ticket {
    chunk: Chunk,
    outcome: Mutex<Option<Result<(), PortError>>>,
}

impl Ticket {
    fn new(chunk: Chunk) -> Arc<Ticket> {
        Arc::new(Ticket { chunk, outcome: Mutex::new(None) })
    }

    fn outcome(&self) -> Option<Result<(), PortError>> {
        lock(&self.outcome).clone()
    }

    fn settle(&self, outcome: Result<(), PortError>) {
        *lock(&self.outcome) = Some(outcome);
    }
}

/// The chunks queued for one shard and not yet taken by a writer.
#[derive(Default)]
pub(super) struct Queue {
    pending: Mutex<Vec<Arc<Ticket>>>,
    /// Signalled when a writer has settled tickets of this shard.
    settled: Condvar,
}

/// Tickets a writer has taken from a queue: settled with an error if the
/// writer unwinds before settling them, so that no call waits for ever.
struct Taken<'a> {
    queue: &'a Queue,
    tickets: Vec<Arc<Ticket>>,
}

impl Taken<'_> {
    /// Puts the tickets back at the head of the queue, unwritten.
    fn put_back(mut self) {
        let mut pending = lock(&self.queue.pending);
        let tickets = std::mem::take(&mut self.tickets);
        pending.splice(0..0, tickets);
    }

    /// The tickets are settled: wakes the calls waiting on them.
    fn done(mut self) {
        self.tickets.clear();
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        for ticket in self.tickets.drain(..) {
            ticket.settle(Err(PortError::backend("a table writer thread panicked while writing these rows")));
        }
        let _pending = lock(&self.queue.pending);
        self.queue.settled.notify_all();
    }
}

/// Writes each `(shard, chunk)`, in a transaction of its own or shared with
/// other calls' chunks for that shard; returns once all are committed, or
/// with the first chunk's error.
pub(super) fn write(shards: &Shards, chunks: Vec<(usize, Chunk)>) -> Result<(), PortError> {
    let first = first_shard();
    let mut mine: Vec<(usize, Arc<Ticket>)> = chunks
        .into_iter()
        .map(|(shard, chunk)| {
            let ticket = Ticket::new(chunk);
            lock(&shards.queue(shard).pending).push(ticket.clone());
            (shard, ticket)
        })
        .collect();
    mine.sort_by_key(|(shard, _)| (shard + SHARDS - first) % SHARDS);
    if let Err(e) = write_until_settled(shards, &mine) {
        withdraw(shards, &mine);
        return Err(e);
    }
    mine.iter().try_for_each(|(_, ticket)| ticket.outcome().unwrap_or(Ok(())))
}

/// Writes queued chunks of the shards `mine` are queued for until all of `mine` are settled.
fn write_until_settled(shards: &Shards, mine: &[(usize, Arc<Ticket>)]) -> Result<(), PortError> {
    let mut pause = MIN_PAUSE;
    let mut since = Instant::now();
    loop {
        let mut wrote = false;
        for (shard, ticket) in mine {
            if ticket.outcome().is_none() && write_queued(shards, *shard, false)?.is_some() {
                wrote = true;
            }
        }
        let Some(&(shard, _)) = mine.iter().find(|(_, t)| t.outcome().is_none()) else { return Ok(()) };
        if !wrote {
            // Every shard still to write is in another thread's hands (wait
            // for it) or locked by another process (pause below).
            wrote = write_queued(shards, shard, true)?.is_some();
        }
        if wrote {
            (pause, since) = (MIN_PAUSE, Instant::now());
        } else if since.elapsed() < BUSY_TIMEOUT {
            let queue = shards.queue(shard);
            let pending = lock(&queue.pending);
            let _ = queue.settled.wait_timeout(pending, pause);
            pause = (pause * 2).min(MAX_PAUSE);
        } else {
            let locked = mine.iter().filter(|(_, t)| t.outcome().is_none()).count();
            return Err(PortError::throttled(format!(
                "{locked} shard(s) of the table stayed locked by other writers for {BUSY_TIMEOUT:?}: \
                 retry later, or write from fewer processes at once"
            )));
        }
    }
}

/// After a failure: takes this call's unwritten chunks out of their queues,
/// and waits for those another thread is writing (settled, or put back in
/// the queue when another process holds the file, before that thread lets go
/// of the shard's connection), so that nothing of the call is written after
/// it returned.
fn withdraw(shards: &Shards, mine: &[(usize, Arc<Ticket>)]) {
    for (shard, ticket) in mine {
        let queue = shards.queue(*shard);
        loop {
            {
                let mut pending = lock(&queue.pending);
                let before = pending.len();
                pending.retain(|t| !Arc::ptr_eq(t, ticket));
                if pending.len() < before {
                    break;
                }
            }
            if ticket.outcome().is_some() {
                break;
            }
            match shards.file(*shard) {
                Ok(file) => drop(lock(&file.conn)),
                Err(_) => break,
            }
        }
    }
}

/// Takes shard `shard`'s connection (waiting for it if `wait`, else only if
/// free now) and writes every chunk queued for the shard in one transaction.
/// `Ok(Some(n))`: `n` chunks written (0: none were left, every chunk queued
/// before is settled); `Ok(None)`: nothing written, the connection is busy.
fn write_queued(shards: &Shards, shard: usize, wait: bool) -> Result<Option<usize>, PortError> {
    let file = shards.file(shard)?;
    let conn = if wait {
        lock(&file.conn)
    } else {
        match file.conn.try_lock() {
            Ok(conn) => conn,
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        }
    };
    let queue = shards.queue(shard);
    let mut taken = Taken { queue, tickets: std::mem::take(&mut *lock(&queue.pending)) };
    if taken.tickets.is_empty() {
        return Ok(Some(0));
    }
    match write_all(&conn, &mut taken) {
        Ok(true) => {
            tracing::debug!(shard, chunks = taken.tickets.len(), "group commit");
            shards.wrote(&file)
        }
        Ok(false) => {
            taken.put_back();
            return Ok(None);
        }
        Err(e) => taken.tickets.iter().for_each(|t| t.settle(Err(e.clone()))),
    }
    let count = taken.tickets.len();
    drop(conn);
    taken.done();
    Ok(Some(count))
}

/// Writes the `taken` tickets in one transaction, with the chunks queued
/// for the shard while they were inserted (up to [`ABSORB_ROUNDS`] times),
/// and settles them; if that fails, each on its own. `Ok(false)`: another
/// process holds the file, nothing written or settled.
fn write_all(conn: &Connection, taken: &mut Taken<'_>) -> Result<bool, PortError> {
    if !try_begin(conn)? {
        return Ok(false);
    }
    let mut together = taken.tickets.iter().try_for_each(|t| batch::insert(conn, &t.chunk));
    for _ in 0..ABSORB_ROUNDS {
        if together.is_err() {
            break;
        }
        #[cfg(test)]
        tests::before_absorbing(taken.queue);
        let arrived = std::mem::take(&mut *lock(&taken.queue.pending));
        if arrived.is_empty() {
            break;
        }
        together = arrived.iter().try_for_each(|t| batch::insert(conn, &t.chunk));
        taken.tickets.extend(arrived);
    }
    let tickets = &taken.tickets;
    match together.and_then(|()| Ok(conn.execute_batch("COMMIT")?)) {
        Ok(()) => tickets.iter().for_each(|t| t.settle(Ok(()))),
        Err(e) => {
            rollback(conn);
            if tickets.len() == 1 {
                tickets[0].settle(Err(e));
            } else {
                for ticket in tickets {
                    ticket.settle(write_one(conn, &ticket.chunk));
                }
            }
        }
    }
    Ok(true)
}

/// One chunk in a transaction of its own, waiting for the file's lock as SQLite does.
fn write_one(conn: &Connection, chunk: &Chunk) -> Result<(), PortError> {
    crate::sqlite::write(conn, |tx| batch::insert(tx, chunk))
}

fn rollback(conn: &Connection) {
    if let Err(e) = conn.execute_batch("ROLLBACK") {
        tracing::warn!(error = %e, "rollback of a failed grouped write failed");
    }
}

impl Shards {
    /// Shard `shard`'s queue of chunks to write.
    pub(super) fn queue(&self, shard: usize) -> &Queue {
        &self.queues[shard % SHARDS]
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
