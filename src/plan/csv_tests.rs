//! Tests of the RFC 4180 record rules: scanner, record ends, fields, header.

use rstest::rstest;

use super::*;

/// Record ends of `text` fed in pieces of `piece` bytes: (offset, newlines) pairs.
fn ends(text: &[u8], piece: usize) -> (Vec<(u64, u64)>, Option<u64>) {
    let mut s = RecordScanner::new();
    let mut out = Vec::new();
    for chunk in text.chunks(piece.max(1)) {
        s.feed(chunk, |o, n| out.push((o, n)));
    }
    (out, s.open_quote_line())
}

#[rstest]
#[case::plain("a,b\nc,d\n", vec![(4, 1), (8, 2)], None)]
#[case::quoted_newline("a,\"b\nc\"\nd\n", vec![(8, 2), (10, 3)], None)]
#[case::escaped_quotes("\"a\"\"\nb\",\"\"\"\"\nc\n", vec![(13, 2), (15, 3)], None)]
#[case::empty_quoted_field("\"\",x\n", vec![(5, 1)], None)]
#[case::crlf_inside_and_out("a,\"b\r\nc\"\r\nd\r\n", vec![(10, 2), (13, 3)], None)]
#[case::quote_mid_field_is_a_character("5\" screen,x\ny\n", vec![(12, 1), (14, 2)], None)]
#[case::quote_after_closing_is_a_character("\"a\"b\"\nc\n", vec![(6, 1), (8, 2)], None)]
#[case::unterminated("a\n\"b\nc\n", vec![(2, 1)], Some(2))]
#[case::closing_quote_at_the_very_end("\"a\n\"", vec![], None)]
#[case::escaped_quote_at_the_very_end_stays_open("\"a\"\"", vec![], Some(1))]
fn record_ends(#[case] text: &str, #[case] want: Vec<(u64, u64)>, #[case] open: Option<u64>) {
    for piece in [1, 2, 3, 5, 1 << 20] {
        assert_eq!(ends(text.as_bytes(), piece), (want.clone(), open), "piece {piece}");
    }
}

/// The record ends of `text` by the rules, a byte at a time: what the
/// scanner's fast paths must find too.
fn reference_ends(text: &[u8]) -> Vec<(u64, u64)> {
    let (mut out, mut newlines, mut quoted, mut prev) = (Vec::new(), 0, false, b'\n');
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b == b'\n' {
            newlines += 1;
            if !quoted {
                out.push((i as u64 + 1, newlines));
            }
        } else if b == b'"' && quoted {
            if text.get(i + 1) == Some(&b'"') {
                i += 1;
            } else {
                quoted = false;
            }
        } else if b == b'"' && (prev == b',' || prev == b'\n') {
            quoted = true;
        }
        prev = text[i];
        i += 1;
    }
    out
}

/// Quoted fields far apart (past the scanner's look-ahead window), next to
/// each other, with newlines and escaped quotes, fed whole and in pieces.
#[test]
fn long_texts_end_records_where_the_rules_say() {
    let mut text = String::new();
    for n in 0..40_000u32 {
        match n % 9_973 {
            0 => text.push_str(&format!("{n},\"multi\nline \"\"{n}\"\"\",x\n")),
            1 => text.push_str(&format!("\"{n}\",\"a,b\"\r\n")),
            2 => text.push_str(&format!("{n},5\" screen\n")),
            _ => text.push_str(&format!("{n},plain,row\n")),
        }
    }
    let want = reference_ends(text.as_bytes());
    assert!(want.len() > 39_000);
    for piece in [1, 7, 4_096, 65_536, 100_003, 1 << 30] {
        assert_eq!(ends(text.as_bytes(), piece), (want.clone(), None), "piece {piece}");
    }
}

#[test]
fn record_end_stops_at_the_first_record() {
    assert_eq!(record_end(b"a,\"x\ny\"\nb\n"), Some((8, 2)));
    assert_eq!(record_end(b"a,\"x\ny"), None);
    assert_eq!(record_end(b"abc"), None);
}

#[test]
fn scanner_counts_every_newline_and_stops_where_asked() {
    let mut s = RecordScanner::new();
    let used =
        s.scan(
            b"a\n\"b\nc\"\nd\n",
            |_, n| if n == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) },
        );
    assert_eq!((used, s.position(), s.newlines()), (8, 8, 3));
}

#[rstest]
#[case::plain("a,b,c", vec!["a", "b", "c"])]
#[case::quoted_comma("a,\"b,c\"", vec!["a", "b,c"])]
#[case::escaped("\"d\"\"e\"", vec!["d\"e"])]
#[case::newline_inside("\"x\ny\",z", vec!["x\ny", "z"])]
#[case::empty_fields(",,\"\"", vec!["", "", ""])]
#[case::quote_mid_field("5\" screen,x", vec!["5\" screen", "x"])]
fn splits_records_into_fields(#[case] record: &str, #[case] want: Vec<&str>) {
    assert_eq!(split_record(record).unwrap(), want);
}

#[test]
fn an_open_quote_is_an_error() {
    assert_eq!(split_record("a,\"open").unwrap_err(), "unterminated quote");
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn header_matches_with_bom_crlf_and_spaces() {
    let want = cols(&["Region", "Order ID"]);
    check_header(b"Region,Order ID\n1,2\n", &want).unwrap();
    check_header("\u{feff}Region, Order ID\r\nx,1\r\n".as_bytes(), &want).unwrap();
    check_header(b"\"Region\",\"Order ID\"", &want).unwrap();
}

#[test]
fn a_data_row_is_a_missing_header() {
    let want = cols(&["Region", "Order ID"]);
    let err = check_header(b"Europe,791862618\nAsia,5\n", &want).unwrap_err().to_string();
    assert_eq!(
        err,
        "the file has no header row: its first row is data (Europe,791862618): add the header row (Region,Order ID), or set header = false"
    );
}

#[test]
fn a_wrong_header_names_both_column_lists() {
    let want = cols(&["Region", "Order ID", "Units"]);
    let err = check_header(b"Region,Order Id,Units\n", &want).unwrap_err().to_string();
    assert!(err.contains("column 2 is \"Order Id\", expected \"Order ID\""), "{err}");
    assert!(err.contains("expected Region,Order ID,Units, found Region,Order Id,Units"), "{err}");
    let err = check_header(b"Region,Order ID\n", &want).unwrap_err().to_string();
    assert!(err.contains("2 columns, expected 3"), "{err}");
}
