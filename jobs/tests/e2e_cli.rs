//! End to end: the CLI's other commands, and FANOUT on the embedded backend.

use crate::common;

use common::*;

/// FANOUT-N through two N_TO_N stages gives the plain loop's sum, with and
/// without packing several items per child, and with and without fork servers.
#[test]
fn fanout_sum_matches_the_plain_loop() {
    for (per_child, forks) in [("1", "on"), ("7", "on"), ("1", "off")] {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let out = batchfan_with(
            &[("BATCHFAN_FORK_SERVERS", forks)],
            &[
                "run",
                jobs_dir().join("fanout.toml").to_str().unwrap(),
                "--param",
                "count=40",
                "--param",
                &format!("items_per_child={per_child}"),
                "--state",
                state.to_str().unwrap(),
                "--output",
                "json",
            ],
        );
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        let s = summary(&out);
        let expected_children = if per_child == "1" { 40 } else { 6 };
        assert_eq!(s["children"], expected_children);
        // Every child's table calls went through the service (table::relay):
        // a's put, b's read of a's result and its put.
        let relayed = s["table_relay_calls"].as_u64().expect("a local run reports its relay calls");
        assert!(relayed >= 3 * expected_children, "{relayed} relay calls for {expected_children} children");
        // Each stage's first child is exec'd, the rest are forks of its fork
        // server (engine::forks); the sum, which needs every child's own
        // index, is the same either way.
        let forked = s["forked_starts"].as_u64().expect("a local run reports its forked starts");
        let expected_forks = if forks == "on" { 2 * (expected_children - 1) } else { 0 };
        assert_eq!(forked, expected_forks, "forks {forks}, {expected_children} children per stage");
        let sum = std::fs::read_to_string(s["output_path"].as_str().unwrap()).unwrap();
        assert_eq!(sum.trim(), batchfan_jobs::fanout::plain_loop(40).to_string());
        // Cleanup deletes no row: the results stay until they expire, and
        // the local sweep (DynamoDB's TTL on AWS) deletes them once they have.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let table = batchfan::table::sqlite::SqliteTable::open(&state.join("tables")).unwrap();
            let store = batchfan::run::RunStore::new(&table, "batchfan");
            let run_id = s["run_id"].as_str().unwrap();
            for stage in ["a", "b"] {
                assert_eq!(store.results(run_id, stage).await.unwrap().len() as u64, expected_children);
            }
            let now = batchfan::run::record::now_ms();
            assert_eq!(store.sweep_expired("fanout", now).await.unwrap(), 0, "not expired yet");
            let later = now + 15 * 86_400_000;
            assert_eq!(store.sweep_expired("fanout", later).await.unwrap(), 2 * expected_children);
            assert!(store.results(run_id, "a").await.unwrap().is_empty());
            assert!(store.results(run_id, "b").await.unwrap().is_empty());
            assert_eq!(store.sweep_expired("fanout", later).await.unwrap(), 0, "swept once");
        });
    }
}

/// The FANOUT sum reports no item count: `run` says nothing of items rather
/// than "items 0" (`--output json` gives null).
#[test]
fn an_aggregation_that_counts_no_items_shows_none() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let spec = jobs_dir().join("fanout.toml");
    let (spec, st) = (spec.to_str().unwrap(), state.to_str().unwrap());
    let out = batchfan(&["run", spec, "--param", "count=5", "--state", st, "-q"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SUCCEEDED") && stdout.contains("output s3://"), "{stdout}");
    assert!(!stdout.contains("items"), "{stdout}");
    let json = batchfan(&["run", spec, "--param", "count=5", "--state", st, "--output", "json"]);
    assert!(summary(&json)["items"].is_null());
}

/// `validate` reports every problem with file:line:col and exits 2.
#[test]
fn validate_reports_positions() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "bad.toml",
        "name = \"Bad Name\"\n[planner]\nstrategy = \"lines\"\n[[stages]]\nname = \"s\"\ncommand = [\"x\"]\ntimeout = 30\n",
    );
    let out = batchfan(&["validate", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:1:8:"), "{err}");
    assert!(err.contains("bad.toml:7:11:"), "{err}");
    assert!(err.contains("60"), "names the limit: {err}");
    let ok = batchfan(&["validate", jobs_dir().join("orders.toml").to_str().unwrap()]);
    assert!(ok.status.success());
}

/// `plan` shows the sizing and the job graph without running anything.
#[test]
fn plan_shows_sizing_and_graph() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = batchfan(&[
        "plan",
        jobs_dir().join("fanout.toml").to_str().unwrap(),
        "--param",
        "count=25000",
        "--param",
        "items_per_child=1",
        "--state",
        state.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sizing"]["children"], 25_000);
    assert_eq!(v["sizing"]["shards"], 3);
    let nodes = v["graph"]["nodes"].as_array().unwrap();
    let b1 = nodes.iter().find(|n| n["name"].as_str().unwrap().ends_with("-b-1")).unwrap();
    assert_eq!(b1["depends_on"][0]["kind"], "N_TO_N");
    assert!(b1["depends_on"][0]["node"].as_str().unwrap().ends_with("-a-1"));
    assert!(v["problems"].as_array().unwrap().is_empty());
    assert!(!state.join("engine.sqlite").exists(), "plan runs nothing");
    let bad = batchfan(&["plan", jobs_dir().join("fanout.toml").to_str().unwrap(), "--param", "nope=1"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown parameter \"nope\""));
}

/// `status` lists runs and shows one; `logs` prints a child's log.
#[test]
fn status_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hello.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"hello from child $AWS_BATCH_JOB_ARRAY_INDEX attempt $AWS_BATCH_JOB_ATTEMPT\"\n",
    )
    .unwrap();
    make_executable(&script);
    let spec = write_spec(
        dir.path(),
        "hello.toml",
        "name = \"hello\"\n[planner]\nstrategy = \"range\"\ncount = 3\n[[stages]]\nname = \"greet\"\ncommand = [\"batchfan\", \"job\", \"exec\", \"--\", \"./hello.sh\"]\n[storage]\nbucket = \"batchfan-hello\"\n",
    );
    let state = dir.path().join("state");
    let st = state.to_str().unwrap();
    let out = batchfan(&["run", spec.to_str().unwrap(), "--state", st, "--output", "json"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let run_id = summary(&out)["run_id"].as_str().unwrap().to_owned();
    let list = batchfan(&["status", "--state", st]);
    assert!(String::from_utf8_lossy(&list.stdout).contains(&run_id));
    let one = batchfan(&["status", &run_id, "--state", st]);
    let text = String::from_utf8_lossy(&one.stdout);
    assert!(text.contains("SUCCEEDED") && text.contains("3 SUCCEEDED"), "{text}");
    let logs = batchfan(&["logs", &run_id, "greet", "2", "--state", st]);
    assert!(logs.status.success(), "{}", String::from_utf8_lossy(&logs.stderr));
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "hello from child 2 attempt 1\n");
    let missing = batchfan(&["logs", &run_id, "greet", "9", "--state", st]);
    assert_eq!(missing.status.code(), Some(2));
}
