//! `batchfan trigger` (through a service and without one), the status page's
//! form protection and run view, and a graceful shutdown that a restart resumes;
//! the login, headers, allowed inputs and file modes in [`security`];
//! `--batch-api` in [`batch_api`].

#[path = "serve_cli/batch_api.rs"]
mod batch_api;
#[path = "serve_cli/security.rs"]
mod security;
use crate::serve_support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use serve_support::{batchfan, sh_stage, wait_for, write_spec, Serve};

fn spec(dir: &Path, name: &str, count: u32, script: &str, extra: &str) -> PathBuf {
    let text = format!(
        "name = \"{name}\"\n{extra}\n[planner]\nstrategy = \"range\"\ncount = {count}\n\
         [[stages]]\nname = \"work\"\ncommand = {}\nvcpus = 1\nmemory = 64\n",
        sh_stage(script)
    );
    write_spec(dir, name, &text)
}

fn json_out(out: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}): {text}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_goes_through_the_service_and_runs_directly_when_none_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let manual = spec(dir.path(), "manual", 3, "test -n \"$BATCHFAN_PARAM_DAY\"", "[params]\nday = \"\"");
    let state = dir.path().join("state");
    let st = state.to_str().unwrap();
    let serve = Serve::start(&state, &[&manual], &[], &[]);

    let out = batchfan(
        &["trigger", "manual", "--state", st, "--param", "day=2026-11-23", "--wait", "--output", "json"],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let done = json_out(&out);
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    assert_eq!(done["source"], "manual");
    assert_eq!(done["params"]["day"], "2026-11-23");
    assert!(String::from_utf8_lossy(&out.stderr).contains("started by batchfan serve"));

    let first = json_out(&batchfan(
        &["trigger", "manual", "--state", st, "--request-id", "nightly-1", "--output", "json"],
        &[],
    ));
    let again = json_out(&batchfan(
        &["trigger", "manual", "--state", st, "--request-id", "nightly-1", "--output", "json"],
        &[],
    ));
    assert_eq!(first["run_id"], again["run_id"], "the same request id is the same run");
    let other = json_out(&batchfan(&["trigger", "manual", "--state", st, "--output", "json"], &[]));
    assert_ne!(other["run_id"], first["run_id"], "without a request id, each trigger is a new run");

    let bad = batchfan(&["trigger", "manual", "--state", st, "--param", "nope=1"], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("unknown parameter \"nope\""),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let unknown = batchfan(&["trigger", "nosuch", "--state", st], &[]);
    assert_eq!(unknown.status.code(), Some(2), "{}", String::from_utf8_lossy(&unknown.stderr));
    assert_eq!(serve.runs("manual").await.len(), 3, "refused triggers made no run");
    for r in serve.runs("manual").await {
        serve.wait_run(r["run_id"].as_str().unwrap()).await;
    }
    assert!(serve.stop().success());
    assert!(!state.join("serve.json").exists(), "serve.json is removed on shutdown");

    // No service: the pipeline's name is known from the earlier serve; it runs here.
    let direct = batchfan(&["trigger", "manual", "--state", st, "--param", "day=x", "--output", "json"], &[]);
    assert!(direct.status.success(), "{}", String::from_utf8_lossy(&direct.stderr));
    assert_eq!(json_out(&direct)["state"], "SUCCEEDED");

    // A serve.json left by a killed service: nobody answers, so it runs here too.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let stale = serde_json::json!({"pid": 1, "address": format!("127.0.0.1:{port}"), "url": format!("http://127.0.0.1:{port}"), "token": "x", "pipelines": ["manual"]});
    std::fs::write(state.join("serve.json"), stale.to_string()).unwrap();
    let by_file = batchfan(
        &["trigger", manual.to_str().unwrap(), "--state", st, "--param", "day=y", "--output", "json"],
        &[],
    );
    assert!(by_file.status.success(), "{}", String::from_utf8_lossy(&by_file.stderr));
    assert!(String::from_utf8_lossy(&by_file.stderr).contains("no batchfan serve answers"));
    assert_eq!(json_out(&by_file)["state"], "SUCCEEDED");

    let fresh = dir.path().join("fresh");
    let never = batchfan(&["trigger", "manual", "--state", fresh.to_str().unwrap()], &[]);
    assert_eq!(never.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&never.stderr).contains("pass its spec file"),
        "{}",
        String::from_utf8_lossy(&never.stderr)
    );
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=csrf value=\"").expect("a csrf field") + "name=csrf value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_button_refuses_cross_site_posts_and_the_run_page_shows_failed_children() {
    let dir = tempfile::tempdir().unwrap();
    let ok = spec(dir.path(), "ok", 2, "true", "");
    let broken = spec(
        dir.path(),
        "broken",
        3,
        "if grep -q '\"index\":1' \"$BATCHFAN_ITEM_FILE\"; then echo 'bad row in item 1' >&2; exit 3; fi",
        "",
    );
    let state = dir.path().join("state");
    let serve = Serve::start(&state, &[&ok, &broken], &[], &[]);
    let client =
        reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = serve.login().await;
    let (_, home) = serve.page(&cookie, "/").await;
    assert!(home.contains("data-pipeline=\"ok\""), "{home}");
    let csrf = csrf_of(&home);
    let host = serve.url.trim_start_matches("http://").to_owned();
    let post =
        |form: Vec<(&'static str, String)>, headers: Vec<(&'static str, String)>, pipeline: &'static str| {
            let mut req = client
                .post(format!("{}/pipelines/{pipeline}/run", serve.url))
                .header("Cookie", cookie.clone())
                .form(&form);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            req.send()
        };
    let form = |token: &str, id: &str| vec![("csrf", token.to_owned()), ("request_id", id.to_owned())];

    let refused = [
        ("wrong token", post(form("forged", "a"), vec![], "ok").await.unwrap()),
        (
            "other origin",
            post(form(&csrf, "b"), vec![("Origin", "http://evil.example".into())], "ok").await.unwrap(),
        ),
        (
            "cross-site fetch",
            post(form(&csrf, "c"), vec![("Sec-Fetch-Site", "cross-site".into())], "ok").await.unwrap(),
        ),
        ("rebound host", post(form(&csrf, "d"), vec![("Host", "evil.example".into())], "ok").await.unwrap()),
    ];
    for (what, r) in refused {
        assert!(matches!(r.status().as_u16(), 403 | 421), "{what}: {}", r.status());
    }
    assert!(serve.runs("ok").await.is_empty(), "a refused post made a run");

    let same_origin = vec![("Origin", serve.url.clone()), ("Sec-Fetch-Site", "same-origin".into())];
    let r = post(form(&csrf, "press-1"), same_origin.clone(), "ok").await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let twice = post(form(&csrf, "press-1"), same_origin.clone(), "ok").await.unwrap();
    assert_eq!(twice.headers()["location"].to_str().unwrap(), location, "a double click is one run");
    let run_id = location.trim_start_matches("/runs/").to_owned();
    assert_eq!(serve.wait_run(&run_id).await["state"], "SUCCEEDED");
    let page = client
        .get(format!("{}{location}", serve.url))
        .header("Host", host)
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"run-state\">SUCCEEDED"), "{page}");
    assert_eq!(page.matches("class=\"s-SUCCEEDED\"").count(), 4, "2 children, aggregation, cleanup");

    let r = post(form(&csrf, "press-2"), same_origin, "broken").await.unwrap();
    let broken_id = r.headers()["location"].to_str().unwrap().trim_start_matches("/runs/").to_owned();
    let view = serve.wait_run(&broken_id).await;
    assert_eq!(view["state"], "FAILED");
    let failed = &view["failed_children"][0];
    assert_eq!(
        (failed["stage"].as_str(), failed["index"].as_u64(), failed["exit_code"].as_i64()),
        (Some("work"), Some(1), Some(3))
    );
    assert!(failed["log_tail"].as_str().unwrap().contains("bad row in item 1"), "{failed}");
    let cells = &view["stages"][0]["children"];
    assert_eq!(cells, &serde_json::json!(["SUCCEEDED", "FAILED", "SUCCEEDED"]));
    let (_, page) = serve.page(&cookie, &format!("/runs/{broken_id}")).await;
    assert!(page.contains("Failed children (1)") && page.contains("bad row in item 1"), "{page}");
    let alerts = serve.get("/api/alerts").await;
    assert_eq!(alerts.as_array().unwrap().len(), 1, "one alert for the failed run: {alerts}");
    assert_eq!(alerts[0]["run_id"].as_str(), Some(broken_id.as_str()));
    let (_, home) = serve.page(&cookie, "/").await;
    assert!(home.contains(&format!("href=\"/runs/{broken_id}\"")) && home.contains("<h2>Alerts</h2>"));
    assert!(serve.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_hands_running_children_over_and_a_restart_finishes_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let slow = spec(dir.path(), "slow", 4, "sleep 1", "");
    let state = dir.path().join("state");
    let mut serve = Serve::start(&state, &[&slow], &["--drain-timeout", "0"], &[]);
    let r = serve
        .client()
        .post(format!("{}/api/pipelines/slow/runs", serve.url))
        .bearer_auth(&serve.token)
        .json(&serde_json::json!({"request_id": "long-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let run_id = r.json::<Value>().await.unwrap()["run_id"].as_str().unwrap().to_owned();
    let unauthorized = serve
        .client()
        .post(format!("{}/api/pipelines/slow/runs", serve.url))
        .json(&serde_json::json!({"request_id": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);
    wait_for("a child running", || async {
        let v = serve.get(&format!("/api/runs/{run_id}")).await;
        v["stages"][0]["children"].as_array().unwrap().iter().any(|c| c == "RUNNING").then_some(())
    })
    .await;
    assert!(serve.stop_with(libc::SIGTERM).success(), "{}", serve.log_text());
    assert!(!state.join("serve.json").exists());
    let status = batchfan(&["status", &run_id, "--state", state.to_str().unwrap(), "--output", "json"], &[]);
    let rec = json_out(&status);
    assert_eq!(rec["state"], "SUBMITTED", "the run is in flight, handed to the next start");

    // Restarted with time to drain: the run finishes, and SIGINT waits for running children.
    let mut serve = Serve::start(&state, &[&slow], &[], &[]);
    let done = serve.wait_run(&run_id).await;
    assert_eq!(done["state"], "SUCCEEDED", "{}", serve.log_text());
    assert!(done["stages"][0]["children"].as_array().unwrap().iter().all(|c| c == "SUCCEEDED"));
    assert!(serve.stop_with(libc::SIGINT).success());
}
