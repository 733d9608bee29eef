//! The `lines` planner: newline-aligned byte ranges of one object, a fixed
//! number of lines each. Nothing is split physically: each unit is a
//! [`LineRange`] the job reads with a ranged GET.
//!
//! [`LineSplitter`] is the pure part (fed chunk by chunk, newlines counted
//! with `memchr`); [`plan_lines`] reads the object through the port.
//!
//! ```
//! use batchfan::plan::{lines::LineSplitter, LineRange};
//! let mut s = LineSplitter::new(2, true);
//! s.feed(b"id\r\n1\r\n2\r\n");
//! s.feed(b"3\r\n\r\n");
//! assert_eq!(s.finish(), [
//!     LineRange { start: 4, end: 10, line: 2 },
//!     LineRange { start: 10, end: 13, line: 4 }, // the blank last line is left out
//! ]);
//! ```

use super::{LineRange, PlanError};
use crate::objects::{ObjectRef, Objects};

/// Bytes read per ranged GET.
pub const CHUNK_BYTES: u64 = 8 * 1024 * 1024;

/// Cuts a byte stream into ranges of `lines_per_item` lines.
///
/// Ranges end just after a `\n` (so CRLF files stay aligned too), except the
/// last one when the final line has no newline. A header line, when there is
/// one, is in no range; blank lines at the very end are in none either.
#[derive(Debug, Clone)]
pub struct LineSplitter {
    per: u64,
    /// Bytes fed so far.
    pos: u64,
    /// Start of the current range; `None` while inside the header line.
    start: Option<u64>,
    /// Line number of the current range's first line.
    line: u64,
    /// Complete lines in the current range.
    lines: u64,
    /// End of the last line that is not blank (`\r` and `\n` only).
    data_end: u64,
    /// The last non-blank line has not met its newline yet.
    pending: bool,
    units: Vec<LineRange>,
}

impl LineSplitter {
    /// A splitter of `lines_per_item` lines per range (at least 1), skipping the first line if `header`.
    pub fn new(lines_per_item: u64, header: bool) -> Self {
        LineSplitter {
            per: lines_per_item.max(1),
            pos: 0,
            start: if header { None } else { Some(0) },
            line: if header { 2 } else { 1 },
            lines: 0,
            data_end: 0,
            pending: false,
            units: Vec::new(),
        }
    }

    /// Feeds the next bytes of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        for i in memchr::memchr_iter(b'\n', chunk) {
            let after = self.pos + i as u64 + 1;
            match self.start {
                None => self.start = Some(after),
                Some(start) => {
                    self.lines += 1;
                    if self.lines == self.per {
                        self.units.push(LineRange { start, end: after, line: self.line });
                        self.start = Some(after);
                        self.line += self.per;
                        self.lines = 0;
                    }
                }
            }
        }
        match chunk.iter().rposition(|&b| b != b'\n' && b != b'\r') {
            Some(q) => match memchr::memchr(b'\n', &chunk[q..]) {
                Some(i) => {
                    self.data_end = self.pos + (q + i) as u64 + 1;
                    self.pending = false;
                }
                None => self.pending = true,
            },
            None if self.pending => {
                if let Some(i) = memchr::memchr(b'\n', chunk) {
                    self.data_end = self.pos + i as u64 + 1;
                    self.pending = false;
                }
            }
            None => {}
        }
        self.pos += chunk.len() as u64;
    }

    /// The ranges of the whole stream.
    pub fn finish(mut self) -> Vec<LineRange> {
        if self.pending {
            self.data_end = self.pos;
        }
        if let Some(start) = self.start {
            if start < self.pos {
                self.units.push(LineRange { start, end: self.pos, line: self.line });
            }
        }
        let data_end = self.data_end;
        self.units.retain(|u| u.start < data_end);
        if let Some(last) = self.units.last_mut() {
            last.end = last.end.min(data_end);
        }
        self.units
    }
}

/// Plans the object `input`: ranges of `lines_per_item` lines, read in
/// [`CHUNK_BYTES`] ranged GETs.
pub async fn plan_lines(
    objects: &dyn Objects,
    input: &ObjectRef,
    lines_per_item: u64,
    header: bool,
) -> Result<Vec<LineRange>, PlanError> {
    let meta = objects.head(input).await?.ok_or_else(|| PlanError::MissingInput(input.to_string()))?;
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
    Ok(splitter.finish())
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
        s.finish().into_iter().map(|u| (u.start, u.end, u.line)).collect()
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
