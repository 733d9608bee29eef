//! Issue 14 items 3 and 6 on the real binary and the embedded backend: a live
//! progress line on a terminal (a real pty from `script`) that ends cleanly,
//! plain lines elsewhere, `NO_COLOR`, closed stdout and stderr, shell
//! completions the shells parse, `job` hidden from `--help`, `--output json`
//! of `validate` and `logs`, `logs --follow` and `--attempt`, and the alert
//! naming the command that prints the whole log.

use crate::serve_support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Instant,
};

use serde_json::Value;
use serve_support::{batchfan, bin, sh_stage, write_spec, DEADLINE};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `range` pipeline `name` of `count` children running `script` (2 attempts each).
fn range_spec(dir: &Path, name: &str, count: u32, script: &str) -> PathBuf {
    let text = format!(
        "name = \"{name}\"\n[planner]\nstrategy = \"range\"\ncount = {count}\n\
         [[stages]]\nname = \"work\"\ncommand = {}\nvcpus = 1\nmemory = 64\n[stages.retry]\nattempts = 2\n",
        sh_stage(script)
    );
    write_spec(dir, name, &text)
}

/// What a terminal shows of `raw`: each line as its carriage returns
/// overwrite it; colour codes (`ESC [ ... m`) take no cell.
fn screen(raw: &str) -> Vec<String> {
    let mut visible = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            visible.push(c);
        }
    }
    visible
        .split('\n')
        .map(|line| {
            let mut cells: Vec<char> = Vec::new();
            for part in line.split('\r') {
                for (i, c) in part.chars().enumerate() {
                    match cells.get_mut(i) {
                        Some(cell) => *cell = c,
                        None => cells.push(c),
                    }
                }
            }
            cells.into_iter().collect::<String>().trim_end().to_owned()
        })
        .collect()
}

/// Runs `batchfan ARGS` in a pseudo-terminal (util-linux `script`): returns
/// its exit code and every byte the terminal received.
fn in_pty(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let line: Vec<String> =
        std::iter::once(bin().display().to_string()).chain(args.iter().map(|a| a.to_string())).collect();
    let line = line.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
    let out = Command::new("script")
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .envs(env.iter().copied())
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs (scripts/setup/36-shells.sh)");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Item 6: on a terminal `run` shows one live line (redrawn with carriage
/// returns, bold labels) and clears it before the result; with `NO_COLOR`
/// the same display holds no escape code; off a terminal, plain lines.
#[test]
fn run_on_a_terminal_draws_a_live_line_ends_it_cleanly_and_obeys_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let spec = range_spec(dir.path(), "tty", 3, "sleep 1");
    let (sp, st) = (spec.to_str().unwrap(), dir.path().join("state"));
    let st = st.to_str().unwrap();

    let (code, raw) = in_pty(&["run", sp, "--state", st, "--fresh"], &[]);
    assert_eq!(code, Some(0), "{raw}");
    assert!(raw.split('\r').skip(1).any(|seg| seg.contains("s | ")), "a line redrawn in place: {raw:?}");
    assert!(raw.contains("\x1b[1mwork\x1b[0m"), "the stage's label in bold: {raw:?}");
    let shown = screen(&raw);
    let result = shown.iter().position(|l| l.starts_with("run r") && l.ends_with("SUCCEEDED"));
    let result = result.unwrap_or_else(|| panic!("the result on a line of its own: {shown:#?}"));
    assert!(
        shown.iter().all(|l| !l.contains("| work ")),
        "the live line is gone from the screen once the run ends: {shown:#?}"
    );
    assert!(shown[result + 1..].iter().any(|l| l.starts_with("output ")), "{shown:#?}");

    let (code, raw) = in_pty(&["run", sp, "--state", st, "--fresh"], &[("NO_COLOR", "1")]);
    assert_eq!(code, Some(0), "{raw}");
    assert!(raw.contains(" work "), "the display still shows: {raw:?}");
    assert!(!raw.contains('\x1b'), "NO_COLOR: no escape code at all: {raw:?}");

    let plain = batchfan(&["run", sp, "--state", st, "--fresh"], &[]);
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
    let err = stderr(&plain);
    assert!(err.lines().any(|l| l.trim_start().starts_with("work") && l.contains("3/3 succeeded")), "{err}");
    assert!(!err.contains('\r') && !err.contains('\x1b'), "plain lines off a terminal: {err:?}");
}

