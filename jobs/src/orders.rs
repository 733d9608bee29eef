//! The `orders` workload: a 14-column sales CSV; each row gets a
//! ConfirmationId derived from the run and its Order ID, is written with it to
//! the `Orders` table, and `OrderId,ConfirmationId` goes to the output.

use std::fmt::Write as _;

use batchfan::table::Rows;
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
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut at = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[at] = b'-';
            at += 1;
        }
        out[at] = HEX[usize::from(byte >> 4)];
        out[at + 1] = HEX[usize::from(byte & 0xf)];
        at += 2;
    }
    // Only ASCII hex digits and dashes were written.
    std::str::from_utf8(out).unwrap_or_default()
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
    pub rows: u64,
    pub rejected: u64,
}

impl Default for Processed {
    fn default() -> Self {
        Processed {
            rows_out: new_rows(),
            output: String::new(),
            rejects: String::new(),
            rows: 0,
            rejected: 0,
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

/// Processes the lines of `text`, whose first line is line number `first_line`.
pub fn process(run_id: &str, text: &str, first_line: u64, out: &mut Processed) {
    out.rows_out.reserve(text.len() / 120 + 1, 160);
    let mut id_buf = [0u8; 36];
    for (n, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        out.rows += 1;
        // Fields borrow the line, or `owned` for a line with quotes.
        let mut owned: Vec<String> = Vec::new();
        let mut fields = [""; COLUMNS.len()];
        let split = if line.contains('"') {
            split_csv(line).map(|f| owned = f).map(|()| fill(&mut fields, owned.iter().map(String::as_str)))
        } else {
            Ok(fill(&mut fields, line.split(',')))
        };
        let checked = split.and_then(|count| {
            if count != COLUMNS.len() {
                return Err(format!("expected {} fields, found {count}", COLUMNS.len()));
            }
            check_fields(&fields)
        });
        let pushed = checked.and_then(|()| {
            let order_id = fields[ORDER_ID];
            let id = confirmation_id_into(run_id, order_id, &mut id_buf);
            let cells = fields.iter().copied().chain([id]);
            out.rows_out.push(order_id, "order", cells).map_err(|e| e.to_string())?;
            out.output.push_str(order_id);
            out.output.push(',');
            out.output.push_str(id);
            out.output.push('\n');
            Ok(())
        });
        if let Err(reason) = pushed {
            out.rejected += 1;
            let quoted = line.replace('"', "\"\"");
            let _ =
                writeln!(out.rejects, "{},{},\"{quoted}\"", first_line + n as u64, reason.replace(',', ";"));
        }
    }
}

/// Rows per table write: a few MB of packed rows, and few enough commits
/// that the table's key index pages are not rewritten for every small batch
/// (the DynamoDB adapter splits a write into BatchWriteItem calls of 25).
pub const WRITE_ROWS: usize = 10_000;

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
        assert_eq!((p.rows, p.rejected, p.rows_out.len()), (3, 1, 2));
        assert!(p.rejects.starts_with("11,expected 14 fields; found 2,"), "{}", p.rejects);
        assert_eq!(p.output.lines().count(), 2);
        assert!(p.output.starts_with("791862618,"));
        let item = p.rows_out.row(0).to_item().unwrap();
        assert_eq!(item.str("ConfirmationId"), Some(confirmation_id("r1", "791862618").as_str()));
        assert_eq!(item.str("Order ID"), Some("791862618"));
        assert_eq!(item.str("Region"), Some("Sub-Saharan Africa"));
        assert_eq!(item.attrs.len(), 15);
        assert_eq!((item.key.pk.as_str(), item.key.sk.as_str()), ("791862618", "order"));
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
