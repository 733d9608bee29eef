//! `put_batch` into one shard of the SQLite table: one transaction, encoding
//! overlapped with inserting.
//!
//! Touching (encoding, then freeing) tens of thousands of JSON maps costs more
//! than inserting them, so a large batch is cut into chunks (of [`MIN_CHUNK`]
//! to [`MAX_CHUNK`] items, about an eighth of the batch), each encoded into one
//! buffer by a second thread while this thread inserts the previous one; when
//! no encoded chunk is ready, this thread encodes the next one itself rather
//! than wait. Chunks are inserted in batch order, so of two items with the
//! same key the later one wins. The whole batch is one `BEGIN IMMEDIATE`
//! transaction: an invalid item anywhere rolls everything back.

use std::{
    collections::HashMap,
    sync::{
        mpsc::{sync_channel, Receiver, SyncSender},
        Mutex,
    },
    thread,
};

use rusqlite::{params, Connection};
use serde_json::{Map, Value};

use super::{
    check, conn, json,
    names::Names,
    shard::{shard_of, SHARDS},
    INSERT,
};
use crate::{
    error::PortError,
    table::{rows::Rows, Item, Key},
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
#[derive(Debug)]
pub(super) struct Chunk {
    buf: String,
    rows: Vec<[usize; 4]>,
    /// The attribute names of compact rows (see [`names`]), stored with them.
    names: Option<Names>,
}

/// The items not yet encoded, handed out a chunk at a time to whichever thread asks.
struct Source {
    items: std::vec::IntoIter<Item>,
    chunk_len: usize,
    next: usize,
}

impl Source {
    /// The next chunk of raw items and its position in the batch.
    fn take(source: &Mutex<Source>) -> Option<(usize, Vec<Item>)> {
        let mut s = conn::lock(source);
        let len = s.chunk_len;
        let raw: Vec<Item> = s.items.by_ref().take(len).collect();
        if raw.is_empty() {
            return None;
        }
        s.next += 1;
        Some((s.next - 1, raw))
    }
}

/// Writes `items` in one transaction; replaces items with the same key.
pub(super) fn put_batch(conn: &Connection, items: Vec<Item>) -> Result<(), PortError> {
    if items.len() <= SMALL_BATCH {
        let chunk = encode_chunk(items)?;
        return conn::write(conn, |tx| insert(tx, &chunk));
    }
    let chunk_len = (items.len() / 8).clamp(MIN_CHUNK, MAX_CHUNK);
    let chunks = items.len().div_ceil(chunk_len);
    let source = Mutex::new(Source { items: items.into_iter(), chunk_len, next: 0 });
    let (send, recv) = sync_channel(CHUNKS_IN_FLIGHT);
    thread::scope(|scope| {
        let encoder = thread::Builder::new()
            .name("batchfan-put-batch".into())
            .spawn_scoped(scope, || encode_stream(&source, send))
            .map_err(|e| {
                PortError::backend(format!("cannot start the put_batch encoder thread: {e}")).caused_by(e)
            })?;
        let written = write_stream(conn, &source, chunks, recv);
        let encoded =
            encoder.join().unwrap_or_else(|_| Err(PortError::backend("put_batch encoder thread panicked")));
        // A bad item is the root cause when both fail.
        encoded.and(written)
    })
}

/// Checks and encodes each shard's items (a batch that spans shards, before
/// any is written); a large batch on two threads, half the items each.
pub(super) fn encode_groups(mut groups: Vec<(usize, Vec<Item>)>) -> Result<Vec<(usize, Chunk)>, PortError> {
    let encode_all = |groups: Vec<(usize, Vec<Item>)>| -> Result<Vec<(usize, Chunk)>, PortError> {
        groups.into_iter().map(|(shard, items)| Ok((shard, encode_chunk(items)?))).collect()
    };
    let total: usize = groups.iter().map(|(_, items)| items.len()).sum();
    let (mut seen, mut cut) = (0, groups.len());
    for (i, (_, items)) in groups.iter().enumerate() {
        if seen >= total / 2 {
            cut = i;
            break;
        }
        seen += items.len();
    }
    if total <= SMALL_BATCH || cut == groups.len() {
        return encode_all(groups);
    }
    let back = groups.split_off(cut);
    thread::scope(|scope| {
        let helper = thread::Builder::new()
            .name("batchfan-put-batch".into())
            .spawn_scoped(scope, move || encode_all(back))
            .map_err(|e| {
                PortError::backend(format!("cannot start the put_batch encoder thread: {e}")).caused_by(e)
            })?;
        let front = encode_all(groups);
        let back =
            helper.join().unwrap_or_else(|_| Err(PortError::backend("put_batch encoder thread panicked")));
        let mut front = front?;
        front.extend(back?);
        Ok(front)
    })
}

/// Encodes chunks until none are left or the writer stopped.
fn encode_stream(source: &Mutex<Source>, send: SyncSender<(usize, Chunk)>) -> Result<(), PortError> {
    while let Some((at, raw)) = Source::take(source) {
        let chunk = encode_chunk(raw)?;
        if send.send((at, chunk)).is_err() {
            // The writer stopped; its own error tells why.
            break;
        }
    }
    Ok(())
}

/// Inserts the `chunks` chunks in order, encoding some itself when none is
/// ready; commits when all are in, rolls back otherwise.
fn write_stream(
    conn: &Connection,
    source: &Mutex<Source>,
    chunks: usize,
    recv: Receiver<(usize, Chunk)>,
) -> Result<(), PortError> {
    conn::retry_busy(|| {
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK")?;
        }
        Ok(conn.execute_batch("BEGIN IMMEDIATE")?)
    })?;
    let stopped = || PortError::invalid("put_batch stopped before the last item");
    let streamed = (|| {
        let mut ready: HashMap<usize, Chunk> = HashMap::new();
        let mut next = 0;
        while next < chunks {
            if let Some(chunk) = ready.remove(&next) {
                insert(conn, &chunk)?;
                next += 1;
                continue;
            }
            let (at, chunk) = match recv.try_recv() {
                Ok(encoded) => encoded,
                Err(_) => match Source::take(source) {
                    Some((at, raw)) => (at, encode_chunk(raw)?),
                    None => recv.recv().map_err(|_| stopped())?,
                },
            };
            ready.insert(at, chunk);
        }
        Ok(())
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

pub(super) fn insert(conn: &Connection, chunk: &Chunk) -> Result<(), PortError> {
    if let Some(names) = &chunk.names {
        names.store(conn)?;
    }
    let mut stmt = conn.prepare_cached(INSERT)?;
    let buf = chunk.buf.as_str();
    for &[start, pk_end, sk_end, end] in &chunk.rows {
        stmt.execute(params![&buf[start..pk_end], &buf[pk_end..sk_end], &buf[sk_end..end]])?;
    }
    Ok(())
}

/// Checks and encodes items into one buffer: key, sort key, then attributes as JSON.
pub(super) fn encode_chunk(items: Vec<Item>) -> Result<Chunk, PortError> {
    let mut buf = Vec::new();
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        if rows.len() == 1 {
            // Size the buffer once, from the first item.
            buf.reserve(buf.len() * (rows.capacity() - 1) * 5 / 4);
        }
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
        .map_err(|e| PortError::backend(format!("encoded items are not utf-8: {e}")).caused_by(e))?;
    Ok(Chunk { buf, rows, names: None })
}

/// Checks and encodes [`Rows`] into one chunk per shard (in shard order), as
/// compact rows: `[H,v1,v2,...]` with `H` naming the attribute names (see [`names`]).
pub(super) fn encode_rows(rows: &Rows) -> Result<Vec<(usize, Chunk)>, PortError> {
    let fail = |e: serde_json::Error| PortError::invalid(format!("cannot encode item attributes: {e}"));
    let names = Names::new(rows.names())?;
    let head = format!("[{}", names.hash);
    // What DynamoDB counts of a row besides its values.
    let names_len: usize = rows.names().iter().map(String::len).sum();
    // Room for a shard's part up front, with a quarter to spare for an uneven
    // spread (an encoded row is its packed text plus the names' hash, quotes
    // and commas): buffers that grow by doubling copy what they hold and touch
    // twice the memory, fresh pages each, for a million rows.
    let (_, packed, _) = rows.packed();
    let per_row = head.len() + 3 * rows.names().len() + 2;
    let bytes = (packed.len() + rows.len() * per_row) / SHARDS * 5 / 4;
    let count = rows.len() / SHARDS * 5 / 4 + 1;
    let mut shards: Vec<(Vec<u8>, Vec<[usize; 4]>)> =
        (0..SHARDS).map(|_| (Vec::with_capacity(bytes), Vec::with_capacity(count))).collect();
    for row in rows.iter() {
        check::key_parts(row.pk, row.sk)?;
        let (buf, spans) = &mut shards[shard_of(row.pk)];
        let start = buf.len();
        buf.extend_from_slice(row.pk.as_bytes());
        let pk_end = buf.len();
        buf.extend_from_slice(row.sk.as_bytes());
        let sk_end = buf.len();
        buf.extend_from_slice(head.as_bytes());
        for (_, text, is_json) in row.values() {
            buf.push(b',');
            if is_json {
                buf.extend_from_slice(text.as_bytes());
            } else {
                json::write_str(buf, text).map_err(fail)?;
            }
        }
        buf.push(b']');
        check::item_size_parts(row.pk, row.sk, names_len + buf.len() - sk_end - head.len())?;
        spans.push([start, pk_end, sk_end, buf.len()]);
    }
    shards
        .into_iter()
        .enumerate()
        .filter(|(_, (_, spans))| !spans.is_empty())
        .map(|(shard, (buf, rows))| {
            let buf = String::from_utf8(buf)
                .map_err(|e| PortError::backend(format!("encoded rows are not utf-8: {e}")).caused_by(e))?;
            Ok((shard, Chunk { buf, rows, names: Some(names.clone()) }))
        })
        .collect()
}

/// Writes `attrs` as a JSON object, consuming it (so it is freed while still
/// in cache), and rejects attributes named like the key on the way.
fn encode_attrs(buf: &mut Vec<u8>, key: &Key, attrs: Map<String, Value>) -> Result<(), PortError> {
    let fail = |e: serde_json::Error| PortError::invalid(format!("cannot encode item attributes: {e}"));
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
    use crate::table::{rows::Cell, sqlite::names};

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
    fn rows_decode_like_the_same_items() {
        let mut rows = Rows::new(["Region", "Units Sold", "Line Items"]).unwrap();
        let (three, list) = (json!(3), json!([1, "x\n"]));
        for i in 0..50 {
            let (pk, v) = (format!("p{i}"), format!("v\"{i}"));
            rows.push(&pk, "s", [Cell::from(v.as_str()), Cell::from(&three), Cell::from(&list)]).unwrap();
        }
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(crate::table::sqlite::SCHEMA).unwrap();
        let from_rows = encode_rows(&rows).unwrap();
        let from_items =
            encode_groups(crate::table::sqlite::shard::group(rows.to_items().unwrap(), |i| &i.key.pk))
                .unwrap();
        assert_eq!(from_rows.len(), from_items.len());
        let decode = |c: &Chunk| -> Vec<(String, Map<String, Value>)> {
            if let Some(names) = &c.names {
                names.store(&conn).unwrap();
            }
            c.rows
                .iter()
                .map(|&[a, b, c2, d]| (c.buf[a..b].to_string(), names::decode(&conn, &c.buf[c2..d]).unwrap()))
                .collect()
        };
        for ((s1, c1), (s2, c2)) in from_rows.iter().zip(&from_items) {
            assert_eq!(s1, s2);
            assert!(c1.buf.len() < c2.buf.len(), "compact rows are smaller");
            assert_eq!(decode(c1), decode(c2));
        }
    }

    #[test]
    fn rows_with_an_oversized_row_are_refused() {
        let mut rows = Rows::new(["a"]).unwrap();
        rows.push("p", "s", [&"x".repeat(500 * 1024)]).unwrap();
        assert!(encode_rows(&rows).unwrap_err().to_string().contains("over dynamodb's"));
    }

    #[test]
    fn rejects_attributes_named_like_the_key() {
        let err = encode_chunk(vec![Item::new(Key::new("p", "s")).with("sk", 1)]).err().unwrap();
        assert!(err.to_string().contains("Item::key"), "{err}");
    }
}
