//! End to end: the `orders` pipeline on the embedded backend, through the real CLI.

use crate::common;

use std::collections::HashSet;

use batchfan_jobs::orders;
use common::*;

/// The output follows the input row for row, with the right ConfirmationIds;
/// malformed rows go to the rejects object with their line numbers; the
/// Orders table holds every good row; cleanup leaves only output and rejects.
#[test]
fn orders_output_matches_input_row_for_row() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.csv");
    gen_orders(&input, 5_000, 700);
    let state = dir.path().join("state");
    let out = run_orders(&input, &state, &["--param", "lines_per_item=333"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let s = summary(&out);
    assert_eq!(s["state"], "SUCCEEDED");
    assert_eq!(s["items"], 5_000);
    assert_eq!(s["failed_items"], 7);
    assert_eq!(s["children"], 16, "5000 rows / 333 per child");
    let run_id = s["run_id"].as_str().unwrap().to_owned();

    let text = std::fs::read_to_string(&input).unwrap();
    let mut expected = String::new();
    let mut bad_lines = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        match orders::parse_row(line) {
            Ok(f) => expected.push_str(&format!("{},{}\n", f[6], orders::confirmation_id(&run_id, &f[6]))),
            Err(_) => bad_lines.push(n as u64 + 1),
        }
    }
    let output = std::fs::read_to_string(s["output_path"].as_str().unwrap()).unwrap();
    assert_eq!(output.lines().count(), 4_993);
    assert!(output == expected, "output differs from the input's good rows in order");

    let run_dir = std::path::Path::new(s["output_path"].as_str().unwrap()).parent().unwrap().to_path_buf();
    let rejects = std::fs::read_to_string(run_dir.join("rejects.csv")).unwrap();
    let lines: Vec<u64> = rejects.lines().map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
    assert_eq!(lines, bad_lines);

    // Cleanup: only the output and the rejects are left of the run.
    let mut left: Vec<String> = walk(&run_dir);
    left.sort();
    assert_eq!(left, vec!["output".to_owned(), "rejects.csv".to_owned()]);

    // The Orders table holds the good rows with their ConfirmationIds.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use batchfan::table::{sqlite::SqliteTable, Key, Table};
        let table = SqliteTable::open(&state.join("tables")).unwrap();
        let mut seen = HashSet::new();
        for line in expected.lines().step_by(97) {
            let (id, conf) = line.split_once(',').unwrap();
            let item = table.get("Orders", &Key::new(id, "order")).await.unwrap().expect("row stored");
            assert_eq!(item.str("ConfirmationId"), Some(conf));
            assert_eq!(item.attrs.len(), 15);
            seen.insert(id.to_owned());
        }
        assert!(seen.len() > 40);
        // Work items and results stay until they expire ([storage] scratch_days).
        let store = batchfan::run::RunStore::new(&table, "batchfan");
        assert!(store.work_item(&run_id, 0).await.unwrap().is_some());
        assert!(!store.results(&run_id, "confirm").await.unwrap().is_empty());
    });
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(
                walk(&e.path()).into_iter().map(|p| format!("{}/{p}", e.file_name().to_string_lossy())),
            );
        } else {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

/// An input with only a header: the run succeeds with an empty output, and no array is submitted.
#[test]
fn empty_input_succeeds_with_empty_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("empty.csv");
    std::fs::write(&input, format!("{}\n", orders::COLUMNS.join(","))).unwrap();
    let state = dir.path().join("state");
    let out = run_orders(&input, &state, &[]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let s = summary(&out);
    assert_eq!(s["state"], "SUCCEEDED");
    assert_eq!(s["children"], 0);
    assert_eq!(std::fs::read(s["output_path"].as_str().unwrap()).unwrap().len(), 0);
}

/// A missing input is a usage error naming the file; no run is created.
#[test]
fn missing_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = batchfan(&[
        "run",
        jobs_dir().join("orders.toml").to_str().unwrap(),
        "--input",
        "/no/such/orders.csv",
        "--state",
        state.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/orders.csv"), "{err}");
    let status = batchfan(&["status", "--state", state.to_str().unwrap(), "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or(serde_json::json!([]));
    assert_eq!(runs.as_array().map_or(0, Vec::len), 0, "no run for a missing input");
}

/// More malformed rows than tolerated: the run fails with one alert, cleanup still runs.
#[test]
fn too_many_rejects_fail_the_run_with_one_alert() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.csv");
    gen_orders(&input, 1_000, 10); // 10% malformed; orders tolerates 1%
    let state = dir.path().join("state");
    let out = run_orders(&input, &state, &["--param", "lines_per_item=100"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let s = summary(&out);
    assert_eq!(s["state"], "FAILED");
    assert_eq!(s["failure"]["stage"], "aggregation");
    let alerts = alerts(&state, "orders-alerts");
    assert_eq!(alerts.len(), 1, "exactly one alert: {alerts:?}");
    assert!(alerts[0].contains("aggregation"));
    // The failure cleanup ran and kept what `batchfan retry` reuses: every
    // child succeeded, so each one's output is still there.
    let run_dir = std::path::Path::new(s["output_path"].as_str().unwrap()).parent().unwrap().to_path_buf();
    let kept = std::fs::read_dir(run_dir.join("confirm")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(kept, 10, "the 10 children's outputs are kept for a retry in {}", run_dir.display());
}

/// The generated rows of an orders file, as lines (the header first).
fn gen_lines(dir: &std::path::Path, rows: u64) -> Vec<String> {
    let path = dir.join("gen.csv");
    gen_orders(&path, rows, 0);
    std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

/// Sets field `field` of `line` (comma-separated, unquoted) to `value`.
fn set_field(line: &str, field: usize, value: &str) -> String {
    let mut f: Vec<&str> = line.split(',').collect();
    f[field] = value;
    f.join(",")
}

fn rejects_of(s: &serde_json::Value) -> String {
    let run_dir = std::path::Path::new(s["output_path"].as_str().unwrap()).parent().unwrap().to_path_buf();
    std::fs::read_to_string(run_dir.join("rejects.csv")).unwrap_or_default()
}

/// Issue 10, finding 6: a quoted field holding newlines (CRLF file, as a
/// spreadsheet exports it) is one record: counted once, parsed, confirmed;
/// the planner's cuts fall between records even where a quoted newline sits
/// exactly where a newline count would cut.
#[test]
fn quoted_newlines_are_one_record_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = gen_lines(dir.path(), 100);
    let ids: Vec<String> = lines[1..].iter().map(|l| l.split(',').nth(6).unwrap().to_owned()).collect();
    // Records 7 and 8 (lines 8 and 9) get a two-line and a three-line Country:
    // with 7 records per child, a newline count would cut inside record 8.
    lines[7] = set_field(&lines[7], 1, "\"South\r\nAfrica\"");
    lines[8] = set_field(&lines[8], 1, "\"a \"\"quoted\"\"\r\n\r\nname, too\"");
    let input = dir.path().join("orders.csv");
    std::fs::write(&input, lines.iter().map(|l| format!("{l}\r\n")).collect::<String>()).unwrap();
    let state = dir.path().join("state");
    let out = run_orders(&input, &state, &["--param", "lines_per_item=7"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let s = summary(&out);
    assert_eq!((s["items"].as_u64(), s["failed_items"].as_u64()), (Some(100), Some(0)), "{}", rejects_of(&s));
    assert_eq!(s["children"], 15, "100 records / 7 per child");
    let run_id = s["run_id"].as_str().unwrap();
    let expected: String =
        ids.iter().map(|id| format!("{id},{}\n", orders::confirmation_id(run_id, id))).collect();
    let output = std::fs::read_to_string(s["output_path"].as_str().unwrap()).unwrap();
    assert!(output == expected, "output holds every record once, in order:\n{output}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use batchfan::table::{sqlite::SqliteTable, Key, Table};
        let table = SqliteTable::open(&state.join("tables")).unwrap();
        let item = table.get("Orders", &Key::new(&ids[7], "order")).await.unwrap().expect("row stored");
        assert_eq!(item.str("Country"), Some("a \"quoted\"\r\n\r\nname, too"));
    });
}

/// Issue 10, finding 6: a file without its header row is refused (no row is
/// silently taken for the header), and so is a header naming other columns.
#[test]
fn a_missing_or_wrong_header_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let lines = gen_lines(dir.path(), 20);
    let input = dir.path().join("orders.csv");
    std::fs::write(&input, lines[1..].join("\n") + "\n").unwrap();
    let state = dir.path().join("state");
    let out = run_orders(&input, &state, &[]);
    assert_eq!(out.status.code(), Some(2), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("the file has no header row: its first row is data ({})", lines[1])),
        "{err}"
    );
    assert!(
        err.contains("add the header row (Region,Country,Item Type,")
            && err.contains("or set header = false"),
        "{err}"
    );
    let status = batchfan(&["status", "--state", state.to_str().unwrap(), "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or(serde_json::json!([]));
    assert_eq!(runs.as_array().map_or(0, Vec::len), 0, "no run for a file without header");

    let wrong = lines[0].replace("Order ID", "OrderID");
    std::fs::write(&input, format!("{wrong}\n{}\n", lines[1..].join("\n"))).unwrap();
    let out = run_orders(&input, &state, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("column 7 is \"OrderID\", expected \"Order ID\""), "{err}");
    assert!(err.contains(&format!("found {wrong}")), "{err}");
}

/// Issue 10, finding 6: a repeated Order ID is a reject naming both lines,
/// within a child and across children, whichever child runs first: one
/// ConfirmationId per Order ID, the first copy's row in the table, and the
/// same output and rejects, byte for byte, with 1 or 2 children at a time,
/// and whether the aggregation merges the children's ID lists or searches
/// their outputs.
#[test]
fn duplicate_order_ids_are_rejected_with_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = gen_lines(dir.path(), 1_000);
    let id = |lines: &[String], line: usize| lines[line - 1].split(',').nth(6).unwrap().to_owned();
    let (id3, id4) = (id(&lines, 3), id(&lines, 4));
    lines[9 - 1] = set_field(&lines[9 - 1], 6, &id4); // within child 0 (lines 2..=101)
    lines[117 - 1] = set_field(&set_field(&lines[117 - 1], 6, &id3), 0, "Antarctica"); // child 1
    lines[845 - 1] = set_field(&set_field(&lines[845 - 1], 6, &id3), 0, "Atlantis"); // child 8
    let input = dir.path().join("orders.csv");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    // The children's ID lists off: the aggregation searches the outputs.
    let spec = std::fs::read_to_string(jobs_dir().join("orders.toml")).unwrap();
    let without_lists = dir.path().join("orders.toml");
    let confirm = "command = [\"orders-confirm\"]";
    assert!(spec.contains(confirm));
    std::fs::write(
        &without_lists,
        spec.replace(confirm, &format!("{confirm}\nenv = {{ ORDERS_ID_LISTS = \"off\" }}")),
    )
    .unwrap();
    let mut runs = Vec::new();
    for (vcpus, spec) in [("1", None), ("2", None), ("2", Some(&without_lists))] {
        let state = dir.path().join(format!("state{}", runs.len()));
        let args = ["--param", "lines_per_item=100", "--vcpus", vcpus];
        let out = match spec {
            None => run_orders(&input, &state, &args),
            Some(spec) => {
                let mut all = vec!["run", spec.to_str().unwrap(), "--input", input.to_str().unwrap()];
                all.extend(["--state", state.to_str().unwrap(), "--output", "json"]);
                all.extend(args);
                batchfan(&all)
            }
        };
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        let run_id = summary(&out)["run_id"].as_str().unwrap().to_owned();
        let log = batchfan(&["logs", &run_id, "aggregation", "--state", state.to_str().unwrap()]);
        let searched = String::from_utf8_lossy(&log.stdout).contains("stored no ID list");
        assert_eq!(searched, spec.is_some(), "the outputs are searched only without ID lists");
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        let s = summary(&out);
        assert_eq!((s["items"].as_u64(), s["failed_items"].as_u64()), (Some(1_000), Some(3)));
        let output = std::fs::read_to_string(s["output_path"].as_str().unwrap()).unwrap();
        let rejects = rejects_of(&s);
        runs.push((output, rejects, s["run_id"].as_str().unwrap().to_owned(), state));
    }
    let (output, rejects, run_id, state) = &runs[0];
    for run in &runs[1..] {
        assert!(run.0 == *output && run.1 == *rejects, "byte-identical output and rejects");
    }
    assert_eq!(output.lines().count(), 997);
    assert_eq!(output.matches(&format!("{id3},")).count(), 1);
    let first_line = output.lines().nth(1).unwrap();
    assert_eq!(first_line, format!("{id3},{}", orders::confirmation_id(run_id, &id3)));
    let expected = format!(
        "9,order id {id4} on line 9 duplicates line 4,\"{}\"\n\
         117,order id {id3} on line 117 duplicates line 3,\"{}\"\n\
         845,order id {id3} on line 845 duplicates line 3,\"{}\"\n",
        lines[8], lines[116], lines[844]
    );
    assert_eq!(*rejects, expected);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use batchfan::table::{sqlite::SqliteTable, Key, Table};
        let table = SqliteTable::open(&state.join("tables")).unwrap();
        let item = table.get("Orders", &Key::new(&id3, "order")).await.unwrap().expect("row stored");
        assert_eq!(item.str("Region"), Some(lines[2].split(',').next().unwrap()), "the first copy wins");
    });
}

/// `orders-gen`'s Order IDs: unique, in random order by default (as real
/// exports have them: the benchmark must not flatter B-tree appends), in
/// ascending runs with `--ascending`.
#[test]
fn generated_order_ids_are_unique_and_random_unless_ascending() {
    let dir = tempfile::tempdir().unwrap();
    let ids = |extra: &[&str]| -> Vec<u64> {
        let path = dir.path().join("gen.csv");
        let status = std::process::Command::new(bin_dir().join("orders-gen"))
            .args(["--rows", "20000", "--out"])
            .arg(&path)
            .args(extra)
            .status()
            .expect("orders-gen runs");
        assert!(status.success());
        let text = std::fs::read_to_string(&path).unwrap();
        text.lines().skip(1).map(|l| l.split(',').nth(6).unwrap().parse().unwrap()).collect()
    };
    let descents = |v: &[u64]| v.windows(2).filter(|w| w[1] < w[0]).count();
    for (shape, v) in [("random", ids(&[])), ("ascending", ids(&["--ascending"]))] {
        assert_eq!(v.iter().collect::<HashSet<_>>().len(), v.len(), "{shape}: unique Order IDs");
        assert!(v.iter().all(|id| (100_000_000..1_000_000_000).contains(id)), "{shape}: nine digits");
        let d = descents(&v);
        match shape {
            "random" => assert!((8_000..12_000).contains(&d), "about half the steps go down: {d}"),
            _ => assert_eq!(d, 0, "20,000 rows are one ascending run"),
        }
    }
}