/// Item 6: a reader that leaves stderr early (`2>&1 | head -1`) does not make
/// a command panic (exit 101): diagnostics to a closed stderr are dropped.
#[test]
fn a_closed_stderr_keeps_the_commands_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let ok = range_spec(dir.path(), "closed", 2, "echo hi; echo oops >&2");
    let bad = write_spec(dir.path(), "bad", "name = \"bad\"\n[planner]\nstrategy = \"nope\"\n");
    let st = dir.path().join("state");
    let (ok, bad, st) = (ok.to_str().unwrap(), bad.to_str().unwrap(), st.to_str().unwrap());
    for (args, code) in [
        (vec!["validate", bad], 2),
        (vec!["run", ok, "--state", st, "--fresh"], 0),
        (vec!["status", "--state", st], 0),
        (vec!["logs", "nope", "work", "--state", st], 2),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let (out_reader, out_writer) = std::io::pipe().unwrap();
        drop(out_reader);
        let status = Command::new(bin()).args(&args).stdout(out_writer).stderr(writer).status().unwrap();
        assert_eq!(status.code(), Some(code), "{args:?} with stdout and stderr closed");
    }
}

/// Item 6: `completions bash|zsh|fish` are scripts those shells parse, for
/// the commands there are; `job` is hidden from `--help` (and still works).
#[test]
fn completions_parse_in_their_shells_and_help_hides_job() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, check) in [("bash", vec!["-n"]), ("zsh", vec!["-n"]), ("fish", vec!["--no-execute"])] {
        let out = batchfan(&["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains("logs") && script.contains("completions"), "{shell}: {script}");
        let file = dir.path().join(format!("batchfan.{shell}"));
        std::fs::write(&file, &script).unwrap();
        let parsed = Command::new(shell)
            .args(&check)
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("{shell} is installed (scripts/setup/36-shells.sh): {e}"));
        assert!(parsed.status.success(), "{shell} {check:?} refused the script: {}", stderr(&parsed));
    }
    let bad = batchfan(&["completions", "tcsh"], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("bash") && stderr(&bad).contains("zsh"), "{}", stderr(&bad));

    let help = stdout(&batchfan(&["--help"], &[]));
    assert!(help.contains("  logs ") && help.contains("  completions "), "{help}");
    assert!(!help.lines().any(|l| l.trim_start().starts_with("job ")), "job is hidden: {help}");
    assert_eq!(batchfan(&["job", "--help"], &[]).status.code(), Some(0), "hidden, not gone");
}

/// Item 6: `validate --output json`: one document, each spec with its errors (line, column) and warnings.
#[test]
fn validate_prints_json_with_errors_and_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let good = range_spec(dir.path(), "good", 2, "true");
    let bad = write_spec(dir.path(), "bad", "name = \"bad\"\n[planner]\nstrategy = \"nope\"\n");
    let out = batchfan(&["validate", good.to_str().unwrap(), bad.to_str().unwrap(), "--output", "json"], &[]);
    assert_eq!(out.status.code(), Some(2), "a bad spec still exits 2: {}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    assert_eq!(
        (v[0]["ok"].as_bool(), v[0]["pipeline"].as_str(), v[0]["stages"].as_u64()),
        (Some(true), Some("good"), Some(1))
    );
    assert!(v[0]["warnings"][0].as_str().is_some_and(|w| w.contains("Fargate")), "{v}");
    assert_eq!(v[1]["ok"], false);
    let errors = v[1]["errors"].as_array().unwrap();
    let nope = errors.iter().find(|e| e["message"].as_str().is_some_and(|m| m.contains("strategy \"nope\"")));
    let nope = nope.unwrap_or_else(|| panic!("the bad strategy is named: {v}"));
    assert_eq!((nope["line"].as_u64(), nope["col"].as_u64()), (Some(3), Some(12)), "{v}");
}

/// The run id of a manual run with `--request-id id`.
fn run_id_of(pipeline: &str, id: &str) -> String {
    batchfan::run::TriggerEvent {
        pipeline: pipeline.into(),
        source: batchfan::run::TriggerSource::Manual,
        idempotency_key: format!("request:{id}"),
        input: None,
        params: Default::default(),
    }
    .run_id()
}

