//! The `orders` workload: a 14-column sales CSV; each row gets a
//! ConfirmationId derived from the run and its Order ID, is written with it to
//! the `Orders` table, and `OrderId,ConfirmationId` goes to the output.

use std::fmt::Write as _;

use batchfan::table::{Item, Key};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

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
    let mut h = Sha256::new();
    h.update(run_id.as_bytes());
    h.update(b":");
    h.update(order_id.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0xf)] as char);
    }
    out
}

/// Splits one CSV line into fields (RFC 4180 quotes supported).
pub fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::with_capacity(14);
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if cur.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', true) => quoted = false,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(cur);
    Ok(fields)
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

/// Attribute names of an Orders row in sorted order, with the column each comes
/// from (`None`: the ConfirmationId), so a row's map is bulk-built, not inserted key by key.
fn sorted_attributes() -> &'static [(&'static str, Option<usize>)] {
    static SORTED: std::sync::OnceLock<Vec<(&'static str, Option<usize>)>> = std::sync::OnceLock::new();
    SORTED.get_or_init(|| {
        let mut v: Vec<(&'static str, Option<usize>)> =
            COLUMNS.iter().enumerate().map(|(i, c)| (*c, Some(i))).collect();
        v.push(("ConfirmationId", None));
        v.sort_by_key(|(name, _)| *name);
        v
    })
}

/// What one range of rows produced.
#[derive(Debug, Default)]
pub struct Processed {
    pub items: Vec<Item>,
    /// `OrderId,ConfirmationId` lines.
    pub output: String,
    /// `line,reason,"raw"` lines.
    pub rejects: String,
    pub rows: u64,
    pub rejected: u64,
}

/// Processes the lines of `text`, whose first line is line number `first_line`.
pub fn process(run_id: &str, text: &str, first_line: u64, out: &mut Processed) {
    for (n, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        out.rows += 1;
        let split: Result<Vec<std::borrow::Cow<'_, str>>, String> = if line.contains('"') {
            split_csv(line).map(|f| f.into_iter().map(Into::into).collect())
        } else {
            Ok(line.split(',').map(Into::into).collect())
        };
        match split.and_then(|f| check_fields(&f).map(|()| f)) {
            Ok(fields) => {
                let order_id = &fields[ORDER_ID];
                let id = confirmation_id(run_id, order_id);
                out.output.push_str(order_id);
                out.output.push(',');
                out.output.push_str(&id);
                out.output.push('\n');
                let key = Key::new(order_id.as_ref(), "order");
                let mut id = Some(id);
                let attrs: Map<String, Value> = sorted_attributes()
                    .iter()
                    .map(|(name, col)| {
                        let v = match col {
                            Some(c) => fields[*c].as_ref().to_owned(),
                            None => id.take().unwrap_or_default(),
                        };
                        ((*name).to_owned(), Value::String(v))
                    })
                    .collect();
                out.items.push(Item { key, attrs });
            }
            Err(reason) => {
                out.rejected += 1;
                let quoted = line.replace('"', "\"\"");
                let _ = writeln!(
                    out.rejects,
                    "{},{},\"{quoted}\"",
                    first_line + n as u64,
                    reason.replace(',', ";")
                );
            }
        }
    }
}

/// Rows per table write: small enough that the rows' memory is reused from
/// chunk to chunk, large enough that a write is one cheap transaction locally
/// (the DynamoDB adapter splits it into BatchWriteItem calls of 25).
pub const WRITE_ROWS: usize = 2_000;

/// Splits `text` (whose first line is number `first_line`) into pieces of at
/// most `lines` lines, each with the number of its first line.
pub fn line_chunks(text: &str, first_line: u64, lines: usize) -> impl Iterator<Item = (&str, u64)> {
    let mut rest = text;
    let mut line = first_line;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut =
            memchr::memchr_iter(b'\n', rest.as_bytes()).nth(lines.max(1) - 1).map_or(rest.len(), |i| i + 1);
        let (chunk, tail) = rest.split_at(cut);
        let first = line;
        line += lines as u64;
        rest = tail;
        Some((chunk, first))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = "Sub-Saharan Africa,South Africa,Fruits,Offline,M,7/27/2012,791862618,7/28/2012,1593,9.33,6.92,14862.69,11023.56,3839.13";

    #[test]
    fn confirmation_ids_are_stable_uuids() {
        let a = confirmation_id("r1", "791862618");
        assert_eq!(a, confirmation_id("r1", "791862618"));
        assert_ne!(a, confirmation_id("r2", "791862618"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'8');
    }

    #[test]
    fn rows_and_rejects() {
        let text = format!("{ROW}\nbad,row\n\n{ROW}\r\n");
        let mut p = Processed::default();
        process("r1", &text, 10, &mut p);
        assert_eq!((p.rows, p.rejected, p.items.len()), (3, 1, 2));
        assert!(p.rejects.starts_with("11,expected 14 fields; found 2,"), "{}", p.rejects);
        assert_eq!(p.output.lines().count(), 2);
        assert!(p.output.starts_with("791862618,"));
        assert_eq!(p.items[0].str("ConfirmationId").map(str::len), Some(36));
        assert_eq!(p.items[0].str("Order ID"), Some("791862618"));
    }

    #[test]
    fn line_chunks_keep_line_numbers() {
        let text = "a\nb\nc\nd\ne";
        let chunks: Vec<(&str, u64)> = line_chunks(text, 10, 2).collect();
        assert_eq!(chunks, vec![("a\nb\n", 10), ("c\nd\n", 12), ("e", 14)]);
        assert_eq!(line_chunks("", 1, 5).count(), 0);
    }

    #[test]
    fn quoted_fields() {
        assert_eq!(split_csv(r#"a,"b,c","d""e""#).unwrap(), vec!["a", "b,c", "d\"e"]);
        assert!(split_csv("\"open").is_err());
        assert!(parse_row(&ROW.replace("791862618", "79x")).unwrap_err().contains("Order ID"));
    }
}
