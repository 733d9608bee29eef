//! Hash sharding: one table is [`SHARDS`] SQLite files, so concurrent writers
//! (threads or processes) mostly take different files' write locks.
//!
//! Table `t` lives in the directory `{dir}/t/`, as files `00.sqlite` to
//! `03.sqlite`; an item goes to the file numbered by the 64-bit FNV-1a hash of
//! its pk, modulo [`SHARDS`]. The hash is spelled out here (not Rust's
//! randomized hasher), so every process and every release picks the same file
//! for a pk. Changing [`SHARDS`] would strand existing data: a table written
//! with one count must be read with the same count.
//!
//! Files are opened on first use, one at a time: a job process that touches
//! one key opens one file.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, OnceLock,
    },
};

use rusqlite::Connection;

use super::{checkpoint, checkpoint::Checkpointer, conn, PAGE_SIZE, SCHEMA};
use crate::error::PortError;

/// Files per table. Measured with the `orders` pipeline (2 writer processes
/// on 2 cores, 2,000-item batches over random pks): 4 shards beat 1 and 2
/// (less waiting for the other writer's lock) and 8 and 16 (each batch is
/// cut into more, smaller transactions, which costs more CPU than the
/// waiting it saves).
pub(crate) const SHARDS: usize = 4;

/// The shard that holds items with partition key `pk` (FNV-1a, 64 bits).
pub(crate) fn shard_of(pk: &str) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in pk.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % SHARDS as u64) as usize
}

/// Splits `items` by shard, keeping their order within each shard; returns
/// only the shards that got items, in shard order.
pub(super) fn group<T>(items: Vec<T>, pk: impl Fn(&T) -> &str) -> Vec<(usize, Vec<T>)> {
    let mut groups: Vec<Vec<T>> = (0..SHARDS).map(|_| Vec::new()).collect();
    for item in items {
        groups[shard_of(pk(&item))].push(item);
    }
    groups.into_iter().enumerate().filter(|(_, g)| !g.is_empty()).collect()
}

/// An open shard file: the connection, and the thread that checkpoints it.
pub(super) struct TableFile {
    pub(super) conn: Mutex<Connection>,
    pub(super) checkpointer: Checkpointer,
}

/// The shard files of one table, each opened on first use.
pub(super) struct Shards {
    dir: PathBuf,
    files: Vec<OnceLock<Arc<TableFile>>>,
    /// Set when another process holds these files open and checkpoints
    /// them: writes here then wake no checkpoint thread.
    held_elsewhere: AtomicBool,
    /// Each shard's chunks waiting for a grouped commit ([`super::group`]).
    pub(super) queues: Vec<super::group::Queue>,
}

impl Shards {
    /// The shards of the table in `dir` (nothing is opened or created yet).
    pub(super) fn new(dir: PathBuf) -> Shards {
        Shards {
            dir,
            files: (0..SHARDS).map(|_| OnceLock::new()).collect(),
            held_elsewhere: AtomicBool::new(false),
            queues: (0..SHARDS).map(|_| super::group::Queue::default()).collect(),
        }
    }

    /// Leaves this table's checkpoints to the process that holds its files open.
    pub(super) fn leave_checkpoints(&self) {
        self.held_elsewhere.store(true, Ordering::Relaxed);
    }

    /// After a write to `file`: asks for a checkpoint, unless another process does them.
    pub(super) fn wrote(&self, file: &TableFile) {
        if !self.held_elsewhere.load(Ordering::Relaxed) {
            file.checkpointer.wake();
        }
    }

    /// The shard files opened so far.
    pub(super) fn opened(&self) -> impl Iterator<Item = &Arc<TableFile>> {
        self.files.iter().filter_map(OnceLock::get)
    }

    /// The file of shard `shard`.
    pub(super) fn path(dir: &Path, shard: usize) -> PathBuf {
        dir.join(format!("{shard:02}.sqlite"))
    }

    /// Shard `shard`'s connection, opening (and creating) the file on first use.
    pub(super) fn file(&self, shard: usize) -> Result<Arc<TableFile>, PortError> {
        let cell = self.files.get(shard).ok_or_else(|| {
            PortError::backend(format!("shard {shard} is out of range: a table has {SHARDS} shards"))
        })?;
        if let Some(file) = cell.get() {
            return Ok(file.clone());
        }
        // Opened outside any lock (opening may wait for another process's
        // lock); of two threads racing here, one connection is kept.
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            PortError::backend(format!(
                "cannot create table directory {}: {e}: check the parent is writable",
                self.dir.display()
            ))
        })?;
        let path = Shards::path(&self.dir, shard);
        let conn = conn::open(&path, PAGE_SIZE, SCHEMA)?;
        let backstop = checkpoint::BACKSTOP_BYTES / PAGE_SIZE;
        conn.execute_batch(&format!("PRAGMA wal_autocheckpoint={backstop};"))?;
        let file = Arc::new(TableFile { conn: Mutex::new(conn), checkpointer: Checkpointer::new(&path) });
        Ok(cell.get_or_init(|| file).clone())
    }
}

/// Where this process starts its round of the shards of a batch: writer
/// processes starting at different shards and going round at the same pace
/// rarely want the same file at once.
pub(super) fn first_shard() -> usize {
    static FIRST: OnceLock<usize> = OnceLock::new();
    *FIRST.get_or_init(|| shard_of(&std::process::id().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shard of a pk is part of the file format: it must never change.
    #[test]
    fn shards_are_stable() {
        // FNV-1a 64: "" 0xcbf29ce484222325, "a" 0xaf63dc4c8601ec8c,
        // "run#1" 0x7a1ef36a339878ee, "counter" 0x77976c7416517c63.
        assert_eq!(SHARDS, 4, "changing SHARDS strands existing tables");
        assert_eq!([shard_of(""), shard_of("a"), shard_of("run#1"), shard_of("counter")], [1, 0, 2, 3]);
    }

    #[test]
    fn groups_keep_order_within_a_shard() {
        let items: Vec<String> = (0..200).map(|i| format!("pk{}", i % 40)).collect();
        let groups = group(items.clone(), |s| s.as_str());
        assert_eq!(groups.iter().map(|(_, g)| g.len()).sum::<usize>(), 200);
        for (shard, g) in &groups {
            assert!(g.iter().all(|pk| shard_of(pk) == *shard));
            let expected: Vec<&String> = items.iter().filter(|pk| shard_of(pk) == *shard).collect();
            assert_eq!(g.iter().collect::<Vec<_>>(), expected);
        }
    }
}
