//! Issue 14 items 1 and 2 on the real binary and the embedded backend:
//! `batchfan cancel` and `batchfan retry`.

use crate::serve_support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Instant,
};

use serde_json::Value;
use serve_support::{batchfan, bin, sh_stage, write_spec, DEADLINE};
use sha2::{Digest, Sha256};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_out(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text}\nstderr: {}", stderr(out)))
}

/// The run id `--request-id ID` gets (as `TriggerEvent::run_id` of key `request:ID`).
fn run_id(pipeline: &str, request_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(pipeline.as_bytes());
    h.update([0]);
    h.update(format!("request:{request_id}").as_bytes());
    format!("r{}", &hex::encode(h.finalize())[..11])
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `orders.toml` with its confirm stage behind `flaky.sh`: child INDEX fails
/// while `$ORDERS_FAIL_DIR/fail-INDEX` exists — the "cause" a user fixes.
fn flaky_orders(dir: &Path) -> PathBuf {
    let script = dir.join("flaky.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nif [ -n \"$ORDERS_FAIL_DIR\" ] && [ -e \"$ORDERS_FAIL_DIR/fail-${AWS_BATCH_JOB_ARRAY_INDEX:-0}\" ]; then\n  \
         echo \"error: cannot confirm: $ORDERS_FAIL_DIR/fail-${AWS_BATCH_JOB_ARRAY_INDEX:-0} is in the way\" >&2\n  exit 1\nfi\nexec orders-confirm\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let stock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/orders.toml")).unwrap();
    let text = stock.replace("command = [\"orders-confirm\"]", "command = [\"./flaky.sh\"]")
        + "\n[local]\npass_env = [\"ORDERS_FAIL_DIR\"]\n";
    assert!(text.contains("./flaky.sh"), "orders.toml changed: {stock}");
    write_spec(dir, "orders", &text)
}

fn output_of(state: &Path, run: &str, name: &str) -> Option<Vec<u8>> {
    std::fs::read(state.join("buckets/batchfan-orders/runs/orders").join(run).join(name)).ok()
}

