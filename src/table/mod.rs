//! The Table port: a DynamoDB-shaped key-value table with conditional writes.
//!
//! Every table batchfan touches has a string partition key `pk` and a string
//! sort key `sk`; other attributes are JSON values (mapped to DynamoDB
//! attribute values by the AWS adapter). batchfan's own records (work items,
//! results, runs, leases, idempotency claims) live in one such table, and job
//! code writes its own tables (e.g. `Orders`) through the same port.

pub(crate) mod check;
#[cfg(feature = "local")]
pub mod relay;
pub mod rows;
#[cfg(feature = "local")]
pub mod sqlite;

pub use rows::{Cell, Rows};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::PortResult;

/// Name of the partition key attribute in every table.
pub const PK: &str = "pk";
/// Name of the sort key attribute in every table.
pub const SK: &str = "sk";
/// Name of the TTL attribute (epoch seconds) in batchfan's table.
pub const TTL: &str = "expires_at";
/// Items per DynamoDB BatchWriteItem call.
pub const BATCH_WRITE_LIMIT: usize = 25;
/// Largest item DynamoDB stores, in bytes.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key { pk: pk.into(), sk: sk.into() }
    }
}

/// An item: its key and its other attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub key: Key,
    pub attrs: Map<String, Value>,
}

impl Item {
    pub fn new(key: Key) -> Self {
        Item { key, attrs: Map::new() }
    }
    /// Adds an attribute (builder style).
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.attrs.insert(name.to_owned(), value.into());
        self
    }
    /// A string attribute.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }
    /// An integer attribute.
    pub fn u64(&self, name: &str) -> Option<u64> {
        self.attrs.get(name).and_then(Value::as_u64)
    }
}

/// A condition on a single-item write (a subset of DynamoDB ConditionExpression).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Condition {
    /// Always write.
    None,
    /// Write only if no item has this key (`attribute_not_exists(pk)`).
    NotExists,
    /// Write only if the item exists and attribute `.0` equals `.1`.
    Equals(String, Value),
    /// Write if the item does not exist, or if attribute `.0` equals `.1`.
    NotExistsOrEquals(String, Value),
}

/// What a conditional write did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Written {
    /// The item was written.
    Yes,
    /// The condition failed; the item as it is now (if any).
    ConditionFailed(Option<Item>),
}

/// The Table capability. Implementations: SQLite (local), DynamoDB.
#[async_trait]
pub trait Table: Send + Sync {
    /// Writes one item under a condition.
    async fn put(&self, table: &str, item: Item, condition: Condition) -> PortResult<Written>;
    /// Reads one item.
    async fn get(&self, table: &str, key: &Key) -> PortResult<Option<Item>>;
    /// Writes many items, unconditionally (DynamoDB: BatchWriteItem in 25s,
    /// unprocessed items retried with backoff). Returns when all are stored.
    async fn put_batch(&self, table: &str, items: Vec<Item>) -> PortResult<()>;
    /// Writes many rows that share attribute names, unconditionally: the same
    /// as `put_batch` of [`Rows::to_items`], which is what this default does;
    /// an implementation may store the rows without building the items.
    async fn put_rows(&self, table: &str, rows: Rows) -> PortResult<()> {
        self.put_batch(table, rows.to_items()?).await
    }
    /// Items with partition key `pk` whose sort key starts with `sk_prefix`,
    /// in sort key order, following every page.
    async fn query(&self, table: &str, pk: &str, sk_prefix: &str) -> PortResult<Vec<Item>>;
    /// Deletes one item (no error if absent).
    async fn delete(&self, table: &str, key: &Key) -> PortResult<()>;
    /// Deletes many items (no error for absent ones).
    async fn delete_batch(&self, table: &str, keys: Vec<Key>) -> PortResult<()>;
}
