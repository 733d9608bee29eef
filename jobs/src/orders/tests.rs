//! Tests of the orders rows, records and rejects.
use super::*;

const ROW: &str = "Sub-Saharan Africa,South Africa,Fruits,Offline,M,7/27/2012,791862618,7/28/2012,1593,9.33,6.92,14862.69,11023.56,3839.13";

#[test]
fn the_spec_header_is_the_columns_the_job_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("orders.toml");
    let spec = batchfan::spec::load(&path).unwrap_or_else(|e| panic!("{e}"));
    match spec.planner {
        batchfan::spec::Planner::Lines { header: true, columns, .. } => assert_eq!(columns, COLUMNS),
        other => panic!("jobs/orders.toml must plan by lines with a header, not {other:?}"),
    }
}

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
    let text = format!("{ROW}\nbad,row\n\n{}\r\n", ROW.replace("791862618", "791862619"));
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
fn record_chunks_keep_line_numbers() {
    let text = "a\nb\nc\nd\ne";
    let chunks: Vec<(&str, u64)> = record_chunks(text, 10, 2).collect();
    assert_eq!(chunks, vec![("a\nb\n", 10), ("c\nd\n", 12), ("e", 14)]);
    assert_eq!(record_chunks("", 1, 5).count(), 0);
}

/// A write chunk never ends inside quotes, and the next one's line number counts the quoted newlines.
#[test]
fn record_chunks_cut_between_records() {
    let text = "a\n\"b\nc\"\nd\n\"e\r\nf\"\r\ng\n";
    let chunks: Vec<(&str, u64)> = record_chunks(text, 2, 2).collect();
    assert_eq!(chunks, vec![("a\n\"b\nc\"\n", 2), ("d\n\"e\r\nf\"\r\n", 5), ("g\n", 8)]);
}

#[test]
fn records_span_quoted_newlines() {
    let text = "a\r\n\"b\r\nc\",\"\"\"\"\r\nd\n\"e";
    let got: Vec<(u64, &str)> = records(text, 7).collect();
    assert_eq!(got, vec![(7, "a"), (8, "\"b\r\nc\",\"\"\"\""), (10, "d"), (11, "\"e")]);
}

/// Issue 10, finding 6: a quoted field with a newline is one record, parsed, not two rejects.
#[test]
fn a_quoted_newline_is_one_row() {
    let row = ROW.replace("South Africa", "\"South\nAfrica, the \"\"Rainbow\"\"\"");
    let text = format!("{row}\n{}\n", ROW.replace("791862618", "791862619"));
    let mut p = Processed::default();
    process("r1", &text, 2, &mut p);
    assert_eq!((p.rows, p.rejected), (2, 0), "{}", p.rejects);
    let item = p.rows_out.row(0).to_item().unwrap();
    assert_eq!(item.str("Country"), Some("South\nAfrica, the \"Rainbow\""));
    assert_eq!(p.output.lines().count(), 2);
    // A broken row after it is reported on its own first line (line 2 + 2 lines).
    let mut p = Processed::default();
    process("r1", &format!("{row}\nbad\n"), 2, &mut p);
    assert!(p.rejects.starts_with("4,expected 14 fields"), "{}", p.rejects);
}

/// Issue 10, finding 6: a repeated Order ID is a reject naming both lines; the first copy wins.
#[test]
fn a_repeated_order_id_is_rejected_with_both_lines() {
    let other = ROW.replace("791862618", "5").replace("1593", "7");
    let later = ROW.replace("Sub-Saharan Africa", "Europe");
    let text = format!("{ROW}\n{other}\n{later}\n");
    let mut p = Processed::default();
    process("r1", &text, 3, &mut p);
    assert_eq!((p.rows, p.rejected, p.rows_out.len()), (3, 1, 2));
    assert_eq!(p.rejects, format!("5,order id 791862618 on line 5 duplicates line 3,\"{later}\"\n"));
    assert_eq!(p.output.matches("791862618,").count(), 1);
    assert_eq!(p.rows_out.row(0).to_item().unwrap().str("Region"), Some("Sub-Saharan Africa"));
    // An invalid first copy does not count: the next valid one is the first.
    let bad = ROW.replace("1593", "x");
    let mut p = Processed::default();
    process("r1", &format!("{bad}\n{later}\n"), 1, &mut p);
    assert_eq!((p.rejected, p.rows_out.len()), (1, 1));
}

#[test]
fn find_rows_returns_first_valid_copies() {
    let later = ROW.replace("Sub-Saharan Africa", "Europe");
    let text = format!("{}\n{ROW}\n{later}\n", ROW.replace("1593", "x"));
    let ids = std::collections::BTreeSet::from(["791862618"]);
    let mut found = std::collections::BTreeMap::new();
    find_rows(&text, 10, &ids, &mut found);
    let f = &found["791862618"];
    assert_eq!((f.line, f.record.as_str(), f.fields[0].as_str()), (11, ROW, "Sub-Saharan Africa"));
    let mut rows = new_rows();
    push_fields(&mut rows, "r1", &f.fields).unwrap();
    assert_eq!(
        rows.row(0).to_item().unwrap().str("ConfirmationId"),
        Some(confirmation_id("r1", "791862618").as_str())
    );
}

#[test]
fn quoted_fields() {
    assert_eq!(split_csv(r#"a,"b,c","d""e""#).unwrap(), vec!["a", "b,c", "d\"e"]);
    assert!(split_csv("\"open").is_err());
    assert!(parse_row(&ROW.replace("791862618", "79x")).unwrap_err().contains("Order ID"));
}

#[test]
fn text_of_replaces_only_invalid_bytes() {
    assert!(matches!(text_of("Côte d'Ivoire,1".as_bytes()), std::borrow::Cow::Borrowed("Côte d'Ivoire,1")));
    assert_eq!(text_of(b"a\xffb"), "a\u{fffd}b");
}
