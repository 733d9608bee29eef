//! CSV records as RFC 4180 has them (and spreadsheets export them): a `"` at
//! the start of a field opens a quoted field, in which `""` is a quote and a
//! newline is data; a lone `"` closes it. A `"` anywhere else is an ordinary
//! character. One set of rules for the `lines` planner (where records end)
//! and for jobs that parse the records ([`split_record`]).
//!
//! [`RecordScanner`] finds record ends with `memchr2` on `"` and `\n`: on a
//! file without quotes it touches each newline once, like a newline count.
//!
//! ```
//! use batchfan::plan::csv::{record_end, split_record};
//! let text = b"1,\"two\nlines\",3\n4,5,6\n";
//! assert_eq!(record_end(text), Some((16, 2))); // 16 bytes, 2 newlines
//! assert_eq!(split_record("1,\"two\nlines\",\"a \"\"b\"\"\"").unwrap(), ["1", "two\nlines", "a \"b\""]);
//! ```

use std::ops::ControlFlow;

use super::PlanError;

/// Bytes [`RecordScanner::scan`] looks ahead for a quote at a time.
const QUOTE_WINDOW: usize = 64 * 1024;

/// Where records end in a byte stream fed chunk by chunk.
#[derive(Debug, Clone)]
pub struct RecordScanner {
    /// Bytes fed so far.
    pos: u64,
    /// Newlines fed so far (inside quotes too).
    newlines: u64,
    /// Inside a quoted field.
    quoted: bool,
    /// The last byte fed was a `"` inside a quoted field: the next byte says
    /// whether it was an escaped quote (`""`) or the closing one.
    quote_pending: bool,
    /// The last byte fed (`\n` before the first).
    prev: u8,
    /// Line (1-based) on which the open quoted field started.
    open_line: u64,
}

impl Default for RecordScanner {
    fn default() -> Self {
        RecordScanner { pos: 0, newlines: 0, quoted: false, quote_pending: false, prev: b'\n', open_line: 0 }
    }
}

impl RecordScanner {
    /// A scanner at the start of a record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes fed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Newlines fed so far, inside quoted fields too.
    pub fn newlines(&self) -> u64 {
        self.newlines
    }

    /// The line a quoted field that is still open started on, if one is.
    pub fn open_quote_line(&self) -> Option<u64> {
        (self.quoted && !self.quote_pending).then_some(self.open_line)
    }

    /// Feeds `chunk`; `at_end(offset, newlines)` is called at each record end
    /// with the stream offset just after its `\n` and the newlines so far.
    pub fn feed(&mut self, chunk: &[u8], mut at_end: impl FnMut(u64, u64)) {
        self.scan(chunk, |offset, newlines| {
            at_end(offset, newlines);
            ControlFlow::Continue(())
        });
    }

    /// Feeds `chunk` until `at_end` breaks; returns the bytes consumed.
    pub fn scan(&mut self, chunk: &[u8], mut at_end: impl FnMut(u64, u64) -> ControlFlow<()>) -> usize {
        let mut i = 0;
        if self.quote_pending && !chunk.is_empty() {
            self.quote_pending = false;
            if chunk[0] == b'"' {
                i = 1; // `""`: an escaped quote, still quoted
            } else {
                self.quoted = false;
            }
        }
        'scan: while i < chunk.len() {
            if !self.quoted {
                // Outside quotes each newline ends a record: walk them with
                // memchr's iterator up to the next quote (looked for a window
                // at a time), rather than one `memchr2` call per record.
                let window = (i + QUOTE_WINDOW).min(chunk.len());
                let stop = memchr::memchr(b'"', &chunk[i..window]).map_or(window, |k| i + k);
                for nl in memchr::memchr_iter(b'\n', &chunk[i..stop]) {
                    self.newlines += 1;
                    let after = i + nl + 1;
                    if at_end(self.pos + after as u64, self.newlines).is_break() {
                        i = after;
                        break 'scan;
                    }
                }
                i = stop;
                if stop == window {
                    continue;
                }
            }
            let Some(k) = memchr::memchr2(b'"', b'\n', &chunk[i..]) else {
                i = chunk.len();
                break;
            };
            let j = i + k;
            i = j + 1;
            if chunk[j] == b'\n' {
                self.newlines += 1;
                if !self.quoted {
                    let flow = at_end(self.pos + i as u64, self.newlines);
                    if flow.is_break() {
                        break;
                    }
                }
            } else if self.quoted {
                match chunk.get(j + 1) {
                    None => self.quote_pending = true,
                    Some(b'"') => i = j + 2,
                    Some(_) => self.quoted = false,
                }
            } else {
                let prev = if j == 0 { self.prev } else { chunk[j - 1] };
                if prev == b',' || prev == b'\n' {
                    self.quoted = true;
                    self.open_line = self.newlines + 1;
                }
            }
        }
        if i > 0 {
            self.prev = chunk[i - 1];
        }
        self.pos += i as u64;
        i
    }
}

/// The end of the record `bytes` starts with: (bytes up to and including its
/// `\n`, newlines in it), or `None` when it runs to the end of `bytes`.
pub fn record_end(bytes: &[u8]) -> Option<(usize, u64)> {
    let mut found = None;
    RecordScanner::new().scan(bytes, |offset, newlines| {
        found = Some((offset as usize, newlines));
        ControlFlow::Break(())
    });
    found
}

/// Splits one record (without its final newline and `\r`) into fields.
pub fn split_record(record: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::with_capacity(16);
    let mut cur = String::new();
    let mut chars = record.chars().peekable();
    let mut quoted = false;
    let mut field_start = true;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if field_start => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', true) => quoted = false,
            (',', false) => {
                fields.push(std::mem::take(&mut cur));
                field_start = true;
                continue;
            }
            (c, _) => cur.push(c),
        }
        field_start = false;
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(cur);
    Ok(fields)
}

/// Most bytes of a header row [`check_header`] looks at.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Checks that `head` (the first bytes of a file) starts with a header row of
/// exactly `expected` columns (trimmed; a UTF-8 byte order mark is ignored).
///
/// A first row with none of the expected names is taken for data: the error
/// says the header row is missing rather than wrong.
pub fn check_header(head: &[u8], expected: &[String]) -> Result<(), PlanError> {
    let end = record_end(head).map_or(head.len(), |(n, _)| n);
    let text = String::from_utf8_lossy(&head[..end]);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let row = text.trim_end_matches(['\n', '\r']);
    let found: Vec<String> = match split_record(row) {
        Ok(f) => f.into_iter().map(|s| s.trim().to_owned()).collect(),
        Err(_) => vec![row.to_owned()],
    };
    if found.len() == expected.len() && found.iter().zip(expected).all(|(f, e)| f == e) {
        return Ok(());
    }
    let expected_list = expected.join(",");
    let found_list = shorten(&found.join(","));
    let named = |f: &String| expected.iter().any(|e| e.eq_ignore_ascii_case(f));
    if !found.iter().any(named) {
        return Err(PlanError::NoHeader { first: found_list, expected: expected_list });
    }
    let detail = match found.iter().zip(expected).position(|(f, e)| f != e) {
        Some(i) => format!("column {} is {:?}, expected {:?}", i + 1, found[i], expected[i]),
        None => format!("{} columns, expected {}", found.len(), expected.len()),
    };
    Err(PlanError::Header { expected: expected_list, found: found_list, detail })
}

/// At most 300 characters of `s`, marked when cut.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 300 {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(300).collect();
    out.push_str("...");
    out
}

#[cfg(test)]
#[path = "csv_tests.rs"]
mod tests;
