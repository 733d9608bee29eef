//! The `lines` planner: record-aligned byte ranges of one object, a fixed
//! number of records each. Nothing is split physically: each unit is a
//! [`LineRange`] the job reads with a ranged GET.
//!
//! A record is a line, unless a quoted field holds newlines (RFC 4180, see
//! [`super::csv`]): a range never ends inside quotes, so a spreadsheet's
//! multi-line cell stays one record, counted once.
//!
//! [`LineSplitter`] is the pure part (fed chunk by chunk, record ends found
//! with `memchr2`); [`plan_lines`] reads the object through the port.
//!
//! ```
//! use batchfan::plan::{lines::LineSplitter, LineRange};
//! let mut s = LineSplitter::new(2, true);
//! s.feed(b"id\r\n1\r\n\"2\r\n2\"\r\n");
//! s.feed(b"3\r\n\r\n");
//! assert_eq!(s.finish().unwrap(), [
//!     LineRange { start: 4, end: 15, line: 2 }, // 1, then "2\r\n2" (two lines, one record)
//!     LineRange { start: 15, end: 18, line: 5 }, // the blank last line is left out
//! ]);
//! ```

use std::{collections::VecDeque, sync::Mutex};

use super::{csv::RecordScanner, LineRange, PlanError};
use crate::objects::{ObjectRef, Objects};

/// Bytes read per ranged GET.
pub const CHUNK_BYTES: u64 = 8 * 1024 * 1024;

/// Cuts a byte stream into ranges of `lines_per_item` records.
///
/// Ranges end just after a `\n` outside quotes (so CRLF files stay aligned
/// too), except the last one when the final record has no newline. A header
/// record, when there is one, is in no range; blank lines at the very end
/// are in none either.
#[derive(Debug, Clone)]
pub struct LineSplitter {
    per: u64,
    scanner: RecordScanner,
    /// Start of the current range; `None` while inside the header record.
    start: Option<u64>,
    /// Line number of the current range's first record.
    line: u64,
    /// Complete records in the current range.
    records: u64,
    /// End of the last line that is not blank (`\r` and `\n` only).
    data_end: u64,
    /// The last non-blank line has not met its newline yet.
    pending: bool,
    units: Vec<LineRange>,
}

impl LineSplitter {
    /// A splitter of `lines_per_item` records per range (at least 1), skipping the first record if `header`.
    pub fn new(lines_per_item: u64, header: bool) -> Self {
        LineSplitter {
            per: lines_per_item.max(1),
            scanner: RecordScanner::new(),
            start: if header { None } else { Some(0) },
            line: 1,
            records: 0,
            data_end: 0,
            pending: false,
            units: Vec::new(),
        }
    }

    /// Feeds the next bytes of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        let pos = self.scanner.position();
        let LineSplitter { per, scanner, start, line, records, units, .. } = self;
        scanner.feed(chunk, |after, newlines| match *start {
            None => {
                *start = Some(after);
                *line = newlines + 1;
            }
            Some(s) => {
                *records += 1;
                if *records == *per {
                    units.push(LineRange { start: s, end: after, line: *line });
                    *start = Some(after);
                    *line = newlines + 1;
                    *records = 0;
                }
            }
        });
        match chunk.iter().rposition(|&b| b != b'\n' && b != b'\r') {
            Some(q) => match memchr::memchr(b'\n', &chunk[q..]) {
                Some(i) => {
                    self.data_end = pos + (q + i) as u64 + 1;
                    self.pending = false;
                }
                None => self.pending = true,
            },
            None if self.pending => {
                if let Some(i) = memchr::memchr(b'\n', chunk) {
                    self.data_end = pos + i as u64 + 1;
                    self.pending = false;
                }
            }
            None => {}
        }
    }

    /// The ranges of the whole stream; an error when a quoted field is still
    /// open at its end (it would swallow every record after its opening quote).
    pub fn finish(mut self) -> Result<Vec<LineRange>, PlanError> {
        if let Some(line) = self.scanner.open_quote_line() {
            return Err(PlanError::UnterminatedQuote { line });
        }
        let end = self.scanner.position();
        if self.pending {
            self.data_end = end;
        }
        if let Some(start) = self.start {
            if start < end {
                self.units.push(LineRange { start, end, line: self.line });
            }
        }
        let data_end = self.data_end;
        self.units.retain(|u| u.start < data_end);
        if let Some(last) = self.units.last_mut() {
            last.end = last.end.min(data_end);
        }
        Ok(self.units)
    }
}