/// Item 3 on the embedded backend: `logs --follow` started before the child
/// runs prints both attempts as they come and exits 0 when it succeeds;
/// `--attempt 1` and `--output json` read one attempt; and a failed run's
/// alert names the `batchfan logs` command that prints its log.
#[test]
fn logs_follow_a_retried_child_and_the_alert_names_the_logs_command() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let script = format!(
        "echo child $AWS_BATCH_JOB_ARRAY_INDEX attempt $AWS_BATCH_JOB_ATTEMPT; \
         if [ $AWS_BATCH_JOB_ARRAY_INDEX = 1 ] && [ $AWS_BATCH_JOB_ATTEMPT = 1 ]; then exit 75; fi; \
         while [ ! -e {} ]; do sleep 0.05; done; echo done",
        gate.display()
    );
    let spec = range_spec(dir.path(), "follow", 2, &script);
    let st = dir.path().join("state");
    let (sp, st) = (spec.to_str().unwrap(), st.to_str().unwrap());
    let mut run = Command::new(bin())
        .args(["run", sp, "--state", st, "--request-id", "f1", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run_id = run_id_of("follow", "f1");
    // The run record exists once the run is submitted; the child may not have started yet.
    let start = Instant::now();
    while !batchfan(&["status", &run_id, "--state", st], &[]).status.success() {
        assert!(start.elapsed() < DEADLINE, "run {run_id} never appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let follow = Command::new(bin())
        .args(["logs", &run_id, "work", "1", "--state", st, "--follow", "--poll", "0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until the gate opens the child cannot end, so neither can the follower.
    let mut follow = follow;
    assert!(follow.try_wait().unwrap().is_none(), "--follow ended before the child did");
    std::fs::write(&gate, "").unwrap();
    let followed = follow.wait_with_output().unwrap();
    assert_eq!(followed.status.code(), Some(0), "the child SUCCEEDED: {}", stderr(&followed));
    assert_eq!(stdout(&followed), "child 1 attempt 1\nchild 1 attempt 2\ndone\n");
    let err = stderr(&followed);
    assert!(err.contains(":1 attempt 1 (") && err.contains(":1 attempt 2 ("), "a header per attempt: {err}");
    assert!(run.wait().unwrap().success());

    let first = batchfan(&["logs", &run_id, "work", "1", "--state", st, "--attempt", "1"], &[]);
    assert_eq!(
        (first.status.code(), stdout(&first).as_str()),
        (Some(0), "child 1 attempt 1\n"),
        "{}",
        stderr(&first)
    );
    let last = batchfan(&["logs", &run_id, "work", "1", "--state", st, "--output", "json"], &[]);
    let lines: Vec<Value> = stdout(&last).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        (lines[0]["attempt"].as_u64(), lines[0]["line"].as_str()),
        (Some(2), Some("child 1 attempt 2"))
    );
    assert!(lines[1]["job_id"].as_str().is_some_and(|j| j.ends_with(":1")), "{lines:?}");
    let none = batchfan(&["logs", &run_id, "work", "1", "--state", st, "--attempt", "3"], &[]);
    assert_eq!(none.status.code(), Some(2));
    assert!(stderr(&none).contains("ended SUCCEEDED after 2 attempt(s), not 3"), "{}", stderr(&none));

    // A failed run: its alert names the command, and the command prints the log.
    let failing = range_spec(dir.path(), "broken", 2, "echo broken $AWS_BATCH_JOB_ARRAY_INDEX; exit 3");
    let failed =
        batchfan(&["run", failing.to_str().unwrap(), "--state", st, "--quiet", "--output", "json"], &[]);
    assert_eq!(failed.status.code(), Some(1));
    let alerts = batchfan(&["alerts", failing.to_str().unwrap(), "--state", st, "--output", "json"], &[]);
    let alerts: Value = serde_json::from_str(&stdout(&alerts)).unwrap();
    let command = alerts[0]["body"]["logs_command"].as_str().unwrap_or_else(|| panic!("{alerts}")).to_owned();
    let failed: Value = serde_json::from_str(&stdout(&failed)).unwrap();
    let index = failed["failure"]["index"].as_u64().unwrap();
    assert_eq!(command, format!("batchfan logs {} work {index}", failed["run_id"].as_str().unwrap()));
    let words: Vec<&str> = command.split(' ').skip(1).collect();
    let printed = batchfan(&[&words[..], &["--state", st]].concat(), &[]);
    assert_eq!(stdout(&printed), format!("broken {index}\n"), "{}", stderr(&printed));
}
