//! Issue 10, findings 1, 7, 8 and 11, on the real binary and the embedded
//! backend: input snapshots, a closed stdout, arguments checked up front,
//! and how a failed run is reported.

use crate::serve_support;

use std::{
    io::{Seek, Write},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use rstest::rstest;
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

/// A `lines` pipeline (2 lines a child) whose stage runs `script`.
fn lines_spec(dir: &Path, script: &str) -> PathBuf {
    let text = format!(
        "name = \"snap\"\n[params]\ngate = \"\"\n[planner]\nstrategy = \"lines\"\nlines_per_item = 2\nheader = false\n\
         [[stages]]\nname = \"work\"\ncommand = {}\nvcpus = 1\nmemory = 64\n",
        sh_stage(script)
    );
    write_spec(dir, "snap", &text)
}

/// A `range` pipeline of `count` children running `script`.
fn range_spec(dir: &Path, count: u32, script: &str) -> PathBuf {
    let text = format!(
        "name = \"cnt\"\n[planner]\nstrategy = \"range\"\ncount = {count}\n\
         [[stages]]\nname = \"work\"\ncommand = {}\nvcpus = 1\nmemory = 64\n",
        sh_stage(script)
    );
    write_spec(dir, "cnt", &text)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn snapshot_path(state: &Path, content: &[u8], name: &str) -> PathBuf {
    state.join("buckets/batchfan-inputs").join(sha256_hex(content)).join(name)
}

/// Overwrites `path` in place (same inode, same size), as an editor saving over it would.
fn edit_in_place(path: &Path, content: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(content).unwrap();
    f.set_len(content.len() as u64).unwrap();
}

fn run_count(st: &str) -> usize {
    let out = batchfan(&["status", "--state", st, "--output", "json"], &[]);
    json_out(&out).as_array().map_or(0, Vec::len)
}

/// Issue 10 finding 1: the input was hard-linked (same inode), so editing the
/// file after a `kill -9` changed what the resumed run read.
#[test]
fn a_local_input_is_a_snapshot_copied_under_its_content_hash_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    // Children wait for the gate file: the run is in flight until the test opens it.
    let spec = lines_spec(dir.path(), "while [ ! -e \"$BATCHFAN_PARAM_GATE\" ]; do sleep 0.05; done");
    let input = dir.path().join("rows.csv");
    let original = b"a,1\nb,2\nc,3\nd,4\n".to_vec();
    std::fs::write(&input, &original).unwrap();
    let state = dir.path().join("state");
    let (st, sp, inp) = (state.to_str().unwrap(), spec.to_str().unwrap(), input.to_str().unwrap());
    let gate_param = format!("gate={}", gate.display());
    let run_args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> =
            ["run", sp, "--input", inp, "--state", st, "--param", gate_param.as_str(), "--output", "json"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    // Start a run, and kill -9 it once its children are running.
    let mut first = Command::new(bin())
        .args(run_args(&["--request-id", "snap-1"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run_id = batchfan::run::TriggerEvent {
        pipeline: "snap".into(),
        source: batchfan::run::TriggerSource::Manual,
        idempotency_key: "request:snap-1".into(),
        input: None,
        params: Default::default(),
    }
    .run_id();
    let start = Instant::now();
    loop {
        let out = batchfan(&["status", &run_id, "--state", st, "--output", "json"], &[]);
        if out.status.success() && json_out(&out)["state"] == "SUBMITTED" {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "run {run_id} was never submitted: {}", stderr(&out));
        std::thread::sleep(Duration::from_millis(100));
    }
    first.kill().unwrap();
    first.wait().unwrap();

    let snap = snapshot_path(&state, &original, "rows.csv");
    assert_eq!(std::fs::read(&snap).unwrap(), original, "the snapshot holds the file's content");
    assert_ne!(
        std::fs::metadata(&snap).unwrap().ino(),
        std::fs::metadata(&input).unwrap().ino(),
        "a copy, not a hard link"
    );
    let status = json_out(&batchfan(&["status", &run_id, "--state", st, "--output", "json"], &[]));
    assert_eq!(
        status["trigger"]["input"],
        serde_json::json!({"bucket": "batchfan-inputs", "key": format!("{}/rows.csv", sha256_hex(&original))}),
        "the run records its input object, named after the content's sha256"
    );

    // Edit the file in place (same inode, same size): the snapshot keeps the old bytes.
    let edited = b"A,9\nB,9\nC,9\nD,9\n".to_vec();
    edit_in_place(&input, &edited);
    assert_eq!(std::fs::read(&snap).unwrap(), original, "editing the file leaves the snapshot as it was");
    assert_eq!(sha256_hex(&std::fs::read(&snap).unwrap()), sha256_hex(&original));

    // The same command resumes the same run: refused, since the file changed.
    let refused =
        batchfan(&run_args(&["--request-id", "snap-1"]).iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let err = stderr(&refused);
    assert!(err.contains(&run_id) && err.contains("restore the file") && err.contains("--fresh"), "{err}");
    assert!(err.contains(&sha256_hex(&original)) && err.contains(&sha256_hex(&edited)), "{err}");

    // Restored, the same command resumes the run and finishes it on the original content.
    std::fs::write(&input, &original).unwrap();
    std::fs::write(&gate, "").unwrap();
    let resumed =
        batchfan(&run_args(&["--request-id", "snap-1"]).iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let done = json_out(&resumed);
    assert_eq!((done["run_id"].as_str(), done["state"].as_str()), (Some(run_id.as_str()), Some("SUCCEEDED")));
    assert_eq!(done["units"], 2, "4 lines, 2 a child");

    // A snapshot that no longer holds the content it is named after is refused ...
    std::fs::write(&snap, b"tampered\n").unwrap();
    let runs_before = run_count(st);
    let tampered = batchfan(&run_args(&[]).iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(tampered.status.code(), Some(2), "{}", stderr(&tampered));
    let err = stderr(&tampered);
    assert!(
        err.contains(&format!("s3://batchfan-inputs/{}/rows.csv", sha256_hex(&original)))
            && err.contains("--fresh"),
        "{err}"
    );
    assert_eq!(run_count(st), runs_before, "no run from a refused input");
    // ... until --fresh copies the file again.
    let fresh = batchfan(&run_args(&["--fresh"]).iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(fresh.status.code(), Some(0), "{}", stderr(&fresh));
    assert_eq!(std::fs::read(&snap).unwrap(), original, "--fresh put the content back under its name");
    assert_ne!(json_out(&fresh)["run_id"].as_str(), Some(run_id.as_str()));

    // Without a request id, other content is another run with its own snapshot.
    edit_in_place(&input, &edited);
    let other = batchfan(&run_args(&[]).iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(other.status.code(), Some(0), "{}", stderr(&other));
    assert_eq!(std::fs::read(snapshot_path(&state, &edited, "rows.csv")).unwrap(), edited);
    assert_eq!(std::fs::read(&snap).unwrap(), original);
}

/// Runs `batchfan ARGS` with its stdout a pipe whose reader is already gone.
fn with_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = Command::new(bin()).args(args).stdout(writer).stderr(Stdio::piped()).spawn().unwrap();
    child.wait_with_output().unwrap()
}

/// Issue 10 finding 7: `batchfan status | head -1` and a successful `run`
/// piped into `true` panicked (exit 101) on the closed pipe.
#[test]
fn a_closed_stdout_ends_the_command_quietly_with_its_normal_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let ok = range_spec(dir.path(), 2, "true");
    let state = dir.path().join("state");
    let (st, sp) = (state.to_str().unwrap(), ok.to_str().unwrap());
    for _ in 0..3 {
        let out = batchfan(&["run", sp, "--state", st, "--fresh", "--quiet"], &[]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(run_count(st), 3);
    for (args, code) in [
        (vec!["status", "--state", st], 0),
        (vec!["status", "--state", st, "--output", "json"], 0),
        (vec!["run", sp, "--state", st, "--fresh"], 0),
        (vec!["run", sp, "--state", st, "--fresh", "--output", "json"], 0),
        (vec!["validate", sp], 0),
        (vec!["run", sp, "--state", st, "--fresh", "--param", "count=3", "--param", "nope=1"], 2),
    ] {
        let out = with_closed_stdout(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe") && !err.contains("stdout"), "{args:?} is quiet about it: {err}");
    }
    let failing = range_spec(dir.path(), 2, "exit 1");
    let out = with_closed_stdout(&["run", failing.to_str().unwrap(), "--state", st, "--fresh"]);
    assert_eq!(out.status.code(), Some(1), "a failed run keeps its exit code: {}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
}

/// Issue 10 finding 8: `run --vcpus 0` exited 3, a 5,000-character
/// `--request-id` failed deep inside (a DynamoDB key-size error), an empty one
/// was accepted. Every case exits 2, naming the value and the allowed range,
/// before any work (no state directory is created).
#[rstest]
#[case::vcpus_zero(&["run", "SPEC", "--vcpus", "0"], &["\"0\"", "(0, 4096]"])]
#[case::vcpus_nan(&["run", "SPEC", "--vcpus", "nan"], &["\"nan\"", "(0, 4096]"])]
#[case::memory_zero(&["run", "SPEC", "--memory", "0"], &["0 is not in 1..=16777216"])]
#[case::request_id_empty(&["run", "SPEC", "--request-id", ""], &["request id is empty", "1-100 characters of letters, digits"])]
#[case::request_id_5000(&["run", "SPEC", "--request-id", "LONG"], &["is 5000 characters long", "1-100 characters"])]
#[case::request_id_space(&["run", "SPEC", "--request-id", "a b"], &["\"a b\" holds ' '", "1-100 characters"])]
#[case::aws_request_id_5000(&["run", "SPEC", "--backend", "aws", "--request-id", "LONG"], &["is 5000 characters long"])]
#[case::aws_poll_zero(&["run", "SPEC", "--backend", "aws", "--poll", "0"], &["\"0\"", "(0, 3600]"])]
#[case::trigger_request_id_empty(&["trigger", "SPEC", "--request-id", ""], &["request id is empty"])]
#[case::trigger_request_id_5000(&["trigger", "SPEC", "--request-id", "LONG"], &["is 5000 characters long"])]
#[case::serve_vcpus(&["serve", "SPEC", "--vcpus", "5000"], &["\"5000\"", "(0, 4096]"])]
#[case::serve_memory(&["serve", "SPEC", "--memory", "0"], &["0 is not in 1..=16777216"])]
#[case::serve_poll_ms(&["serve", "SPEC", "--poll-ms", "0"], &["0 is not in 10..=3600000"])]
#[case::serve_drain(&["serve", "SPEC", "--drain-timeout", "100000"], &["100000 is not in 0..=86400"])]
#[case::cost_items(&["cost", "SPEC", "--items", "0"], &["0 is not in 1.."])]
#[case::cost_items_per_child(&["cost", "SPEC", "--items", "5", "--items-per-child", "0"], &["0 is not in 1.."])]
#[case::cost_lambda_memory(&["cost", "SPEC", "--items", "5", "--lambda-memory-mb", "64"], &["64 is not in 128..=10240"])]
#[case::logs_attempt(&["logs", "r1", "work", "--attempt", "0"], &["0 is not in 1..=10"])]
fn bad_arguments_exit_2_with_the_allowed_range_before_any_work(
    #[case] args: &[&str],
    #[case] names: &[&str],
) {
    let dir = tempfile::tempdir().unwrap();
    let spec = range_spec(dir.path(), 2, "true");
    let state = dir.path().join("state");
    let long = "r".repeat(5000);
    let mut argv: Vec<&str> = args
        .iter()
        .map(|a| match *a {
            "SPEC" => spec.to_str().unwrap(),
            "LONG" => long.as_str(),
            other => other,
        })
        .collect();
    argv.extend(["--state", state.to_str().unwrap()].iter().filter(|_| args[0] != "cost"));
    // --backend aws must fail before any AWS call: nothing listens on this endpoint.
    let out = batchfan(&argv, &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9"), ("AWS_REGION", "eu-west-1")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    for n in names {
        assert!(err.contains(n), "{args:?}: {err:?} should name {n:?}");
    }
    assert!(err.len() < 1000, "the message cuts a long value: {err}");
    assert!(!state.exists(), "{args:?} did work before refusing");
}

/// Issue 10 finding 11: messages printed `exit Some(1)`, and a failed run's
/// `--output json` said `items 0`.
#[test]
fn a_failed_run_reports_exit_1_and_its_real_counts() {
    let dir = tempfile::tempdir().unwrap();
    let spec = range_spec(dir.path(), 3, "test \"$AWS_BATCH_JOB_ARRAY_INDEX\" != 1");
    let state = dir.path().join("state");
    let (st, sp) = (state.to_str().unwrap(), spec.to_str().unwrap());
    let out = batchfan(&["run", sp, "--state", st, "--output", "json", "--request-id", "fail-1"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json_out(&out);
    assert_eq!(v["state"], "FAILED");
    assert_eq!(v["failure"]["exit_code"], 1);
    assert_eq!(v["failure"]["index"], 1);
    assert_eq!(v["units"], 3);
    assert_eq!(v["children"], 3);
    assert_eq!(v["stages"][0]["stage"], "work");
    assert_eq!(v["stages"][0]["children"], 3);
    assert_eq!(v["stages"][0]["SUCCEEDED"], 2);
    assert_eq!(v["stages"][0]["FAILED"], 1);
    assert_eq!(v["failed_children"], 1);
    assert!(v["items"].is_null(), "no aggregation ran: items are unknown, not 0: {v}");

    let text = batchfan(&["run", sp, "--state", st, "--request-id", "fail-1"], &[]);
    assert_eq!(text.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("failed at work[1]: exit 1:"), "{stdout}");
    let run_id = v["run_id"].as_str().unwrap();
    let status = batchfan(&["status", run_id, "--state", st], &[]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("failed at work[1]: exit 1:"), "{shown}");
    for printed in [stdout.as_ref(), shown.as_ref()] {
        assert!(!printed.contains("Some("), "{printed}");
    }
}

/// Issue 13: a vCPU/memory pair Fargate (the module's default compute) does not
/// run passed `validate` silently; it is now a warning naming the nearest pair.
#[test]
fn validate_warns_about_pairs_fargate_does_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = range_spec(dir.path(), 2, "true");
    let out = batchfan(&["validate", spec.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "a warning, not an error: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: stage work: vcpus 1 with memory 64 MiB is not a combination Fargate runs: use vcpus = 1, memory = 2048"),
        "{err}"
    );
    let ec2 = dir.path().join("ec2.toml");
    std::fs::write(&ec2, format!("compute = \"ec2\"\n{}", std::fs::read_to_string(&spec).unwrap())).unwrap();
    let out = batchfan(&["validate", ec2.to_str().unwrap()], &[]);
    assert!(out.status.success() && !stderr(&out).contains("warning"), "{}", stderr(&out));
}

/// Issue 14 item 4: `status RUN` shows each stage's duration, queue wait and
/// slowest children, from the engine's created/started/stopped times (read
/// without the engine's lock), in text and in `--output json`.
#[test]
fn status_shows_each_stages_duration_queue_wait_and_slowest_children() {
    let dir = tempfile::tempdir().unwrap();
    let spec = range_spec(dir.path(), 3, "[ \"$AWS_BATCH_JOB_ARRAY_INDEX\" = 2 ] && sleep 1.5; true");
    let state = dir.path().join("state");
    let (st, sp) = (state.to_str().unwrap(), spec.to_str().unwrap());
    let out = batchfan(&["run", sp, "--state", st, "--output", "json", "--request-id", "timed-1"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run_id = json_out(&out)["run_id"].as_str().unwrap().to_owned();

    let v = json_out(&batchfan(&["status", &run_id, "--state", st, "--output", "json"], &[]));
    assert_eq!(v["run_id"], run_id.as_str(), "the record is still there, timings beside it: {v}");
    let stages: Vec<&str> =
        v["timings"].as_array().unwrap().iter().map(|t| t["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["work", "aggregation", "cleanup"], "{v}");
    let work = &v["timings"][0];
    assert_eq!((work["children"].as_u64(), work["started"].as_u64()), (Some(3), Some(3)), "{work}");
    let (first, last) =
        (work["first_started_at"].as_i64().unwrap(), work["last_stopped_at"].as_i64().unwrap());
    assert_eq!(work["duration_ms"].as_i64(), Some(last - first));
    assert!(work["run_time"]["max_ms"].as_i64().unwrap() >= 1500, "child 2 slept 1.5 s: {work}");
    assert!(work["queue_wait"]["max_ms"].as_i64().unwrap() >= 0, "{work}");
    let slowest: Vec<u64> =
        work["slowest"].as_array().unwrap().iter().map(|s| s["index"].as_u64().unwrap()).collect();
    assert_eq!(slowest.len(), 3, "{work}");
    assert_eq!(slowest[0], 2, "the child that slept is the slowest: {work}");

    let text = batchfan(&["status", &run_id, "--state", st], &[]);
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(shown.contains("timings (queue wait = started - created"), "{shown}");
    assert!(shown.contains("  work (3 of 3 started): took "), "{shown}");
    assert!(shown.contains("    slowest: [2] "), "{shown}");
    assert!(shown.contains("  aggregation (1 of 1 started): took "), "{shown}");
}
