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
    let x = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..])
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
    if fields.len() != COLUMNS.len() {
        return Err(format!("expected {} fields, found {}", COLUMNS.len(), fields.len()));
    }
    let id = &fields[ORDER_ID];
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("Order ID {id:?} is not a number"));
    }
    for (i, f) in fields.iter().enumerate().skip(8) {
        if f.parse::<f64>().is_err() {
            return Err(format!("{} {f:?} is not a number", COLUMNS[i]));
        }
    }
    Ok(fields)
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
        match parse_row(line) {
            Ok(fields) => {
                let id = confirmation_id(run_id, &fields[ORDER_ID]);
                let _ = writeln!(out.output, "{},{id}", fields[ORDER_ID]);
                let mut attrs = Map::with_capacity(16);
                let key = Key::new(fields[ORDER_ID].clone(), "order");
                for (name, value) in COLUMNS.iter().zip(fields) {
                    attrs.insert((*name).to_owned(), Value::String(value));
                }
                attrs.insert("ConfirmationId".into(), Value::String(id));
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
    fn quoted_fields() {
        assert_eq!(split_csv(r#"a,"b,c","d""e""#).unwrap(), vec!["a", "b,c", "d\"e"]);
        assert!(split_csv("\"open").is_err());
        assert!(parse_row(&ROW.replace("791862618", "79x")).unwrap_err().contains("Order ID"));
    }
}
