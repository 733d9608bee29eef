//! `batchfan serve --backend aws` (issue 14 item 5): the status pages of a
//! pipeline deployed on AWS — no Run button, but Cancel and Retry — run records in DynamoDB (moto), jobs
//! in `batchfan batch-api` (AWS Batch's API, which runs them and ships their
//! logs to moto's CloudWatch Logs), runs made by `batchfan run --backend aws`.
//! The pages in headless Chromium (screenshots `target/test-artifacts/deployed-*.png`),
//! the JSON API, the Retry button rerunning the failed child, the refused
//! actions and options, and a table that cannot be
//! read shown as an error, never as "No runs yet".
//!
//! Needs moto (`scripts/setup/20-moto.sh`) and `scripts/setup/30-chromium.sh`:
//! a missing one fails these tests, they never skip.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Output},
    sync::mpsc,
    time::Duration,
};

use serde_json::{json, Value};

use crate::{
    batch_api_support::{register_sh, Server, QUEUE},
    cli_aws::{deploy_stores, finish, json_of, Deployed},
    moto::Moto,
    serve_browser::{artifact, assert_png, browse_with},
};

/// Longest serve may take to print its address.
const START: Duration = Duration::from_secs(90);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `batchfan serve --backend aws`, killed on drop.
struct DeployedServe {
    child: Child,
    url: String,
    login_url: String,
    token: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl DeployedServe {
    /// `batchfan serve SPEC --listen 127.0.0.1:0 ARGS` with the SDK on moto (Batch on `batch`, if given).
    fn start(
        d: &Deployed,
        batch: Option<&Server>,
        spec: &Path,
        args: &[String],
        log: PathBuf,
    ) -> DeployedServe {
        let mut all =
            vec!["serve".to_owned(), spec.display().to_string(), "--listen".into(), "127.0.0.1:0".into()];
        all.extend_from_slice(args);
        let mut cmd = d.command(&all);
        if let Some(b) = batch {
            cmd.env("AWS_ENDPOINT_URL_BATCH", &b.endpoint);
        }
        cmd.stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().expect("batchfan serve starts");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = || {
            rx.recv_timeout(START).unwrap_or_else(|_| {
                panic!(
                    "serve --backend aws did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
        };
        let first = line();
        assert!(first.contains("(AWS, table "), "{first}");
        let url =
            first.strip_prefix("listening on ").and_then(|r| r.split_whitespace().next()).unwrap().to_owned();
        let login_url = line().strip_prefix("log in: ").expect("a login URL").to_owned();
        let token = login_url.split_once("?token=").expect("the token in the URL").1.to_owned();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        DeployedServe { child, url, login_url, token, log, http }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET with the bearer token: (status, JSON).
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.url)).bearer_auth(&self.token).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// The median time of 5 GETs of `path` in ms (a figure printed, never asserted).
    async fn median_ms(&self, path: &str) -> f64 {
        let mut times = Vec::new();
        for _ in 0..5 {
            let start = std::time::Instant::now();
            assert_eq!(self.page(path).await.0, 200, "{path}");
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        times[2]
    }

    /// A page with the bearer token: (status, HTML).
    async fn page(&self, path: &str) -> (u16, String) {
        let r = self.http.get(format!("{}{path}", self.url)).bearer_auth(&self.token).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

impl Drop for DeployedServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `range` pipeline of 3 children that print a line; child 1 fails (exit 3,
/// a line on stderr) while `fault` exists.
fn write_spec(dir: &Path, fault: &Path) -> PathBuf {
    let script = format!(
        "echo child $AWS_BATCH_JOB_ARRAY_INDEX says hello; \
         if [ $AWS_BATCH_JOB_ARRAY_INDEX = 1 ] && [ -e {} ]; then echo boom: child 1 cannot go on >&2; exit 3; fi",
        fault.display()
    );
    let spec = dir.join("dep.toml");
    let small = "vcpus = 1\nmemory = 64\n";
    std::fs::write(
        &spec,
        format!(
            "name = \"dep\"\n[planner]\nstrategy = \"range\"\ncount = 3\n\
             [[stages]]\nname = \"work\"\ncommand = [\"sh\", \"-c\", {script:?}]\n{small}\
             [aggregation]\ncommand = [\"true\"]\n{small}[cleanup]\ncommand = [\"true\"]\n{small}"
        ),
    )
    .unwrap();
    spec
}

/// `batchfan run SPEC --backend aws` to its end, Batch on `batch`.
fn run_on_aws(d: &Deployed, batch: &Server, spec: &Path, request_id: &str) -> Output {
    let mut args: Vec<String> = ["run", &spec.display().to_string(), "--request-id", request_id]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--output", "json", "--poll", "0.5", "-q"].map(String::from));
    args.extend(d.flags());
    let mut cmd = d.command(&args);
    cmd.env("AWS_ENDPOINT_URL_BATCH", &batch.endpoint);
    finish(cmd.spawn().unwrap(), &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_backend_aws_shows_the_deployed_runs_and_retries_the_failed_one_in_chromium() {
    let d = deploy_stores(Moto::start(), Some(QUEUE)).await;
    let batch = Server::start_with(&["--logs-url", &d.moto.endpoint()]);
    let client = batch.client();
    batch.setup(&client).await;
    for what in ["work", "aggregation", "cleanup", "barrier"] {
        register_sh(&client, &batchfan::deploy::job_definition_name(&d.prefix, what), "true", &batch.out())
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let fault = dir.path().join("fault");
    std::fs::write(&fault, "").unwrap();
    let spec = write_spec(dir.path(), &fault);
    let bad = run_on_aws(&d, &batch, &spec, "bad");
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad.stderr));
    let bad = json_of(&bad)["run_id"].as_str().unwrap().to_owned();
    std::fs::remove_file(&fault).unwrap();
    let good = run_on_aws(&d, &batch, &spec, "good");
    assert_eq!(good.status.code(), Some(0), "{}", text(&good.stderr));
    let good = json_of(&good)["run_id"].as_str().unwrap().to_owned();

    let serve = DeployedServe::start(&d, Some(&batch), &spec, &d.flags(), dir.path().join("serve.log"));
    // The JSON API reads DynamoDB and Batch.
    let (status, runs) = serve.get("/api/runs").await;
    assert_eq!(status, 200, "{runs}\n{}", serve.log_text());
    let states: Vec<(&str, &str)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["run_id"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [(good.as_str(), "SUCCEEDED"), (bad.as_str(), "FAILED")], "newest first");
    let (_, run) = serve.get(&format!("/api/runs/{bad}")).await;
    assert_eq!(run["stages"][0]["children"], json!(["SUCCEEDED", "FAILED", "SUCCEEDED"]), "{run}");
    assert_eq!(run["failed_children"][0]["exit_code"], 3, "{run}");
    let (_, child) = serve.get(&format!("/api/runs/{bad}/children/work/1")).await;
    assert_eq!(child["attempts"][0]["exit_code"], 3, "{child}");
    let tail = child["attempts"][0]["log_tail"].as_str().unwrap_or_default();
    assert!(tail.contains("child 1 says hello") && tail.contains("boom: child 1 cannot go on"), "{child}");
    // No run starts from here: 403 naming the way to do it.
    let post = |path: &str| serve.http.post(format!("{}{path}", serve.url)).bearer_auth(&serve.token);
    let r = post("/api/pipelines/dep/runs").json(&json!({"request_id": "x"})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let why: Value = r.json().await.unwrap();
    assert!(why["error"].as_str().unwrap().contains("read-only view of the deployed pipeline"), "{why}");
    let (_, runs) = serve.get("/api/runs").await;
    assert_eq!(runs.as_array().unwrap().len(), 2, "no run was made");
    // Cancel and retry are refused where they make no sense, naming why.
    for (path, why) in [
        (format!("/api/runs/{good}/retry"), "is SUCCEEDED"),
        (format!("/api/runs/{bad}/cancel"), "already ended FAILED"),
    ] {
        let r = post(&path).send().await.unwrap();
        assert_eq!(r.status(), 409, "{path}");
        let answer: Value = r.json().await.unwrap();
        assert!(answer["error"].as_str().unwrap().contains(why), "{path}: {answer}");
    }

    for path in
        ["/".to_owned(), format!("/runs/{bad}"), format!("/runs/{bad}/children/work/1"), "/history".into()]
    {
        let ms = serve.median_ms(&path).await;
        eprintln!(
            "figure: serve --backend aws (debug build, moto + batch-api) GET {path}: median of 5 {ms:.1} ms"
        );
    }

    let shots = artifact("deployed-home.png").parent().unwrap().to_owned();
    let names = [
        "deployed-home.png",
        "deployed-history.png",
        "deployed-run.png",
        "deployed-child.png",
        "deployed-retried.png",
    ];
    names.iter().for_each(|n| drop(artifact(n)));
    let r = browse_with(
        "deployed-pages.mjs",
        &[&serve.url, &serve.login_url, &bad, &good, shots.to_str().unwrap()],
        || serve.log_text(),
    );
    assert_eq!(r["deniedStatus"], 401, "{r}");
    assert_eq!(r["landed"], format!("{}/", serve.url), "{r}");
    let home = &r["home"];
    assert_eq!(
        home["runs"],
        json!([{"run": good, "state": "SUCCEEDED"}, {"run": bad, "state": "FAILED"}]),
        "{r}"
    );
    assert_eq!(home["runButtons"], 0, "no Run button: {r}");
    assert!(
        home["note"].as_str().unwrap_or_default().starts_with("read-only view of the deployed pipeline"),
        "{r}"
    );
    assert!(home["alertsNote"].as_str().is_some() && home["storeError"].is_null(), "{r}");
    let history = &r["history"];
    assert_eq!(history["pipeline"], "dep");
    assert_eq!(history["runs"], json!([bad, good]), "oldest first: {r}");
    assert_eq!(history["rows"][0], json!({"stage": "work", "cells": ["FAILED", "SUCCEEDED"]}), "{r}");
    let run = &r["run"];
    assert_eq!(run["state"], "FAILED");
    assert_eq!(run["cells"], json!(["SUCCEEDED", "FAILED", "SUCCEEDED"]), "{r}");
    assert_eq!(run["buttons"], 1, "the Retry button: {r}");
    assert!(run["actionNote"].is_null(), "{r}");
    let failed = run["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{r}");
    let failed = failed[0].as_str().unwrap();
    assert!(failed.contains("work[1]") && failed.contains("exit 3") && failed.contains("boom"), "{r}");
    assert!(run["timings"].as_array().unwrap().contains(&json!("work")), "{r}");
    let child = &r["child"];
    assert_eq!(child["state"], "FAILED");
    assert_eq!(child["attempts"], json!(["attempt 1: exit 3"]), "{r}");
    let tail = child["tail"].as_str().unwrap();
    assert!(tail.contains("child 1 says hello") && tail.contains("boom: child 1 cannot go on"), "{r}");
    assert!(!child["why"][0].as_str().unwrap().starts_with("no reason · no status reason"), "{r}");
    assert!(r["fullLog"]["text"].as_str().unwrap_or_default().contains("boom: child 1 cannot go on"), "{r}");
    assert_eq!(r["ok"]["cells"], json!(["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]), "{r}");
    assert!(r["ok"]["actionNote"].is_null(), "nothing to do on a SUCCEEDED run: {r}");
    // The Retry button: attempt 2 ran through batch-api, followed by this serve
    // (no Lambda here moves the run). The stage's command is a plain `sh`,
    // which stores no result (only the job runtime does), so the retry reruns
    // the stage's 3 children; that only the failed child reruns when results
    // are stored is `cli_aws::ops::retry_backend_aws_reruns_only_the_failed_orders_child_…`.
    let retried = &r["retried"];
    assert_eq!(retried["state"], "SUCCEEDED", "{r}\n{}", serve.log_text());
    assert_eq!(retried["cells"], json!(["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]), "{r}");
    let attempts = retried["attempts"].as_str().unwrap_or_default();
    assert!(attempts.starts_with("Attempt 1 2 (current) of 2 · attempt 2 reran 3 child(ren)"), "{r}");
    assert_eq!(retried["buttons"], 0, "nothing to do on a SUCCEEDED run: {r}");
    let (_, after) = serve.get(&format!("/api/runs/{bad}")).await;
    assert_eq!(after["attempt"], 2, "{after}");
    assert_eq!(r["cspViolations"], json!([]), "{r}");
    for name in names {
        assert_png(&shots.join(name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_backend_aws_shows_an_unreadable_table_as_an_error_and_refuses_local_options() {
    let d = deploy_stores(Moto::start(), Some(QUEUE)).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), &dir.path().join("fault"));
    // Options of the embedded backend: exit 2 naming them, before anything is served.
    for extra in [&["--vcpus", "2"][..], &["--batch-api"], &["--allow-input", "/tmp"], &["--poll-ms", "100"]]
    {
        let mut args: Vec<String> =
            ["serve", spec.to_str().unwrap(), "--backend", "aws"].map(String::from).to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = finish(d.command(&args).spawn().unwrap(), &args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(&format!("{} cannot be used with --backend aws", extra[0])), "{err}");
    }

    let missing = "no-such-table".to_owned();
    let args = ["--backend".to_owned(), "aws".to_owned(), "--table".to_owned(), missing.clone()];
    let serve = DeployedServe::start(&d, None, &spec, &args, dir.path().join("serve.log"));
    let (status, body) = serve.get("/api/runs").await;
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains(&format!("cannot read the run records in table {missing}")), "{body}");
    let (status, home) = serve.page("/").await;
    assert_eq!(status, 200);
    assert!(home.contains("id=store-error") && home.contains(&missing), "{home}");
    assert!(!home.contains("No runs yet"), "{home}");
    let (status, history) = serve.page("/history").await;
    assert_eq!(status, 200);
    assert!(history.contains("id=store-error") && history.contains(&missing), "{history}");
    let (status, _) = serve.get("/api/history").await;
    assert_eq!(status, 503);
    let (status, run) = serve.get("/api/runs/r0123").await;
    assert_eq!(status, 503, "a run that cannot be looked up is not a 404: {run}");
    // The local serve's guard: no page without the login, no foreign Host, the headers on every answer.
    let bare = |path: &str| serve.http.get(format!("{}{path}", serve.url));
    let host = serve.url.trim_start_matches("http://").to_owned();
    for (request, want) in [
        (bare("/"), 401),
        (bare("/api/runs"), 401),
        (bare("/history").bearer_auth("wrong"), 401),
        (bare("/").bearer_auth(&serve.token).header("Host", "evil.example"), 421),
        (bare("/healthz"), 200),
    ] {
        let r = request.send().await.unwrap();
        assert_eq!(r.status().as_u16(), want, "{host}: {r:?}");
        for (name, value) in batchfan::serve::guard::SECURITY_HEADERS {
            assert_eq!(r.headers().get(name).and_then(|v| v.to_str().ok()), Some(value), "{name}: {r:?}");
        }
    }
    drop(serve);
}