/// Ranges already found for an object as it was written: (object, its
/// size, lines per item, header, ranges). A local input snapshot is scanned
/// while it is copied and hashed (`inputs::snapshot`), which is then all that
/// planning it takes. The last few are kept.
type Scan = (ObjectRef, u64, u64, bool, Vec<LineRange>);
static SCANNED: Mutex<VecDeque<Scan>> = Mutex::new(VecDeque::new());
/// Scans kept for [`plan_lines`].
const SCANS_KEPT: usize = 8;

/// Hands [`plan_lines`] the ranges of `object` (`size` bytes) for
/// `lines_per_item` and `header`, found while it was written.
pub fn remember_scan(
    object: &ObjectRef,
    size: u64,
    lines_per_item: u64,
    header: bool,
    ranges: Vec<LineRange>,
) {
    let mut scanned = SCANNED.lock().unwrap_or_else(|p| p.into_inner());
    scanned.retain(|s| !(s.0 == *object && s.2 == lines_per_item && s.3 == header));
    if scanned.len() >= SCANS_KEPT {
        scanned.pop_front();
    }
    scanned.push_back((object.clone(), size, lines_per_item, header, ranges));
}

/// The ranges [`remember_scan`] was handed for `object` at `size` bytes.
fn recall_scan(object: &ObjectRef, size: u64, lines_per_item: u64, header: bool) -> Option<Vec<LineRange>> {
    let scanned = SCANNED.lock().unwrap_or_else(|p| p.into_inner());
    scanned
        .iter()
        .find(|s| s.0 == *object && s.1 == size && s.2 == lines_per_item && s.3 == header)
        .map(|s| s.4.clone())
}

/// Plans the object `input`: ranges of `lines_per_item` records, read in
/// [`CHUNK_BYTES`] ranged GETs — or, for a local input snapshot scanned as it
/// was taken ([`remember_scan`]) and still of that size, those ranges.
pub async fn plan_lines(
    objects: &dyn Objects,
    input: &ObjectRef,
    lines_per_item: u64,
    header: bool,
) -> Result<Vec<LineRange>, PlanError> {
    let meta = objects.head(input).await?.ok_or_else(|| PlanError::MissingInput(input.to_string()))?;
    if let Some(ranges) = recall_scan(input, meta.size, lines_per_item, header) {
        return Ok(ranges);
    }
    let mut splitter = LineSplitter::new(lines_per_item, header);
    let mut offset = 0;
    while offset < meta.size {
        let end = (offset + CHUNK_BYTES).min(meta.size);
        let chunk = objects.get_range(input, offset..end).await?;
        if chunk.is_empty() {
            break;
        }
        splitter.feed(&chunk);
        offset += chunk.len() as u64;
    }
    splitter.finish()
}

