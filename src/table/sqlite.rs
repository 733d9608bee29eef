//! The local [`Table`]: each table hash-sharded across several SQLite files.
//!
//! Table `t` lives in the directory `{dir}/t/`, as [`shard::SHARDS`] files
//! (WAL mode) created on first use, each with the schema
//! `items(pk, sk, attrs, UNIQUE(pk, sk))`, where `attrs` is the JSON object of
//! the item's other attributes. An item's file is chosen by
//! a stable hash of its pk (see [`shard`]), so every operation on one pk
//! (put, get, query, delete) touches one file. Many processes may write one
//! table at once: every write is a `BEGIN IMMEDIATE` transaction that waits up
//! to 30 s for its file's lock, so conditional writes are atomic across
//! processes, and writers to different shards do not wait for each other.
//!
//! `put_batch`, `put_rows` and `delete_batch` write each shard's items in a
//! transaction of their own (see [`spread`]): a batch is atomic within a
//! shard, not across shards. `put_batch` and `put_rows` commit a shard's
//! part together with what other calls have queued for that shard by then
//! ([`group`]), one commit for several calls; each call's part is still
//! whole in one transaction, and a call returns once its parts are committed. Every item is checked and encoded before anything is written, so an
//! invalid item still leaves the table untouched; only a storage failure part
//! way can leave part of a batch written. Names, keys and sizes are checked
//! against DynamoDB's limits so that what runs here runs on AWS.
//!
//! ```no_run
//! # async fn demo() -> Result<(), batchfan::error::PortError> {
//! use batchfan::table::{sqlite::SqliteTable, Condition, Item, Key, Table};
//! let table = SqliteTable::open(std::path::Path::new(".batchfan/tables"))?;
//! let item = Item::new(Key::new("run#1", "item#0001")).with("state", "open");
//! table.put("Orders", item, Condition::NotExists).await?;
//! let items = table.query("Orders", "run#1", "item#").await?;
//! # let _ = items; Ok(()) }
//! ```

mod batch;
mod checkpoint;
mod group;
mod json;
mod names;
pub(crate) mod shard;
mod spread;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use self::shard::{shard_of, Shards};
use super::check;
use crate::{
    error::{PortError, PortResult},
    sqlite::{self as conn, blocking, lock},
    table::{Condition, Item, Key, Rows, Table, Written},
};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    attrs TEXT NOT NULL,
    UNIQUE (pk, sk)
);
CREATE TABLE IF NOT EXISTS attr_names (hash INTEGER PRIMARY KEY, names TEXT NOT NULL);";
// A rowid table with a (pk, sk) index, not a `WITHOUT ROWID` table keyed by
// (pk, sk): items written in random pk order land at the end of the table,
// and only the small index entries go between existing ones, so a batch
// dirties (and writes to the WAL) a few pages instead of one per item. With
// 1M `orders` rows this about halved the pipeline's time.
/// Large pages: batches of wide items cost about half the CPU they do with
/// 4 KiB pages; 64 KiB saves a little more but makes single puts (one page
/// written to the WAL each) slower.
const PAGE_SIZE: u32 = 32 * 1024;
const INSERT: &str = "INSERT OR REPLACE INTO items (pk, sk, attrs) VALUES (?1, ?2, ?3)";
const SELECT: &str = "SELECT attrs FROM items WHERE pk = ?1 AND sk = ?2";
const DELETE: &str = "DELETE FROM items WHERE pk = ?1 AND sk = ?2";
/// Rows from `sk_prefix` on; the caller stops at the first sort key without the prefix.
const QUERY: &str = "SELECT sk, attrs FROM items WHERE pk = ?1 AND sk >= ?2 ORDER BY sk";

/// The SQLite implementation of [`Table`]. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct SqliteTable {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// The shards of each table used so far (their files open on first use).
    tables: Mutex<HashMap<String, Arc<Shards>>>,
}

/// Whether an operation writes (and so should wake the checkpointer).
#[derive(Clone, Copy, PartialEq)]
enum Access {
    Read,
    Write,
}

