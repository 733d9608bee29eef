//! The bus's SQLite file: messages, durable subscriptions, pending deliveries
//! and dead letters.
//!
//! Publishing stores the message and one pending row per subscription of its
//! topic in one transaction; a delivery deletes its pending row once the
//! subscriber succeeded, so a crash at any point redelivers rather than loses.

use std::{collections::HashSet, path::Path};

use rusqlite::{params, Connection, Row};

use super::{DeadLetter, Delivery, Published};
use crate::{error::PortError, sqlite as conn, topic::Message};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    subject TEXT,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    published_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_topic ON messages (topic, seq);
CREATE TABLE IF NOT EXISTS subscriptions (
    topic TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (topic, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending (
    topic TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (topic, name, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    topic TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    dead_at INTEGER NOT NULL,
    PRIMARY KEY (topic, name, seq)
) WITHOUT ROWID;";

/// Columns of a message, in the order [`message`] reads them.
const MESSAGE_COLUMNS: &str = "m.id, m.topic, m.subject, m.body, m.attributes, m.published_at";

pub(super) fn open(path: &Path) -> Result<Connection, PortError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| PortError::backend(format!("cannot create {}: {e}", dir.display())).caused_by(e))?;
    }
    conn::open(path, 4096, SCHEMA)
}

/// Stores a message and queues it for every subscription of its topic.
pub(super) fn publish(
    c: &Connection,
    id: &str,
    topic: &str,
    msg: &Message,
    now: i64,
) -> Result<(), PortError> {
    let attributes = serde_json::to_string(&msg.attributes)
        .map_err(|e| PortError::invalid(format!("cannot encode message attributes: {e}")).caused_by(e))?;
    conn::write(c, |tx| {
        tx.prepare_cached(
            "INSERT INTO messages (id, topic, subject, body, attributes, published_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![id, topic, msg.subject, msg.body, attributes, now])?;
        let seq = tx.last_insert_rowid();
        tx.prepare_cached("INSERT INTO pending (topic, name, seq) SELECT topic, name, ?2 FROM subscriptions WHERE topic = ?1")?
            .execute(params![topic, seq])?;
        Ok(())
    })
}

/// Records a durable subscription (no-op when it exists).
pub(super) fn subscribe(c: &Connection, topic: &str, name: &str, now: i64) -> Result<(), PortError> {
    conn::write(c, |tx| {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO subscriptions (topic, name, created_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![topic, name, now])?;
        Ok(())
    })
}

/// The oldest pending delivery of a subscription, skipping the `waiting` ones (in backoff).
pub(super) fn next_due(
    c: &Connection,
    topic: &str,
    name: &str,
    waiting: &HashSet<i64>,
) -> Result<Option<(i64, Delivery)>, PortError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT p.seq, p.attempts, {MESSAGE_COLUMNS} FROM pending p JOIN messages m ON m.seq = p.seq
         WHERE p.topic = ?1 AND p.name = ?2 ORDER BY p.seq"
    ))?;
    let mut rows = stmt.query(params![topic, name])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        if waiting.contains(&seq) {
            continue;
        }
        let attempts: u32 = row.get(1)?;
        let p = message(row, 2)?;
        let d = Delivery {
            message_id: p.message_id,
            topic: p.topic,
            message: p.message,
            attempt: attempts + 1,
            published_at: p.published_at,
        };
        return Ok(Some((seq, d)));
    }
    Ok(None)
}

/// The subscriber took the message: forget the delivery.
pub(super) fn ack(c: &Connection, topic: &str, name: &str, seq: i64) -> Result<(), PortError> {
    conn::write(c, |tx| {
        tx.prepare_cached("DELETE FROM pending WHERE topic = ?1 AND name = ?2 AND seq = ?3")?
            .execute(params![topic, name, seq])?;
        Ok(())
    })
}

/// An attempt failed and another will follow.
pub(super) fn failed(
    c: &Connection,
    topic: &str,
    name: &str,
    seq: i64,
    error: &str,
) -> Result<(), PortError> {
    conn::write(c, |tx| {
        tx.prepare_cached(
            "UPDATE pending SET attempts = attempts + 1, last_error = ?4 WHERE topic = ?1 AND name = ?2 AND seq = ?3",
        )?
        .execute(params![topic, name, seq, error])?;
        Ok(())
    })
}

/// The last attempt failed: move the delivery to the dead letters.
pub(super) fn dead(
    c: &Connection,
    topic: &str,
    name: &str,
    seq: i64,
    error: &str,
    now: i64,
) -> Result<(), PortError> {
    conn::write(c, |tx| {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO dead_letters (topic, name, seq, attempts, last_error, dead_at)
             SELECT topic, name, seq, attempts + 1, ?4, ?5 FROM pending WHERE topic = ?1 AND name = ?2 AND seq = ?3",
        )?
        .execute(params![topic, name, seq, error, now])?;
        tx.prepare_cached("DELETE FROM pending WHERE topic = ?1 AND name = ?2 AND seq = ?3")?
            .execute(params![topic, name, seq])?;
        Ok(())
    })
}

/// Pending deliveries (due or in backoff) of the given subscriptions.
pub(super) fn pending(c: &Connection, subscriptions: &[(String, String)]) -> Result<u64, PortError> {
    let mut stmt = c.prepare_cached("SELECT count(*) FROM pending WHERE topic = ?1 AND name = ?2")?;
    let mut total = 0;
    for (topic, name) in subscriptions {
        total += stmt.query_row(params![topic, name], |r| r.get::<_, u64>(0))?;
    }
    Ok(total)
}

/// Every message published on `topic`, oldest first.
pub(super) fn messages(c: &Connection, topic: &str) -> Result<Vec<Published>, PortError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.topic = ?1 ORDER BY m.seq"
    ))?;
    let rows = stmt.query_map(params![topic], |row| Ok(message(row, 0)))?;
    rows.map(|r| r?).collect()
}

/// Every dead letter, oldest first.
pub(super) fn dead_letters(c: &Connection) -> Result<Vec<DeadLetter>, PortError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT d.name, d.attempts, d.last_error, d.dead_at, {MESSAGE_COLUMNS}
         FROM dead_letters d JOIN messages m ON m.seq = d.seq ORDER BY d.dead_at, d.seq"
    ))?;
    let rows = stmt.query_map([], |row| {
        Ok((|| {
            let p = message(row, 4)?;
            Ok(DeadLetter {
                subscription: row.get(0)?,
                message_id: p.message_id,
                topic: p.topic,
                message: p.message,
                attempts: row.get(1)?,
                error: row.get(2)?,
                published_at: p.published_at,
                dead_at: row.get(3)?,
            })
        })())
    })?;
    rows.map(|r| r?).collect()
}

/// Reads [`MESSAGE_COLUMNS`] starting at column `at`.
fn message(row: &Row<'_>, at: usize) -> Result<Published, PortError> {
    let attributes: String = row.get(at + 4)?;
    let attributes = serde_json::from_str(&attributes).map_err(|e| {
        PortError::backend(format!("stored message attributes are not a json object: {e}")).caused_by(e)
    })?;
    Ok(Published {
        message_id: row.get(at)?,
        topic: row.get(at + 1)?,
        message: Message { subject: row.get(at + 2)?, body: row.get(at + 3)?, attributes },
        published_at: row.get(at + 5)?,
    })
}
