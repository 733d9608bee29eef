//! End to end: the `orders` pipeline on the embedded backend, through the real CLI.

mod common;

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
        // Work items and results are gone.
        let store = batchfan::run::RunStore::new(&table, "batchfan");
        assert!(store.work_item(&run_id, 0).await.unwrap().is_none());
        assert!(store.results(&run_id, "confirm").await.unwrap().is_empty());
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
    // The failure cleanup ran: no work items or child outputs are left.
    let run_dir = std::path::Path::new(s["output_path"].as_str().unwrap()).parent().unwrap().to_path_buf();
    assert!(!run_dir.join("confirm").exists(), "child outputs deleted by the failure cleanup");
}
