//! The `orders` workload: a 14-column sales CSV; each row gets a
//! ConfirmationId derived from the run and its Order ID, is written with it to
//! the `Orders` table, and `OrderId,ConfirmationId` goes to the output.

pub mod dedupe;
mod ids;

use std::{fmt::Write as _, ops::ControlFlow};

use batchfan::{
    objects::ObjectRef,
    plan::csv::{record_end, RecordScanner},
    run::layout,
    table::Rows,
};
use sha2::{Digest, Sha256};

pub use self::ids::{IdKey, IdMap};

/// The 14 columns of the input, in order.
pub const COLUMNS: [&str; 14] = [
    "Region",
    "Country",
    "Item Type",
    "Sales Channel",
    "Order Priority",
    "Order Date",
    "Order ID",
    "Ship Date",
    "Units Sold",
    "Unit Price",
    "Unit Cost",
    "Total Revenue",
    "Total Cost",
    "Total Profit",
];
const ORDER_ID: usize = 6;

/// The table rows go to, unless `ORDERS_TABLE` says otherwise.
pub const DEFAULT_TABLE: &str = "Orders";

/// A confirmation id: a UUID-shaped hash of run and Order ID, so a retried
/// child writes the same id again.
pub fn confirmation_id(run_id: &str, order_id: &str) -> String {
    let mut buf = [0u8; 36];
    confirmation_id_into(run_id, order_id, &mut buf).to_owned()
}

/// [`confirmation_id`], written into `out` (no allocation).
pub fn confirmation_id_into<'b>(run_id: &str, order_id: &str, out: &'b mut [u8; 36]) -> &'b str {
    let mut h = Sha256::new();
    h.update(run_id.as_bytes());
    h.update(b":");
    h.update(order_id.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    // Version 8 (custom: a hash of ours) and the RFC 9562 variant.
    uuid::Builder::from_custom_bytes(b).into_uuid().hyphenated().encode_lower(out)
}

/// Splits one CSV record into fields (RFC 4180 quotes, newlines inside quotes).
pub fn split_csv(record: &str) -> Result<Vec<String>, String> {
    batchfan::plan::csv::split_record(record)
}

/// Checks a row: 14 fields, a numeric Order ID, numeric quantities.
pub fn parse_row(line: &str) -> Result<Vec<String>, String> {
    let fields = split_csv(line)?;
    check_fields(&fields)?;
    Ok(fields)
}

/// The checks of [`parse_row`] on already split fields.
fn check_fields<S: AsRef<str>>(fields: &[S]) -> Result<(), String> {
    if fields.len() != COLUMNS.len() {
        return Err(format!("expected {} fields, found {}", COLUMNS.len(), fields.len()));
    }
    let id = fields[ORDER_ID].as_ref();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("Order ID {id:?} is not a number"));
    }
    for (i, f) in fields.iter().enumerate().skip(8) {
        let f = f.as_ref();
        if f.parse::<f64>().is_err() {
            return Err(format!("{} {f:?} is not a number", COLUMNS[i]));
        }
    }
    Ok(())
}

/// Where child `index` of `stage` stores its accepted Order IDs
/// ([`dedupe::IdList`]) for the aggregation; scratch, like the child outputs
/// (cleanup deletes it).
pub fn ids_ref(bucket: &str, pipeline: &str, run_id: &str, stage: &str, index: u64) -> ObjectRef {
    ObjectRef::new(bucket, format!("{}ids/{stage}/{index:010}", layout::run_prefix(pipeline, run_id)))
}

/// Input bytes as text, invalid UTF-8 replaced by U+FFFD (the row holding it
/// is then rejected or stored as read). Valid text is checked by
/// `str::from_utf8`, several times faster than `String::from_utf8_lossy`'s
/// scan, which is left for the bytes that need it.
pub fn text_of(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Attribute name of the ConfirmationId in an Orders row.
pub const CONFIRMATION_ID: &str = "ConfirmationId";

/// Empty Orders rows: the 14 columns, then the ConfirmationId.
pub fn new_rows() -> Rows {
    let names = COLUMNS.iter().copied().chain([CONFIRMATION_ID]);
    // The names are fixed and distinct, so this cannot fail.
    Rows::new(names).unwrap_or_else(|e| unreachable!("orders attribute names: {e}"))
}

/// What one range of rows produced.
#[derive(Debug)]
pub struct Processed {
    /// Orders table rows (see [`new_rows`]).
    pub rows_out: Rows,
    /// `OrderId,ConfirmationId` lines.
    pub output: String,
    /// `line,reason,"raw"` lines.
    pub rejects: String,
    /// Records seen (blank lines are none).
    pub rows: u64,
    pub rejected: u64,
    /// Order IDs accepted so far, with their line numbers: a later copy is a reject.
    pub seen: IdMap<u64>,
}

impl Default for Processed {
    fn default() -> Self {
        Processed {
            rows_out: new_rows(),
            output: String::new(),
            rejects: String::new(),
            rows: 0,
            rejected: 0,
            seen: IdMap::default(),
        }
    }
}

impl Processed {
    /// Takes the rows made so far, leaving an empty set.
    pub fn take_rows(&mut self) -> Rows {
        std::mem::replace(&mut self.rows_out, new_rows())
    }
}

/// Puts the first fields of `parts` into `fields`; returns how many parts there were.
fn fill<'a>(fields: &mut [&'a str; COLUMNS.len()], parts: impl Iterator<Item = &'a str>) -> usize {
    let mut count = 0;
    for part in parts {
        if let Some(slot) = fields.get_mut(count) {
            *slot = part;
        }
        count += 1;
    }
    count
}

