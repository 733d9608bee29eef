//! The status page in real headless Chromium (Debian's, driven by Playwright
//! from `tests/browser/`): refused without the login, log in through the URL
//! serve printed, press Run, watch the run's page fill its grid live until
//! SUCCEEDED, see that a framed status page is not displayed (issue 10,
//! finding 5), and keep a screenshot in
//! `target/test-artifacts/status-page.png` (and the home page in
//! `status-page-home.png`). And the Jobs view of `--batch-api` (issue 11,
//! item 5): jobs submitted with aws-sdk-batch, their states and array
//! progress, a failed child's exit code and log tail
//! (`target/test-artifacts/jobs-view.png`, `jobs-view-list.png`).
//!
//! Needs `scripts/setup/30-chromium.sh` (run by `scripts/test.sh`): a missing
//! Chromium or Playwright fails this test, it never skips.

use crate::serve_support;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use serve_support::{batch, sh_stage, write_spec, Serve};

/// Runs `node tests/browser/SCRIPT ARGS` in headless Chromium and returns the
/// JSON it prints; fails (never skips) when Chromium or Playwright is missing.
fn browse(script: &str, args: &[&str], serve: &Serve) -> Value {
    browse_with(script, args, || serve.log_text())
}

/// [`browse`], with `server_log` telling what the server logged when the script fails.
pub(crate) fn browse_with(script: &str, args: &[&str], server_log: impl FnOnce() -> String) -> Value {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core/package.json").exists(),
        "tests/browser has no node_modules: run `source scripts/setup/30-chromium.sh` (scripts/test.sh does)"
    );
    let chromium = std::env::var("BATCHFAN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run `source scripts/setup/30-chromium.sh`"
    );
    let out = Command::new("node")
        .arg(browser_dir.join(script))
        .args(args)
        .env("BATCHFAN_CHROMIUM", &chromium)
        .output()
        .expect("node runs (install Node.js 20+)");
    assert!(
        out.status.success(),
        "browser script {script} failed:\n{}\n{}\nserve log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server_log()
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// `target/test-artifacts/NAME`, with any old file removed.
pub(crate) fn artifact(name: &str) -> PathBuf {
    let artifacts =
        Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join(name);
    let _ = std::fs::remove_file(&shot);
    shot
}

pub(crate) fn assert_png(path: &Path) {
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("screenshot {}: {e}", path.display()));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{} bytes", png.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pressing_run_shows_the_run_succeeding_with_its_grid_filled_in() {
    let shot = artifact("status-page.png");

    let dir = tempfile::tempdir().unwrap();
    // 12 children of 0.4 s, two at a time: long enough to watch the grid fill.
    let spec = write_spec(
        dir.path(),
        "grid",
        &format!(
            "name = \"grid\"\ndescription = \"twelve children, then a sum\"\n[planner]\nstrategy = \"range\"\ncount = 12\n\
             [[stages]]\nname = \"square\"\ncommand = {}\nvcpus = 1\nmemory = 64\n\
             [[stages]]\nname = \"check\"\ncommand = {}\nvcpus = 1\nmemory = 64\n",
            sh_stage("sleep 0.4"),
            sh_stage("true")
        ),
    );
    let state = dir.path().join("state");
    let serve = Serve::start(&state, &[&spec], &[], &[]);
    let login = serve.login_url.clone().expect("a login URL");
    let report = browse("status-page.mjs", &[&serve.url, &login, "grid", shot.to_str().unwrap()], &serve);
    assert_eq!(
        (report["deniedStatus"].as_u64(), report["deniedRunButtons"].as_u64()),
        (Some(401), Some(0)),
        "without the login: {report}"
    );
    assert_eq!(report["landed"], format!("{}/", serve.url), "the login URL lands on / without the token");
    assert_eq!(
        report["cookie"],
        serde_json::json!({"httpOnly": true, "sameSite": "Strict", "path": "/"}),
        "{report}"
    );
    let run_id = report["runId"].as_str().expect("run id");
    assert_ne!(
        report["firstState"], "SUCCEEDED",
        "the run page was first seen before the run ended: {report}"
    );
    assert_eq!(report["sameDocument"], true, "the page updated itself, without a reload: {report}");
    let grids = report["grids"].as_array().expect("grids");
    let cells: Vec<(String, u64, u64)> = grids
        .iter()
        .map(|g| {
            (
                g["stage"].as_str().unwrap().to_owned(),
                g["cells"].as_u64().unwrap(),
                g["succeeded"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cells,
        [
            ("square".into(), 12, 12),
            ("check".into(), 12, 12),
            ("aggregation".into(), 1, 1),
            ("cleanup".into(), 1, 1)
        ]
    );
    assert!(
        grids.iter().all(|g| g["colour"] == "rgb(31, 157, 85)"),
        "cells are drawn in the succeeded colour: {report}"
    );

    assert_eq!(report["listed"], "SUCCEEDED", "the home page lists the run: {report}");
    assert_eq!(report["framedRunButtons"], 0, "a framed status page is not displayed: {report}");
    assert!(
        report["frameRefusal"]
            .as_str()
            .is_some_and(|m| m.contains("frame-ancestors") || m.contains("X-Frame-Options")),
        "the browser says why it refused the frame: {report}"
    );
    assert_eq!(serve.runs("grid").await.len(), 1, "only the Run button's run");
    let run = serve.get(&format!("/api/runs/{run_id}")).await;
    assert_eq!((run["state"].as_str(), run["source"].as_str()), (Some("SUCCEEDED"), Some("manual")));
    assert_png(&shot);
    assert!(serve.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_view_shows_api_jobs_their_array_progress_and_a_failed_childs_log() {
    let shot = artifact("jobs-view.png");
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "idle",
        &format!(
            "name = \"idle\"\n[planner]\nstrategy = \"range\"\ncount = 1\n\
             [[stages]]\nname = \"noop\"\ncommand = {}\nvcpus = 1\nmemory = 64\n",
            sh_stage("true")
        ),
    );
    let serve = Serve::start(&dir.path().join("state"), &[&spec], &["--batch-api", "127.0.0.1:0"], &[]);
    let client = serve.batch_client();
    batch::setup(&client).await;
    let fan = "echo child $AWS_BATCH_JOB_ARRAY_INDEX of $AWS_BATCH_JOB_ARRAY_SIZE; \
               if [ \"$AWS_BATCH_JOB_ARRAY_INDEX\" = 3 ]; then echo disk full >&2; exit 42; fi";
    batch::register_sh(&client, "fan", fan, 1).await;
    batch::register_sh(&client, "plain", "echo plain", 1).await;
    // One after the other, so that the list's order (newest first) is known.
    let array = batch::submit(&client, "fan-out", "fan", Some(5)).await;
    batch::wait_done(&client, &array).await;
    let plain = batch::submit(&client, "plain-one", "plain", None).await;
    batch::wait_done(&client, &plain).await;
    // A job the browser releases (it creates the file) while it watches the list.
    let release = dir.path().join("release");
    let gate = format!("while [ ! -f {0} ]; do sleep 0.1; done; echo released", release.display());
    batch::register_sh(&client, "gate", &gate, 1).await;
    let running = batch::submit(&client, "gate", "gate", None).await;
    serve_support::wait_for("the gate job to run", || async {
        (batch::describe(&client, &running).await.status() == Some(&aws_sdk_batch::types::JobStatus::Running))
            .then_some(())
    })
    .await;

    let login = serve.login_url.clone().expect("a login URL");
    let args: [&str; 7] =
        [&serve.url, &login, &array, "3", &running, release.to_str().unwrap(), shot.to_str().unwrap()];
    let r = browse("jobs-view.mjs", &args, &serve);
    assert_eq!((r["deniedStatus"].as_u64(), r["deniedRows"].as_u64()), (Some(401), Some(0)), "{r}");
    let listed: Vec<(String, String, Value)> = r["listed"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            (
                row["id"].as_str().unwrap().into(),
                row["status"].as_str().unwrap().into(),
                row["progress"].clone(),
            )
        })
        .collect();
    let expected: Vec<(String, String, Value)> = vec![
        (running.clone(), "RUNNING".into(), Value::Null),
        (plain.clone(), "SUCCEEDED".into(), Value::Null),
        (array.clone(), "FAILED".into(), "5/5 done: 4 succeeded, 1 failed".into()),
    ];
    assert_eq!(listed, expected, "newest first, with the array's progress: {r}");
    assert_eq!(r["liveUpdate"], true, "the released job's row turned SUCCEEDED without a reload: {r}");
    let bar = &r["listed"][2]["bar"];
    assert_eq!(bar.as_array().map(Vec::len), Some(5), "one cell per child: {r}");
    assert_eq!(bar[4], "s-FAILED", "{r}");
    assert_eq!(r["failedColour"], "rgb(214, 69, 69)", "{r}");
    let filtered: Vec<&str> =
        r["filtered"].as_array().unwrap().iter().filter_map(|f| f["id"].as_str()).collect();
    assert_eq!(filtered, [array.as_str()], "the FAILED filter keeps the array job only: {r}");
    assert_eq!(r["parentStatus"], "FAILED");
    let children: Vec<&str> =
        r["children"].as_array().unwrap().iter().filter_map(|c| c["status"].as_str()).collect();
    assert_eq!(children, ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "FAILED", "SUCCEEDED"], "{r}");
    let child = &r["childPage"];
    assert_eq!(
        (child["status"].as_str(), child["exitCodes"].clone()),
        (Some("FAILED"), serde_json::json!(["42"])),
        "{r}"
    );
    let log = child["log"].as_str().expect("a log tail");
    assert!(
        log.contains("child 3 of 5") && log.contains("disk full"),
        "stdout and stderr in the tail: {log}"
    );
    assert_eq!(child["parent"].as_str(), Some(format!("/jobs/{array}").as_str()));
    assert_eq!(r["cspErrors"], serde_json::json!([]), "nothing the CSP blocks: {r}");
    assert_png(&shot);
    assert!(serve.stop().success());
}

/// Starts a manual run of `pipeline` through the JSON API; returns its id.
async fn trigger(serve: &Serve, pipeline: &str, request_id: &str, params: Value) -> String {
    let r = serve
        .client()
        .post(format!("{}/api/pipelines/{pipeline}/runs", serve.url))
        .bearer_auth(&serve.token)
        .json(&serde_json::json!({ "request_id": request_id, "params": params }))
        .send()
        .await
        .expect("POST a run");
    assert_eq!(r.status().as_u16(), 202, "trigger {request_id}");
    r.json::<Value>().await.expect("JSON")["run_id"].as_str().expect("run id").to_owned()
}

/// Issue 14 item 5: the history grid, a run's timings and timeline, failed
/// children past the first five on paged pages, a child's page (attempts,
/// log tail, whole log), a grid cell's link, the refresh paused in a hidden
/// tab and backing off with a visible error. Screenshots in
/// `target/test-artifacts/`: history.png, run-timeline.png, run-failed.png,
/// run-failed-children.png, child.png, home-refresh-error.png.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_pages_show_history_timings_timeline_failed_children_and_a_childs_log() {
    let shots = artifact("history.png").parent().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    // 14 children; with fail=yes, children 1..=12 print 80 lines and exit 3 (512 MiB: under
    // load, 64 MiB was seen to kill a child of `batchfan job exec` with 137).
    let work = "i=$AWS_BATCH_JOB_ARRAY_INDEX; \
                if [ \"$BATCHFAN_PARAM_FAIL\" = yes ] && [ $i -ge 1 ] && [ $i -le 12 ]; then \
                for n in $(seq 1 80); do echo \"log line $n of child $i\"; done; exit 3; fi; sleep 0.1";
    let spec = write_spec(
        dir.path(),
        "pages",
        &format!(
            "name = \"pages\"\n[params]\nfail = \"no\"\n[planner]\nstrategy = \"range\"\ncount = 14\n\
             [[stages]]\nname = \"work\"\ncommand = {}\nvcpus = 1\nmemory = 512\n\
             [[stages]]\nname = \"check\"\ncommand = {}\nvcpus = 1\nmemory = 512\n",
            sh_stage(work),
            sh_stage("true")
        ),
    );
    let serve = Serve::start(&dir.path().join("state"), &[&spec], &[], &[]);
    let ok = trigger(&serve, "pages", "ok-1", serde_json::json!({})).await;
    assert_eq!(serve.wait_run(&ok).await["state"], "SUCCEEDED");
    let failed = trigger(&serve, "pages", "failed-1", serde_json::json!({"fail": "yes"})).await;
    assert_eq!(serve.wait_run(&failed).await["state"], "FAILED");
    let login = serve.login_url.clone().expect("a login URL");
    let r = browse("run-pages.mjs", &[&serve.url, &login, &ok, &failed, shots.to_str().unwrap()], &serve);

    // History: runs oldest first, a row per stage, aggregation and cleanup.
    assert_eq!(r["history"]["runs"], serde_json::json!([ok, failed]), "{r}");
    let rows: Vec<(String, Vec<String>)> = r["history"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let cells = row["cells"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned());
            (row["stage"].as_str().unwrap().to_owned(), cells.collect())
        })
        .collect();
    let row = |stage: &str, a: &str, b: &str| (stage.to_owned(), vec![a.to_owned(), b.to_owned()]);
    assert_eq!(
        rows,
        [
            row("work", "SUCCEEDED", "FAILED"),
            row("check", "SUCCEEDED", "FAILED"),
            row("aggregation", "SUCCEEDED", "FAILED"),
            row("cleanup", "SUCCEEDED", "SUCCEEDED")
        ],
        "the failed run's planned cleanup fails by cascade; its cleanup after the failure succeeded: {r}"
    );

    // The succeeded run: timings per stage, a bar per child that ran, the slot for Cancel/Retry.
    assert_eq!((r["ok"]["state"].as_str(), r["ok"]["actionsSlot"].as_u64()), (Some("SUCCEEDED"), Some(1)));
    let timed: Vec<&str> =
        r["ok"]["timings"].as_array().unwrap().iter().map(|t| t["stage"].as_str().unwrap()).collect();
    assert_eq!(timed, ["work", "check", "aggregation", "cleanup"], "{r}");
    assert!(r["ok"]["timings"].as_array().unwrap().iter().all(|t| t["duration"] != "-"), "{r}");
    assert_eq!(r["ok"]["timings"][0]["slowestLinks"], 5, "the five slowest children, linked: {r}");
    let bars = r["ok"]["bars"].as_array().unwrap();
    assert_eq!(bars.len(), 14 + 14 + 2, "{r}");
    assert!(bars.iter().all(|b| b == "t-SUCCEEDED"), "{r}");
    assert!(r["ok"]["barWidths"].as_array().unwrap().iter().all(|w| w.as_f64().unwrap() > 0.0), "{r}");

    // The failed run: 12 failed children, 5 on its page, all 12 on two pages.
    assert_eq!(r["failed"]["state"], "FAILED");
    assert_eq!(
        (r["failed"]["shown"].as_u64(), r["failed"]["heading"].as_str()),
        (Some(5), Some("Failed children (12)"))
    );
    let pages = r["pages"].as_array().unwrap();
    let labels: Vec<&str> = pages.iter().map(|p| p["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["page 1 of 2 (12 failed)", "page 2 of 2 (12 failed)"], "{r}");
    let listed: Vec<String> = pages
        .iter()
        .flat_map(|p| p["children"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()))
        .collect();
    let expected: Vec<String> = (1..=12).map(|i| format!("work[{i}]")).collect();
    assert_eq!(listed, expected, "every failed child once, in order: {r}");
    assert_eq!(pages[0]["tails"].as_u64().unwrap() + pages[1]["tails"].as_u64().unwrap(), 12, "{r}");

    // The child's page, reached by clicking its cell.
    let child = &r["child"];
    assert_eq!(child["url"], format!("/runs/{failed}/children/work/1"));
    assert_eq!(child["state"], "FAILED");
    assert_eq!(child["attempts"], serde_json::json!(["attempt 1: exit 3"]), "{r}");
    assert_eq!(
        (child["tailHasLast"].as_bool(), child["tailHasFirst"].as_bool()),
        (Some(true), Some(false)),
        "a 50-line tail: {r}"
    );
    let full = &r["fullLog"];
    assert_eq!((full["first"].as_bool(), full["last"].as_bool()), (Some(true), Some(true)), "{r}");
    assert!(full["lines"].as_u64().unwrap() >= 80, "the whole log: {r}");

    // The refresh: paused while hidden, backing off with the error shown, then back.
    assert_eq!(r["pausedText"], "updates paused while this tab is hidden");
    assert_eq!(r["fetchedWhileHidden"], 0, "{r}");
    let errors: Vec<&str> = r["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert_eq!(
        errors,
        [
            "cannot refresh (HTTP 503: cannot read the run records); retrying in 4 s",
            "cannot refresh (HTTP 503: cannot read the run records); retrying in 8 s"
        ]
    );
    assert_eq!((r["statusClass"].as_str(), r["runsStillShown"].as_u64()), (Some("error"), Some(1)), "{r}");
    assert_eq!(r["recovered"], "");
    assert_eq!(r["cspViolations"], serde_json::json!([]), "{r}");
    for name in
        ["history", "run-timeline", "run-failed", "run-failed-children", "child", "home-refresh-error"]
    {
        assert_png(&shots.join(format!("{name}.png")));
    }
    assert!(serve.stop().success());
}
