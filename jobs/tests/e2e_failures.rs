//! End to end: failures, resume after kill -9, jobs in any language.

use crate::common;

use std::{process::Command, time::Duration};

use common::*;

fn spec_with_stage_command(dir: &std::path::Path, command: &str) -> std::path::PathBuf {
    write_spec(
        dir,
        "broken.toml",
        &format!(
            r#"
name = "broken"
[planner]
strategy = "range"
count = 5
[[stages]]
name = "work"
command = [{command}]
[alerts]
topic = "broken-alerts"
[storage]
bucket = "batchfan-broken"
"#
        ),
    )
}

/// A stage command that does not exist: the children fail with a status reason
/// naming it, the run fails with exactly one alert, and cleanup still runs.
#[test]
fn missing_stage_command_fails_with_one_alert() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec_with_stage_command(dir.path(), r#""no-such-command-xyz""#);
    let state = dir.path().join("state");
    let out =
        batchfan(&["run", spec.to_str().unwrap(), "--state", state.to_str().unwrap(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let s = summary(&out);
    assert_eq!(s["state"], "FAILED");
    assert_eq!(s["failure"]["stage"], "work");
    let reason = s["failure"]["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no-such-command-xyz"), "status reason names the command: {reason}");
    let alerts = alerts(&state, "broken-alerts");
    assert_eq!(alerts.len(), 1, "one alert for five failed children: {alerts:?}");
    let alert: serde_json::Value = serde_json::from_str(&alerts[0]).unwrap();
    assert_eq!(alert["stage"], "work");
    assert!(alert["index"].as_u64().is_some_and(|i| i < 5));
    assert!(alert["status_reason"].as_str().unwrap().contains("no-such-command-xyz"));
    // The failure cleanup ran: the work items are gone.
    let status = batchfan(&[
        "status",
        s["run_id"].as_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let rec: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(rec["jobs"].as_object().unwrap().keys().any(|k| k.ends_with("cleanup-onfailure")));
}

/// A job failing with an exit code: the alert carries the exit code and the log tail.
#[test]
fn failing_job_alert_has_exit_code_and_log_tail() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fail.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"child $AWS_BATCH_JOB_ARRAY_INDEX says boom\" >&2\nexit 3\n")
        .unwrap();
    make_executable(&script);
    let spec = spec_with_stage_command(dir.path(), r#""./fail.sh""#);
    let state = dir.path().join("state");
    let out =
        batchfan(&["run", spec.to_str().unwrap(), "--state", state.to_str().unwrap(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let s = summary(&out);
    assert_eq!(s["failure"]["exit_code"], 3);
    assert!(s["failure"]["log_tail"].as_str().unwrap().contains("says boom"), "{s}");
    assert_eq!(alerts(&state, "broken-alerts").len(), 1);
    let listed = batchfan(&["alerts", spec.to_str().unwrap(), "--state", state.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("failed at work[") && text.contains("exit 3"), "{text}");
}

/// `batchfan job exec` runs a program in another language: item in, result and output out.
#[test]
fn job_exec_runs_any_program() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("square.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nset -e\nn=$(sed 's/.*\"units\":\\[\\([0-9]*\\)\\].*/\\1/' \"$BATCHFAN_ITEM_FILE\")\n\
         echo \"{\\\"square\\\": $((n * n))}\" > \"$BATCHFAN_RESULT_FILE\"\necho \"$n squared is $((n * n))\" > \"$BATCHFAN_OUTPUT_FILE\"\n",
    )
    .unwrap();
    make_executable(&script);
    let spec = write_spec(
        dir.path(),
        "squares.toml",
        r#"
name = "squares"
[planner]
strategy = "range"
count = 4
[[stages]]
name = "square"
command = ["batchfan", "job", "exec", "--", "./square.sh"]
[storage]
bucket = "batchfan-squares"
"#,
    );
    let state = dir.path().join("state");
    let out =
        batchfan(&["run", spec.to_str().unwrap(), "--state", state.to_str().unwrap(), "--output", "json"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let s = summary(&out);
    let output = std::fs::read_to_string(s["output_path"].as_str().unwrap()).unwrap();
    assert_eq!(output, "0 squared is 0\n1 squared is 1\n2 squared is 4\n3 squared is 9\n");
}

/// `kill -9` of `batchfan run` mid-run, then the same command again: the same
/// run resumes and its output is byte-identical to an uninterrupted run's.
#[test]
fn kill_minus_nine_then_rerun_resumes_with_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.csv");
    gen_orders(&input, 20_000, 0);
    let spec = jobs_dir().join("orders.toml");
    let args = |state: &std::path::Path| {
        vec![
            "run".to_owned(),
            spec.to_str().unwrap().to_owned(),
            "--input".into(),
            input.to_str().unwrap().to_owned(),
            "--state".into(),
            state.to_str().unwrap().to_owned(),
            "--param".into(),
            "lines_per_item=500".into(),
            "--vcpus".into(),
            "1".into(),
            "--output".into(),
            "json".into(),
        ]
    };
    // Uninterrupted reference run.
    let ref_state = dir.path().join("ref");
    let a: Vec<String> = args(&ref_state);
    let reference = batchfan(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(reference.status.success());
    let reference = summary(&reference);

    // Interrupted run: kill -9 once a few children finished.
    let state = dir.path().join("state");
    let mut child = Command::new(bin_dir().join("batchfan")).args(args(&state)).spawn().unwrap();
    let results_dir = state.join("buckets/batchfan-orders/runs/orders");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done = count_files(&results_dir);
        if done >= 3 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let out = batchfan(&args(&state).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "resume failed: {}", String::from_utf8_lossy(&out.stderr));
    let resumed = summary(&out);
    assert_eq!(resumed["run_id"], reference["run_id"], "same command, same run");
    let a = std::fs::read(reference["output_path"].as_str().unwrap()).unwrap();
    let b = std::fs::read(resumed["output_path"].as_str().unwrap()).unwrap();
    assert_eq!(a.len(), b.len());
    assert!(a == b, "resumed output is byte-identical");
    assert_eq!(resumed["items"], 20_000);
}

fn count_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()
}