impl SqliteTable {
    /// A table store rooted at `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<SqliteTable, PortError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            PortError::backend(format!("cannot create table directory {}: {e}", dir.display()))
        })?;
        let inner = Inner { dir: dir.to_path_buf(), tables: Mutex::new(HashMap::new()) };
        Ok(SqliteTable { inner: Arc::new(inner) })
    }

    /// Opens (creating) every shard file of `table` and keeps it open for as
    /// long as this store lives. The local backend does this for its
    /// pipelines' tables: a job process that closes a file is then never its
    /// last user, so it does not checkpoint the WAL into the database, delete
    /// it and create it again (with the fsyncs that go with each) — about 1 ms
    /// of every short job.
    pub async fn hold_open(&self, table: &str) -> PortResult<()> {
        check::table_name(table)?;
        let shards = self.shards(table);
        blocking(move || (0..shard::SHARDS).try_for_each(|i| shards.file(i).map(drop))).await
    }

    /// Leaves the WAL checkpoints of `table` to the long-lived process that
    /// holds its files open ([`SqliteTable::hold_open`], the local service,
    /// which checkpoints them on a timer: [`SqliteTable::checkpoint_open_files`]).
    /// For a job process's writes to batchfan's table: a checkpoint thread and
    /// a second connection started by a child that exits right after its one
    /// write cost more than the write, and die with the child. A file nobody
    /// holds is still checkpointed when its last connection closes, and
    /// SQLite's `wal_autocheckpoint` stays as the backstop.
    pub fn leave_checkpoints_to_holder(&self, table: &str) {
        self.shards(table).leave_checkpoints();
    }

    /// Wakes the checkpoint thread of every shard file this store has open
    /// whose WAL has grown past a few MB: the local service calls this on a
    /// timer for the job processes, which leave checkpoints to it.
    pub fn checkpoint_open_files(&self) {
        let tables: Vec<Arc<Shards>> = lock(&self.inner.tables).values().cloned().collect();
        for shards in tables {
            shards.opened().for_each(|file| file.checkpointer.wake());
        }
    }

    /// The directory that holds `table`'s shard files (`00.sqlite`, `01.sqlite`, ...).
    pub fn sqlite_path(&self, table: &str) -> PathBuf {
        self.inner.dir.join(table)
    }

    /// `table`'s shards (no file is opened here).
    fn shards(&self, table: &str) -> Arc<Shards> {
        let mut tables = lock(&self.inner.tables);
        if let Some(shards) = tables.get(table) {
            return shards.clone();
        }
        let shards = Arc::new(Shards::new(self.sqlite_path(table)));
        tables.insert(table.to_owned(), shards.clone());
        shards
    }

    /// Runs `f` on the connection of the shard that holds `pk`, on the blocking thread pool.
    async fn with_shard<T: Send + 'static>(
        &self,
        table: &str,
        pk: &str,
        access: Access,
        f: impl FnOnce(&Connection) -> Result<T, PortError> + Send + 'static,
    ) -> PortResult<T> {
        self.with_file(table, shard_of(pk), access, f).await
    }

    /// Runs `f` on the connection of shard `shard`, on the blocking thread pool.
    async fn with_file<T: Send + 'static>(
        &self,
        table: &str,
        shard: usize,
        access: Access,
        f: impl FnOnce(&Connection) -> Result<T, PortError> + Send + 'static,
    ) -> PortResult<T> {
        check::table_name(table)?;
        let shards = self.shards(table);
        blocking(move || {
            let file = shards.file(shard)?;
            let out = f(&lock(&file.conn))?;
            if access == Access::Write {
                shards.wrote(&file);
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl Table for SqliteTable {
    async fn put(&self, table: &str, item: Item, condition: Condition) -> PortResult<Written> {
        let attrs = encode(&item)?;
        let pk = item.key.pk.clone();
        self.with_shard(table, &pk, Access::Write, move |conn| {
            conn::write(conn, |tx| {
                if condition != Condition::None {
                    let current = read(tx, &item.key)?;
                    if !condition.holds(current.as_ref()) {
                        return Ok(Written::ConditionFailed(current));
                    }
                }
                tx.prepare_cached(INSERT)?.execute(params![item.key.pk, item.key.sk, attrs])?;
                Ok(Written::Yes)
            })
        })
        .await
    }

    async fn get(&self, table: &str, key: &Key) -> PortResult<Option<Item>> {
        check::key(key)?;
        let key = key.clone();
        self.with_shard(table, &key.pk.clone(), Access::Read, move |conn| read(conn, &key)).await
    }

    async fn put_batch(&self, table: &str, items: Vec<Item>) -> PortResult<()> {
        check::table_name(table)?;
        let mut groups = shard::group(items, |item| &item.key.pk);
        if groups.len() <= 1 {
            // One shard: one transaction, encoding overlapped with inserting.
            let Some((shard, items)) = groups.pop() else { return Ok(()) };
            return self
                .with_file(table, shard, Access::Write, move |conn| batch::put_batch(conn, items))
                .await;
        }
        let shards = self.shards(table);
        blocking(move || {
            // Encode (and check) everything before writing anything.
            let chunks = batch::encode_groups(groups)?;
            group::write(&shards, chunks)
        })
        .await
    }

    async fn put_rows(&self, table: &str, rows: Rows) -> PortResult<()> {
        check::table_name(table)?;
        if rows.is_empty() {
            return Ok(());
        }
        let shards = self.shards(table);
        blocking(move || {
            // Encode (and check) every row before writing any.
            let chunks = batch::encode_rows(&rows)?;
            drop(rows);
            group::write(&shards, chunks)
        })
        .await
    }

    async fn query(&self, table: &str, pk: &str, sk_prefix: &str) -> PortResult<Vec<Item>> {
        if pk.is_empty() {
            return Err(PortError::invalid("query has an empty pk: pass the partition key to read"));
        }
        let (pk, prefix) = (pk.to_owned(), sk_prefix.to_owned());
        self.with_shard(table, &pk.clone(), Access::Read, move |conn| {
            let mut stmt = conn.prepare_cached(QUERY)?;
            let mut rows = stmt.query(params![pk, prefix])?;
            let mut items = Vec::new();
            while let Some(row) = rows.next()? {
                let sk: String = row.get(0)?;
                if !sk.starts_with(&prefix) {
                    break;
                }
                let attrs = names::decode(conn, row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?)?;
                items.push(Item { key: Key { pk: pk.clone(), sk }, attrs });
            }
            Ok(items)
        })
        .await
    }

    async fn delete(&self, table: &str, key: &Key) -> PortResult<()> {
        self.delete_batch(table, vec![key.clone()]).await
    }

    async fn delete_batch(&self, table: &str, keys: Vec<Key>) -> PortResult<()> {
        keys.iter().try_for_each(check::key)?;
        check::table_name(table)?;
        if keys.is_empty() {
            return Ok(());
        }
        let shards = self.shards(table);
        let groups = shard::group(keys, |key| &key.pk);
        blocking(move || {
            spread::write_groups(&shards, groups, |conn, keys| {
                let mut delete = conn.prepare_cached(DELETE)?;
                for key in keys {
                    delete.execute(params![key.pk, key.sk])?;
                }
                Ok(())
            })
        })
        .await
    }
}

/// Reads one item by key.
fn read(conn: &Connection, key: &Key) -> Result<Option<Item>, PortError> {
    let attrs: Option<String> =
        conn.prepare_cached(SELECT)?.query_row(params![key.pk, key.sk], |r| r.get(0)).optional()?;
    attrs.map(|a| Ok(Item { key: key.clone(), attrs: names::decode(conn, &a)? })).transpose()
}

/// Encodes and checks an item's attributes.
fn encode(item: &Item) -> Result<String, PortError> {
    check::item_shape(item)?;
    let attrs = serde_json::to_string(&item.attrs)
        .map_err(|e| PortError::invalid(format!("cannot encode item attributes: {e}")).caused_by(e))?;
    check::item_size(&item.key, attrs.len())?;
    Ok(attrs)
}
