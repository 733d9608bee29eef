//! The status page in real headless Chromium (Debian's, driven by Playwright
//! from `tests/browser/`): refused without the login, log in through the URL
//! serve printed, press Run, watch the run's page fill its grid live until
//! SUCCEEDED, see that a framed status page is not displayed (issue 10,
//! finding 5), and keep a screenshot in
//! `target/test-artifacts/status-page.png` (and the home page in
//! `status-page-home.png`).
//!
//! Needs `scripts/setup/30-chromium.sh` (run by `scripts/test.sh`): a missing
//! Chromium or Playwright fails this test, it never skips.

mod serve_support;

use std::{path::Path, process::Command};

use serde_json::Value;
use serve_support::{sh_stage, write_spec, Serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pressing_run_shows_the_run_succeeding_with_its_grid_filled_in() {
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
    let artifacts =
        Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("status-page.png");
    let _ = std::fs::remove_file(&shot);

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
    let out = Command::new("node")
        .arg(browser_dir.join("status-page.mjs"))
        .args([serve.url.as_str(), serve.login_url.as_deref().expect("a login URL"), "grid"])
        .arg(&shot)
        .env("BATCHFAN_CHROMIUM", &chromium)
        .output()
        .expect("node runs (install Node.js 20+)");
    assert!(
        out.status.success(),
        "browser script failed:\n{}\n{}\nserve log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        serve.log_text()
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
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
    let png = std::fs::read(&shot).expect("screenshot saved");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{} bytes", png.len());
    assert!(serve.stop().success());
}