/// Splits and checks `record` into `fields` (borrowing `record`, or `owned`
/// when it has quotes): what [`process`] accepts.
fn checked_fields<'a>(
    record: &'a str,
    owned: &'a mut Vec<String>,
    fields: &mut [&'a str; COLUMNS.len()],
) -> Result<(), String> {
    let count = if memchr::memchr(b'"', record.as_bytes()).is_some() {
        *owned = split_csv(record)?;
        let owned: &'a Vec<String> = owned;
        fill(fields, owned.iter().map(String::as_str))
    } else {
        fill(fields, record.split(','))
    };
    if count != COLUMNS.len() {
        return Err(format!("expected {} fields, found {count}", COLUMNS.len()));
    }
    check_fields(&fields[..])
}

/// Appends the Orders row of `fields` to `rows`; returns its ConfirmationId.
fn push_row<'b>(
    rows: &mut Rows,
    run_id: &str,
    fields: &[&str; COLUMNS.len()],
    id_buf: &'b mut [u8; 36],
) -> Result<&'b str, String> {
    let order_id = fields[ORDER_ID];
    let id = confirmation_id_into(run_id, order_id, id_buf);
    let cells = fields.iter().copied().chain([id]);
    rows.push(order_id, "order", cells).map_err(|e| e.to_string())?;
    Ok(id)
}

/// A reject line: `line,reason,"record"`.
fn reject(out: &mut String, line: u64, reason: &str, record: &str) {
    let quoted = record.replace('"', "\"\"");
    let _ = writeln!(out, "{line},{},\"{quoted}\"", reason.replace(',', ";"));
}

/// Processes the records of `text`, whose first line is line number `first_line`.
///
/// A record is a line, or several when a quoted field holds newlines; a
/// reject names the record's first line. An Order ID seen before in this
/// `out` is a reject naming both lines (the first copy wins).
pub fn process(run_id: &str, text: &str, first_line: u64, out: &mut Processed) {
    // Room for every row up front (input rows are ~120 bytes, a packed table
    // row ~170; an output line is an Order ID, a comma, a ConfirmationId and
    // a newline): no growth, so no copy of what is there into fresh pages and
    // no rehash of the ID map part way.
    let rows = text.len() / 100 + 1;
    out.rows_out.reserve(rows, 192);
    out.seen.reserve(rows);
    out.output.reserve(rows * 48);
    let mut id_buf = [0u8; 36];
    for (line, record) in records(text, first_line) {
        if record.trim().is_empty() {
            continue;
        }
        out.rows += 1;
        let mut owned: Vec<String> = Vec::new();
        let mut fields = [""; COLUMNS.len()];
        let accepted = checked_fields(record, &mut owned, &mut fields).and_then(|()| {
            let order_id = fields[ORDER_ID];
            let key = IdKey::of(order_id);
            if let Some(first) = out.seen.get(&key) {
                return Err(format!("order id {order_id} on line {line} duplicates line {first}"));
            }
            let id = push_row(&mut out.rows_out, run_id, &fields, &mut id_buf)?;
            out.seen.insert(key, line);
            out.output.push_str(order_id);
            out.output.push(',');
            out.output.push_str(id);
            out.output.push('\n');
            Ok(())
        });
        if let Err(reason) = accepted {
            out.rejected += 1;
            reject(&mut out.rejects, line, &reason, record);
        }
    }
}

/// A record found again by [`find_rows`].
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Its first line.
    pub line: u64,
    /// The record as in the input (without its newline).
    pub record: String,
    /// Its 14 fields.
    pub fields: Vec<String>,
}