#[test]
fn retry_reruns_only_the_failed_orders_child_and_the_output_is_the_clean_runs_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let spec = flaky_orders(dir.path());
    let input = dir.path().join("orders.csv");
    let gen = Command::new(bin().with_file_name("orders-gen"))
        .args(["--rows", "500", "--out", s(&input), "--malformed-every", "199"])
        .output()
        .unwrap();
    assert!(gen.status.success(), "{}", stderr(&gen));
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let fail_dir = dir.path().join("faults");
    std::fs::create_dir(&fail_dir).unwrap();
    std::fs::write(fail_dir.join("fail-2"), "").unwrap();
    let env = [("ORDERS_FAIL_DIR", s(&fail_dir))];
    let run_args = |state: &Path| {
        vec![
            "run".to_owned(),
            s(&spec).into(),
            "--input".into(),
            s(&input).into(),
            "--param".into(),
            "lines_per_item=100".into(),
            "--request-id".into(),
            "ops-1".into(),
            "--state".into(),
            s(state).into(),
            "--output".into(),
            "json".into(),
            "-q".into(),
        ]
    };
    let args_a = run_args(&a);
    let first = batchfan(&args_a.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let first = json_out(&first);
    let run = run_id("orders", "ops-1");
    assert_eq!(first["run_id"], run.as_str());
    assert_eq!(first["state"], "FAILED");
    assert_eq!(first["failure"]["index"], 2, "{first}");
    assert_eq!(first["children"], 5);
    // The failure cleanup kept what the retry reuses: the other children's outputs.
    for i in [0, 1, 3, 4] {
        assert!(output_of(&a, &run, &format!("confirm/{i:010}")).is_some(), "child {i}'s output was deleted");
    }

    // Fix the cause, retry: only child 2 runs again.
    std::fs::remove_file(fail_dir.join("fail-2")).unwrap();
    let retry_args = ["retry", &run, "--state", s(&a), "--spec", s(&spec), "--output", "json"];
    let retried = batchfan(&retry_args, &env);
    assert_eq!(retried.status.code(), Some(0), "{}", stderr(&retried));
    let retried = json_out(&retried);
    assert_eq!(retried["state"], "SUCCEEDED", "{retried}");
    assert_eq!(retried["attempt"], 2);
    assert_eq!(retried["reruns"], serde_json::json!([1]), "only the failed child reran: {retried}");
    let status = batchfan(&["status", &run, "--state", s(&a)], &[]);
    let status_text = String::from_utf8_lossy(&status.stdout);
    assert!(status_text.contains(&format!("job orders-{run}_a2-confirm-0 ")), "{status_text}");
    assert!(status_text.contains("1 SUCCEEDED"), "{status_text}");
    // Its timings are the current attempt's: one confirm child (child 2), the aggregation, the cleanup.
    assert!(status_text.contains("timings of attempt 2 "), "{status_text}");
    assert!(status_text.contains("confirm (1 of 1 started)"), "{status_text}");
    let status = batchfan(&["status", &run, "--state", s(&a), "--output", "json"], &[]);
    let timings = &json_out(&status)["timings"];
    assert_eq!(timings[0]["slowest"][0]["index"], 2, "the rerun child by its index in the run: {timings}");
    assert!(!status_text.contains("cleanup after failure"), "{status_text}");

    // The same request on a clean state directory: same run id, no failure.
    let args_b = run_args(&b);
    let clean = batchfan(&args_b.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    assert_eq!(json_out(&clean)["run_id"], run.as_str());
    let (out_a, out_b) = (output_of(&a, &run, "output").unwrap(), output_of(&b, &run, "output").unwrap());
    assert!(out_a.len() > 1000, "{} bytes", out_a.len());
    assert!(out_a == out_b, "the retried run's output differs from the clean run's");
    let rejects = (output_of(&a, &run, "rejects.csv"), output_of(&b, &run, "rejects.csv"));
    assert!(rejects.1.is_some(), "the input has malformed rows: a rejects file is expected");
    assert_eq!(rejects.0, rejects.1, "rejects differ");
    // The success cleanup removed the scratch of both attempts.
    assert!(output_of(&a, &run, "confirm/0000000000").is_none());

    // A SUCCEEDED run is not retried; an unknown one neither.
    let again = batchfan(&retry_args, &env);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("is SUCCEEDED"), "{}", stderr(&again));
    let unknown = batchfan(&["retry", "rnope", "--state", s(&a), "--spec", s(&spec)], &[]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    assert!(stderr(&unknown).contains("rnope"), "{}", stderr(&unknown));
}

fn alerts(state: &Path, spec: &Path) -> Vec<Value> {
    let out = batchfan(&["alerts", s(spec), "--state", s(state), "--output", "json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    json_out(&out).as_array().cloned().unwrap_or_default()
}

#[test]
fn cancel_stops_a_run_another_process_drives_once_and_retry_then_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let slow = dir.path().join("slow");
    std::fs::write(&slow, "").unwrap();
    // 4 children on 2 vCPUs: two run, two wait; a second stage waits N_TO_N.
    let text = format!(
        "name = \"cnl\"\n[planner]\nstrategy = \"range\"\ncount = 4\n[local]\npass_env = [\"SLOW\"]\n\
         [[stages]]\nname = \"work\"\ncommand = {}\nvcpus = 1\nmemory = 64\n\
         [[stages]]\nname = \"more\"\ncommand = {}\nvcpus = 1\nmemory = 64\n",
        sh_stage("if [ -e \"$SLOW\" ]; then echo started; sleep 120; fi"),
        sh_stage("true"),
    );
    let spec = write_spec(dir.path(), "cnl", &text);
    let driver = Command::new(bin())
        .args(["run", s(&spec), "--state", s(&state), "--vcpus", "2", "--request-id", "c1", "-q"])
        .env("SLOW", &slow)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = run_id("cnl", "c1");
    // Wait until two children run (each attempt has its log file: logs/JOB/INDEX.attempt-1.log).
    let start = Instant::now();
    loop {
        let logs: usize = std::fs::read_dir(state.join("logs"))
            .map(|d| {
                d.flatten().map(|job| std::fs::read_dir(job.path()).map(|f| f.count()).unwrap_or(0)).sum()
            })
            .unwrap_or(0);
        if logs >= 2 {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "no child started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let cancel = ["cancel", &run, "--state", s(&state), "--spec", s(&spec), "--output", "json"];
    let out = batchfan(&cancel, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("applies it"), "the engine is the driver's: {}", stderr(&out));
    assert_eq!(json_out(&out)["state"], "CANCELLED");
    let driven = driver.wait_with_output().unwrap();
    assert_eq!(driven.status.code(), Some(1), "{}", stderr(&driven));
    assert!(String::from_utf8_lossy(&driven.stdout).contains("CANCELLED"));

    // Idempotent: a second cancel changes nothing and publishes nothing.
    let out = batchfan(&cancel, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let published = alerts(&state, &spec);
    assert_eq!(published.len(), 1, "one notice, no failure alert: {published:?}");
    assert_eq!(published[0]["attributes"]["kind"], "cancelled");
    assert!(published[0]["subject"].as_str().unwrap().contains("cancelled"));

    let status = batchfan(&["status", &run, "--state", s(&state)], &[]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains(": CANCELLED"), "{text}");
    assert!(text.contains(&format!("job cnl-{run}-work-0 ")) && text.contains("4 FAILED"), "{text}");
    assert!(text.contains("cleanup-onfailure") && !text.contains("RUNNING"), "{text}");

    // Retry the cancelled run with the cause gone: everything runs, it succeeds.
    std::fs::remove_file(&slow).unwrap();
    let out = batchfan(&["retry", &run, "--state", s(&state), "--spec", s(&spec), "--output", "json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_out(&out);
    assert_eq!((v["state"].as_str(), v["reruns"].clone()), (Some("SUCCEEDED"), serde_json::json!([4, 4])));
    assert_eq!(alerts(&state, &spec).len(), 1, "the retry published nothing");
    // A cancel of a run that has ended is refused.
    let out = batchfan(&cancel, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already ended SUCCEEDED"), "{}", stderr(&out));
}
