//! The Cancel and Retry buttons of a run's page in real headless Chromium
//! (issue 14): press Cancel on a running run and see it CANCELLED, remove the
//! cause, press Retry and see it SUCCEEDED — screenshots in
//! `target/test-artifacts/run-cancelled.png` and `run-retried.png` — and the
//! page showing the current attempt after the retry, with a link to attempt 1
//! (`run-attempt-1.png`) — and the JSON API's refusals (no token, another site, a run that cannot be retried).
//!
//! Needs `scripts/setup/30-chromium.sh` (run by `scripts/test.sh`): a missing
//! Chromium or Playwright fails this test, it never skips.

use crate::serve_support;

use std::{path::Path, process::Command, time::Instant};

use serde_json::Value;
use serve_support::{sh_stage, write_spec, Serve, DEADLINE};

fn artifact(name: &str) -> std::path::PathBuf {
    let artifacts =
        Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join(name);
    let _ = std::fs::remove_file(&shot);
    shot
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_then_retry_from_the_run_page() {
    let (cancelled, retried) = (artifact("run-cancelled.png"), artifact("run-retried.png"));
    let attempt_one = artifact("run-attempt-1.png");
    let dir = tempfile::tempdir().unwrap();
    let slow = dir.path().join("slow");
    std::fs::write(&slow, "").unwrap();
    let spec = write_spec(
        dir.path(),
        "btn",
        &format!(
            "name = \"btn\"\n[planner]\nstrategy = \"range\"\ncount = 3\n[local]\npass_env = [\"SLOW\"]\n\
             [[stages]]\nname = \"work\"\ncommand = {}\nvcpus = 1\nmemory = 64\n",
            sh_stage("if [ -e \"$SLOW\" ]; then sleep 120; fi")
        ),
    );
    let serve = Serve::start(&dir.path().join("state"), &[&spec], &[], &[("SLOW", slow.to_str().unwrap())]);
    let client = serve.client().clone();
    let run: Value = client
        .post(format!("{}/api/pipelines/btn/runs", serve.url))
        .bearer_auth(&serve.token)
        .json(&serde_json::json!({ "request_id": "b1" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = run["run_id"].as_str().expect("run id").to_owned();
    serve_support::wait_for("the run to be submitted", || async {
        (serve.get(&format!("/api/runs/{run_id}")).await["state"] == "SUBMITTED").then_some(())
    })
    .await;

    // The API refuses without the token, from another site, and a retry of a running run.
    let api = |what: &str| format!("{}/api/runs/{run_id}/{what}", serve.url);
    let r = client.post(api("cancel")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .post(api("cancel"))
        .bearer_auth(&serve.token)
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client.post(api("retry")).bearer_auth(&serve.token).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let why: Value = r.json().await.unwrap();
    assert!(why["error"].as_str().unwrap().contains("SUBMITTED"), "{why}");
    assert_eq!(serve.get(&format!("/api/runs/{run_id}")).await["state"], "SUBMITTED", "nothing changed");

    let flag = dir.path().join("flag");
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core/package.json").exists(),
        "run scripts/setup/30-chromium.sh"
    );
    let chromium = std::env::var("BATCHFAN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut node = Command::new("node")
        .arg(browser_dir.join("run-actions.mjs"))
        .args([&serve.url, serve.login_url.as_deref().expect("login URL"), &run_id])
        .args([&cancelled, &retried, &flag, &attempt_one])
        .env("BATCHFAN_CHROMIUM", &chromium)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    // The browser saw CANCELLED: take the cause away, let it press Retry.
    let start = Instant::now();
    while !flag.exists() {
        if let Ok(Some(status)) = node.try_wait() {
            panic!(
                "browser script ended early ({status}): {:?}\n{}",
                node.wait_with_output().unwrap(),
                serve.log_text()
            );
        }
        assert!(
            start.elapsed() < DEADLINE * 2,
            "the browser never saw the run CANCELLED\n{}",
            serve.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    std::fs::remove_file(&slow).unwrap();
    std::fs::remove_file(&flag).unwrap();
    let out = node.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "browser script failed:\n{}\n{}\nserve log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        serve.log_text()
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!((r["before"].as_str(), r["retryBefore"].as_u64()), (Some("SUBMITTED"), Some(0)), "{r}");
    assert_eq!(r["sameDocument"], true, "the page followed the cancel without a reload: {r}");
    assert_eq!(r["cancelButtonsAfter"], 0, "{r}");
    assert_eq!(r["violations"], serde_json::json!([]), "{r}");
    assert_eq!(r["towardSucceeded"].as_array().unwrap().last().unwrap(), "SUCCEEDED");
    assert_eq!(r["buttonsAtEnd"], 0, "no button on a SUCCEEDED run: {r}");
    // After the retry the page shows the current attempt, and attempt 1 on request.
    let attempts = r["attemptsText"].as_str().unwrap_or_default();
    assert!(attempts.starts_with("Attempt 1 2 (current) of 2"), "{r}");
    assert!(attempts.contains("attempt 2 reran 3 child(ren)"), "{r}");
    assert_eq!(r["currentCounts"], "3 child(ren): 3 succeeded", "the current attempt's children: {r}");
    assert_eq!(r["firstCounts"], "3 child(ren): 3 failed", "attempt 1 as it ran (cancelled): {r}");
    assert_eq!(r["firstShown"], "1");
    assert_eq!(r["firstCountsLater"], r["firstCounts"], "the refresh keeps the attempt shown: {r}");
    let run = serve.get(&format!("/api/runs/{run_id}")).await;
    assert_eq!(run["state"], "SUCCEEDED");
    let alerts = serve.get("/api/alerts").await;
    let alerts = alerts.as_array().cloned().unwrap_or_default();
    assert_eq!(alerts.len(), 1, "one cancelled notice, no failure alert: {alerts:?}");
    for shot in [&cancelled, &retried, &attempt_one] {
        let png = std::fs::read(shot).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{}", shot.display());
    }
    assert!(serve.stop().success());
}
