//! `put_batch` for the SQLite table: one transaction, encoding overlapped with inserting.
//!
//! Touching (encoding, then freeing) tens of thousands of JSON maps costs about
//! as much as inserting them, so a large batch is encoded on a second thread,
//! in chunks (of [`MIN_CHUNK`] to [`MAX_CHUNK`] items, about an eighth of the
//! batch) packed into one buffer each, while this thread
//! inserts the previous chunk. The whole batch is one `BEGIN IMMEDIATE`
//! transaction: an invalid item anywhere rolls everything back.

use std::{
    sync::mpsc::{sync_channel, Receiver, SyncSender},
    thread,
};

use rusqlite::{params, Connection};
use serde_json::{Map, Value};

use super::{check, conn, json, INSERT};
use crate::{
    error::PortError,
    table::{Item, Key},
};

/// A batch of at most this many items is written without a second thread.
const SMALL_BATCH: usize = 256;
/// Fewest items per encoded chunk.
const MIN_CHUNK: usize = 128;
/// Most items per encoded chunk.
const MAX_CHUNK: usize = 2048;
/// Encoded chunks in flight between the threads.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Encoded items: `[start, pk_end, sk_end, attrs_end]` ranges into one buffer.
struct Chunk {
    buf: String,
    rows: Vec<[usize; 4]>,
}

/// What the encoder thread sends: a chunk, or the end (the error, if any, is its result).
enum Msg {
    Rows(Chunk),
    Done,
}

/// Writes `items` in one transaction; replaces items with the same key.
pub(super) fn put_batch(conn: &Connection, items: Vec<Item>) -> Result<(), PortError> {
    if items.len() <= SMALL_BATCH {
        let chunk = encode_chunk(items)?;
        return conn::write(conn, |tx| insert(tx, &chunk));
    }
    let chunk_len = (items.len() / 8).clamp(MIN_CHUNK, MAX_CHUNK);
    let (send, recv) = sync_channel(CHUNKS_IN_FLIGHT);
    thread::scope(|scope| {
        let encoder = thread::Builder::new()
            .name("batchfan-put-batch".into())
            .spawn_scoped(scope, move || encode_stream(items, chunk_len, send))
            .map_err(|e| PortError::Backend(format!("cannot start the put_batch encoder thread: {e}")))?;
        let written = write_stream(conn, recv);
        let encoded = encoder
            .join()
            .unwrap_or_else(|_| Err(PortError::Backend("put_batch encoder thread panicked".into())));
        // A bad item is the root cause when both fail.
        encoded.and(written)
    })
}

/// Encodes items chunk by chunk, freeing each item as it goes.
fn encode_stream(items: Vec<Item>, chunk_len: usize, send: SyncSender<Msg>) -> Result<(), PortError> {
    let mut items = items.into_iter();
    loop {
        let chunk = encode_chunk(items.by_ref().take(chunk_len))?;
        if chunk.rows.is_empty() {
            // The writer may have stopped already; its own error then tells why.
            let _ = send.send(Msg::Done);
            return Ok(());
        }
        if send.send(Msg::Rows(chunk)).is_err() {
            return Ok(());
        }
    }
}

/// Inserts chunks as they arrive; commits when the encoder is done, rolls back otherwise.
fn write_stream(conn: &Connection, recv: Receiver<Msg>) -> Result<(), PortError> {
    conn::retry_busy(|| {
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK")?;
        }
        Ok(conn.execute_batch("BEGIN IMMEDIATE")?)
    })?;
    let streamed = (|| loop {
        match recv.recv() {
            Ok(Msg::Rows(chunk)) => insert(conn, &chunk)?,
            Ok(Msg::Done) => return Ok(()),
            Err(_) => return Err(PortError::Invalid("put_batch stopped before the last item".into())),
        }
    })();
    match streamed.and_then(|()| Ok(conn.execute_batch("COMMIT")?)) {
        Ok(()) => Ok(()),
        Err(e) => {
            if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                tracing::warn!(error = %rollback, "rollback of a failed put_batch failed");
            }
            Err(e)
        }
    }
}

fn insert(conn: &Connection, chunk: &Chunk) -> Result<(), PortError> {
    let mut stmt = conn.prepare_cached(INSERT)?;
    let buf = chunk.buf.as_str();
    for &[start, pk_end, sk_end, end] in &chunk.rows {
        stmt.execute(params![&buf[start..pk_end], &buf[pk_end..sk_end], &buf[sk_end..end]])?;
    }
    Ok(())
}

/// Checks and encodes items into one buffer: key, sort key, then attributes as JSON.
fn encode_chunk(items: impl IntoIterator<Item = Item>) -> Result<Chunk, PortError> {
    let mut buf = Vec::new();
    let mut rows = Vec::new();
    for item in items {
        check::key(&item.key)?;
        let start = buf.len();
        buf.extend_from_slice(item.key.pk.as_bytes());
        let pk_end = buf.len();
        buf.extend_from_slice(item.key.sk.as_bytes());
        let sk_end = buf.len();
        encode_attrs(&mut buf, &item.key, item.attrs)?;
        check::item_size(&item.key, buf.len() - sk_end)?;
        rows.push([start, pk_end, sk_end, buf.len()]);
    }
    let buf = String::from_utf8(buf)
        .map_err(|e| PortError::Backend(format!("encoded items are not utf-8: {e}")))?;
    Ok(Chunk { buf, rows })
}

/// Writes `attrs` as a JSON object, consuming it (so it is freed while still
/// in cache), and rejects attributes named like the key on the way.
fn encode_attrs(buf: &mut Vec<u8>, key: &Key, attrs: Map<String, Value>) -> Result<(), PortError> {
    let fail = |e: serde_json::Error| PortError::Invalid(format!("cannot encode item attributes: {e}"));
    buf.push(b'{');
    for (i, (name, value)) in attrs.into_iter().enumerate() {
        check::attr_name(key, &name)?;
        if i > 0 {
            buf.push(b',');
        }
        json::write_str(buf, &name).map_err(fail)?;
        buf.push(b':');
        json::write_value(buf, &value).map_err(fail)?;
    }
    buf.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn encodes_attrs_like_serde_json() {
        let attrs = json!({"b": [1, 2.5, null], "a": {"x": "q\"uote"}, "c": true});
        let Value::Object(map) = attrs.clone() else { unreachable!() };
        let mut buf = Vec::new();
        encode_attrs(&mut buf, &Key::new("p", "s"), map).unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), serde_json::to_string(&attrs).unwrap());
    }

    #[test]
    fn chunks_pack_keys_and_attrs() {
        let items = vec![Item::new(Key::new("p", "s1")).with("n", 1), Item::new(Key::new("pé", "s2"))];
        let chunk = encode_chunk(items).unwrap();
        let parts: Vec<_> = chunk
            .rows
            .iter()
            .map(|&[a, b, c, d]| (&chunk.buf[a..b], &chunk.buf[b..c], &chunk.buf[c..d]))
            .collect();
        assert_eq!(parts, [("p", "s1", r#"{"n":1}"#), ("pé", "s2", "{}")]);
    }

    #[test]
    fn rejects_attributes_named_like_the_key() {
        let err = encode_chunk([Item::new(Key::new("p", "s")).with("sk", 1)]).err().unwrap();
        assert!(err.to_string().contains("Item::key"), "{err}");
    }
}