/// The first valid record of each of `ids` in `text` (first line
/// `first_line`), by Order ID. Used to resolve duplicates across children.
pub fn find_rows(
    text: &str,
    first_line: u64,
    ids: &std::collections::BTreeSet<&str>,
    found: &mut std::collections::BTreeMap<String, Found>,
) {
    for (line, record) in records(text, first_line) {
        let mut owned: Vec<String> = Vec::new();
        let mut fields = [""; COLUMNS.len()];
        if checked_fields(record, &mut owned, &mut fields).is_err() {
            continue;
        }
        let order_id = fields[ORDER_ID];
        if !ids.contains(order_id) || found.contains_key(order_id) {
            continue;
        }
        let fields = fields.iter().map(|f| (*f).to_owned()).collect();
        found.insert(order_id.to_owned(), Found { line, record: record.to_owned(), fields });
    }
}

/// Appends the Orders row of `fields` (14, as checked by [`process`]) to `rows`.
pub fn push_fields(rows: &mut Rows, run_id: &str, fields: &[String]) -> Result<(), String> {
    let mut refs = [""; COLUMNS.len()];
    if fill(&mut refs, fields.iter().map(String::as_str)) != COLUMNS.len() {
        return Err(format!("expected {} fields, found {}", COLUMNS.len(), fields.len()));
    }
    push_row(rows, run_id, &refs, &mut [0u8; 36]).map(|_| ())
}

/// A reject line for `record` (line `line`) whose Order ID was first on line `first`.
pub fn duplicate_reject(out: &mut String, order_id: &str, line: u64, first: u64, record: &str) {
    reject(out, line, &format!("order id {order_id} on line {line} duplicates line {first}"), record);
}

/// Rows per table write: with the spec's 30,000 lines per child, one write
/// per child (about 8 MB of packed rows). Each commit into the local table
/// rewrites the key index pages it touches, and with Order IDs in random
/// order a batch touches most of them, so the number of commits sets the
/// cost: 1M random rows took 9–11 s end to end at 2,500 rows per write,
/// 5.6–6.4 s at 10,000 and 4.7–5.3 s at 30,000 (`batchfan-bench`,
/// 2026-12-03). The DynamoDB adapter splits a write into BatchWriteItem
/// calls of 25 whatever its size.
pub const WRITE_ROWS: usize = 50_000;

/// The records of `text` (which starts at a record start), each with the
/// number of its first line, without its newline and `\r`.
///
/// A line without a `"` is a record (the fast path); a line with one is
/// scanned by the RFC 4180 rules of [`batchfan::plan::csv`], so a quoted
/// field may carry the record over several lines.
pub fn records(text: &str, first_line: u64) -> impl Iterator<Item = (u64, &str)> {
    let mut rest = text;
    let mut line = first_line;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let bytes = rest.as_bytes();
        let nl = memchr::memchr(b'\n', bytes);
        let line_end = nl.unwrap_or(bytes.len());
        let (len, next, newlines) = if memchr::memchr(b'"', &bytes[..line_end]).is_none() {
            (line_end, nl.map_or(bytes.len(), |i| i + 1), 1)
        } else {
            match record_end(bytes) {
                Some((n, k)) => (n - 1, n, k),
                None => (bytes.len(), bytes.len(), 0),
            }
        };
        let record = &rest[..len];
        let record = record.strip_suffix('\r').unwrap_or(record);
        let first = line;
        line += newlines;
        rest = &rest[next..];
        Some((first, record))
    })
}

/// Splits `text` (whose first line is number `first_line`, at a record start)
/// into pieces of at most `per` records, each with the number of its first line.
pub fn record_chunks(text: &str, first_line: u64, per: usize) -> impl Iterator<Item = (&str, u64)> {
    let per = per.max(1);
    let mut rest = text;
    let mut line = first_line;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let bytes = rest.as_bytes();
        let cut = memchr::memchr_iter(b'\n', bytes).nth(per - 1).map_or(bytes.len(), |i| i + 1);
        let (cut, newlines) = if memchr::memchr(b'"', &bytes[..cut]).is_none() {
            (cut, per as u64)
        } else {
            let mut n = 0;
            let mut found = None;
            RecordScanner::new().scan(bytes, |offset, newlines| {
                n += 1;
                if n == per {
                    found = Some((offset as usize, newlines));
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            });
            found.unwrap_or((bytes.len(), 0))
        };
        let (chunk, tail) = rest.split_at(cut);
        let first = line;
        line += newlines;
        rest = tail;
        Some((chunk, first))
    })
}

#[cfg(test)]
#[path = "orders/tests.rs"]
mod tests;