/// Checks the header row of `input` names `columns` (see [`super::csv::check_header`]).
pub async fn check_input_header(
    objects: &dyn Objects,
    input: &ObjectRef,
    columns: &[String],
) -> Result<(), PlanError> {
    let meta = objects.head(input).await?.ok_or_else(|| PlanError::MissingInput(input.to_string()))?;
    if meta.size == 0 {
        return Ok(()); // nothing to plan, nothing to misread
    }
    let end = meta.size.min(super::csv::MAX_HEADER_BYTES as u64);
    let head = objects.get_range(input, 0..end).await?;
    super::csv::check_header(&head, columns)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    /// Splits `text` fed in pieces of `piece` bytes; returns (start, end, line) triples.
    fn split(text: &str, per: u64, header: bool, piece: usize) -> Vec<(u64, u64, u64)> {
        let mut s = LineSplitter::new(per, header);
        for chunk in text.as_bytes().chunks(piece.max(1)) {
            s.feed(chunk);
        }
        s.finish().unwrap().into_iter().map(|u| (u.start, u.end, u.line)).collect()
    }

    #[rstest]
    #[case::empty("", 2, false, vec![])]
    #[case::header_only("h\n", 2, true, vec![])]
    #[case::header_only_no_newline("h", 2, true, vec![])]
    #[case::one_line_no_newline("a", 2, false, vec![(0, 1, 1)])]
    #[case::exact_multiple("a\nb\nc\nd\n", 2, false, vec![(0, 4, 1), (4, 8, 3)])]
    #[case::last_line_without_newline("a\nb\nc", 2, false, vec![(0, 4, 1), (4, 5, 3)])]
    #[case::header_skipped("h\na\nb\nc\n", 2, true, vec![(2, 6, 2), (6, 8, 4)])]
    #[case::crlf("h\r\na\r\nb\r\nc\r\n", 2, true, vec![(3, 9, 2), (9, 12, 4)])]
    #[case::blank_trailing_line("a\nb\n\n", 1, false, vec![(0, 2, 1), (2, 4, 2)])]
    #[case::blank_trailing_crlf_lines("a\r\n\r\n\r\n", 2, false, vec![(0, 3, 1)])]
    #[case::blank_lines_inside_are_lines("a\n\nb\n", 2, false, vec![(0, 3, 1), (3, 5, 3)])]
    #[case::only_blank_lines("\n\n\n", 1, false, vec![])]
    #[case::trailing_blank_clips_last_range("a\nb\n\n\n", 3, false, vec![(0, 4, 1)])]
    #[case::quoted_newline_at_the_cut("a,\"x\ny\"\nb\n", 1, false, vec![(0, 8, 1), (8, 10, 3)])]
    #[case::records_not_newlines_per_range("a\n\"b\nc\"\nd\n", 2, false, vec![(0, 8, 1), (8, 10, 4)])]
    #[case::quoted_newline_after_header("h\n\"a\nb\"\nc\n", 1, true, vec![(2, 8, 2), (8, 10, 4)])]
    #[case::header_with_quoted_newline("\"h\n1\"\na\n", 1, true, vec![(6, 8, 3)])]
    #[case::crlf_inside_quotes("h\r\n\"a\r\nb\"\r\nc\r\n", 2, true, vec![(3, 14, 2)])]
    #[case::escaped_quote_before_newline("\"a\"\"\n\",b\nc\n", 1, false, vec![(0, 9, 1), (9, 11, 3)])]
    #[case::quote_mid_field_is_no_quoting("5\" tv,x\ny\n", 1, false, vec![(0, 8, 1), (8, 10, 2)])]
    fn splits_into_newline_aligned_ranges(
        #[case] text: &str,
        #[case] per: u64,
        #[case] header: bool,
        #[case] want: Vec<(u64, u64, u64)>,
    ) {
        for piece in [1, 2, 3, 7, 1 << 20] {
            assert_eq!(split(text, per, header, piece), want, "piece {piece}");
        }
    }

    /// Issue 10, finding 6: a quote left open would swallow the rest of the file into one record.
    #[test]
    fn an_unterminated_quote_is_an_error_naming_its_line() {
        for piece in [1, 4, 1 << 20] {
            let mut s = LineSplitter::new(2, true);
            for chunk in b"h\na\n\"b\nc\nd\n".chunks(piece) {
                s.feed(chunk);
            }
            let err = s.finish().unwrap_err();
            assert!(matches!(err, PlanError::UnterminatedQuote { line: 3 }), "{err}");
            assert!(
                err.to_string().starts_with("the quoted field opened on line 3 is never closed"),
                "{err}"
            );
        }
    }

    /// A scan handed over for an object is what planning it returns, for the
    /// same lines per item, header and size only.
    #[tokio::test]
    async fn a_remembered_scan_is_the_plan_of_its_object_at_its_size() {
        use crate::objects::{dir::DirObjects, Objects};
        let dir = tempfile::tempdir().unwrap();
        let objects = DirObjects::new(dir.path());
        let obj = ObjectRef::new("inputs", "scan-test/a.csv");
        objects.put(&obj, b"h\n1\n2\n3\n".to_vec()).await.unwrap();
        let real = vec![LineRange { start: 2, end: 6, line: 2 }, LineRange { start: 6, end: 8, line: 4 }];
        assert_eq!(plan_lines(&objects, &obj, 2, true).await.unwrap(), real);
        // Ranges no scan of this content would find: seen only if recalled.
        let handed = vec![LineRange { start: 2, end: 8, line: 2 }];
        remember_scan(&obj, 8, 2, true, handed.clone());
        assert_eq!(plan_lines(&objects, &obj, 2, true).await.unwrap(), handed);
        assert_eq!(plan_lines(&objects, &obj, 3, true).await.unwrap().len(), 1, "another size of item");
        assert_eq!(plan_lines(&objects, &obj, 2, false).await.unwrap().len(), 2, "no header");
        objects.put(&obj, b"h\n1\n2\n3\n4\n".to_vec()).await.unwrap();
        assert_eq!(plan_lines(&objects, &obj, 2, true).await.unwrap().len(), 2, "another size: read again");
    }

    #[test]
    fn ranges_cover_every_data_line_exactly_once() {
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        for per in [1, 7, 30, 1000, 5000] {
            let units = split(&text, per, true, 97);
            let mut next = "line 0\n".len() as u64;
            let mut line = 2;
            for (start, end, first) in &units {
                assert_eq!((*start, *first), (next, line));
                next = *end;
                line += per;
            }
            assert_eq!(next, text.len() as u64);
            assert_eq!(units.len() as u64, 999u64.div_ceil(per));
        }
    }
}
