//! The local [`Table`]: one SQLite file per table.
//!
//! Table `t` lives in `{dir}/t.sqlite` (WAL mode), created on first use, with
//! the schema `items(pk, sk, attrs, PRIMARY KEY(pk, sk)) WITHOUT ROWID`, where
//! `attrs` is the JSON object of the item's other attributes. Many processes
//! may write one table at once: every write is a `BEGIN IMMEDIATE`
//! transaction that waits up to 30 s for the lock, so conditional writes are
//! atomic across processes. Names, keys and sizes are checked against
//! DynamoDB's limits so that what runs here runs on AWS.
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
pub(crate) mod check;
mod checkpoint;
pub(crate) mod conn;
mod json;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use self::{
    checkpoint::Checkpointer,
    conn::{blocking, lock},
};
use crate::{
    error::{PortError, PortResult},
    table::{Condition, Item, Key, Table, Written},
};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    attrs TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;";
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
    /// One connection per table, opened on first use.
    tables: Mutex<HashMap<String, Arc<TableFile>>>,
}

/// An open table file: the connection, and the thread that checkpoints it.
struct TableFile {
    conn: Mutex<Connection>,
    checkpointer: Checkpointer,
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
            PortError::Backend(format!("cannot create table directory {}: {e}", dir.display()))
        })?;
        let inner = Inner { dir: dir.to_path_buf(), tables: Mutex::new(HashMap::new()) };
        Ok(SqliteTable { inner: Arc::new(inner) })
    }

    /// The SQLite file that holds `table`.
    pub fn sqlite_path(&self, table: &str) -> PathBuf {
        self.inner.dir.join(format!("{table}.sqlite"))
    }

    /// The connection for `table`, opening (and creating) the file on first use.
    fn file(&self, table: &str) -> Result<Arc<TableFile>, PortError> {
        if let Some(file) = lock(&self.inner.tables).get(table) {
            return Ok(file.clone());
        }
        // Open outside the map lock: opening may wait for another process's lock.
        let path = self.sqlite_path(table);
        let conn = conn::open(&path, PAGE_SIZE, SCHEMA)?;
        let backstop = checkpoint::BACKSTOP_BYTES / PAGE_SIZE;
        conn.execute_batch(&format!("PRAGMA wal_autocheckpoint={backstop};"))?;
        let checkpointer = Checkpointer::new(&path);
        let file = Arc::new(TableFile { conn: Mutex::new(conn), checkpointer });
        Ok(lock(&self.inner.tables).entry(table.to_owned()).or_insert(file).clone())
    }

    /// Runs `f` on `table`'s connection on the blocking thread pool.
    async fn with_conn<T: Send + 'static>(
        &self,
        table: &str,
        access: Access,
        f: impl FnOnce(&Connection) -> Result<T, PortError> + Send + 'static,
    ) -> PortResult<T> {
        check::table_name(table)?;
        let (this, table) = (self.clone(), table.to_owned());
        blocking(move || {
            let file = this.file(&table)?;
            let out = f(&lock(&file.conn))?;
            if access == Access::Write {
                file.checkpointer.wake();
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
        self.with_conn(table, Access::Write, move |conn| {
            conn::write(conn, |tx| {
                if condition != Condition::None {
                    let current = read(tx, &item.key)?;
                    if !check::condition_holds(&condition, current.as_ref()) {
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
        self.with_conn(table, Access::Read, move |conn| read(conn, &key)).await
    }

    async fn put_batch(&self, table: &str, items: Vec<Item>) -> PortResult<()> {
        if items.is_empty() {
            return check::table_name(table);
        }
        self.with_conn(table, Access::Write, move |conn| batch::put_batch(conn, items)).await
    }

    async fn query(&self, table: &str, pk: &str, sk_prefix: &str) -> PortResult<Vec<Item>> {
        if pk.is_empty() {
            return Err(PortError::Invalid("query has an empty pk: pass the partition key to read".into()));
        }
        let (pk, prefix) = (pk.to_owned(), sk_prefix.to_owned());
        self.with_conn(table, Access::Read, move |conn| {
            let mut stmt = conn.prepare_cached(QUERY)?;
            let mut rows = stmt.query(params![pk, prefix])?;
            let mut items = Vec::new();
            while let Some(row) = rows.next()? {
                let sk: String = row.get(0)?;
                if !sk.starts_with(&prefix) {
                    break;
                }
                let attrs = decode(row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?)?;
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
        if keys.is_empty() {
            return check::table_name(table);
        }
        self.with_conn(table, Access::Write, move |conn| {
            conn::write(conn, |tx| {
                let mut delete = tx.prepare_cached(DELETE)?;
                for key in &keys {
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
    attrs.map(|a| Ok(Item { key: key.clone(), attrs: decode(&a)? })).transpose()
}

/// Encodes and checks an item's attributes.
fn encode(item: &Item) -> Result<String, PortError> {
    check::item_shape(item)?;
    let attrs = serde_json::to_string(&item.attrs)
        .map_err(|e| PortError::Invalid(format!("cannot encode item attributes: {e}")))?;
    check::item_size(&item.key, attrs.len())?;
    Ok(attrs)
}

fn decode(attrs: &str) -> Result<Map<String, Value>, PortError> {
    serde_json::from_str(attrs)
        .map_err(|e| PortError::Backend(format!("stored attributes are not a json object: {e}")))
}
