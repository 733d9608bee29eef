//! `batchfan serve --batch-api` (issue 11, item 5): the AWS Batch API served
//! by serve's own process over its engine, driven with aws-sdk-batch — its
//! jobs and a pipeline's run share one capacity, the Jobs view's JSON shows
//! them (array progress, the failed child's exit code and log tail), the API
//! has no login while the view keeps it, and a `kill -9` loses no job.

use std::path::Path;

use aws_sdk_batch::types::{JobDependency, JobStatus, RetryStrategy};
use serde_json::Value;

use crate::serve_support::{
    batch::{describe, register_sh, setup, submit, wait_done, QUEUE},
    batchfan, sh_stage, wait_for, write_spec, Serve,
};

const BATCH_API: [&str; 2] = ["--batch-api", "127.0.0.1:0"];

/// A pipeline of one plain job taking both of the engine's vCPUs (Serve::start gives it 2).
fn hog_pipeline(dir: &Path, out: &Path) -> std::path::PathBuf {
    let script = format!("date +%s%N > {0}/pipe.start; sleep 1; date +%s%N > {0}/pipe.end", out.display());
    write_spec(
        dir,
        "pipe",
        &format!(
            "name = \"pipe\"\n[planner]\nstrategy = \"range\"\ncount = 1\n\
             [[stages]]\nname = \"hog\"\ncommand = {}\nvcpus = 2\nmemory = 64\n",
            sh_stage(&script)
        ),
    )
}

fn nanos(path: &Path) -> u128 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim().parse().unwrap_or_else(|e| panic!("{}: {text:?}: {e}", path.display()))
}

async fn get_status(serve: &Serve, path: &str, bearer: bool) -> (u16, Value) {
    let mut req = serve.client().get(format!("{}{path}", serve.url));
    if bearer {
        req = req.bearer_auth(&serve.token);
    }
    let r = req.send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn by_name<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["job_name"] == name))
        .unwrap_or_else(|| panic!("no job {name} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_jobs_share_the_engine_with_runs_and_show_in_the_jobs_view() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let spec = hog_pipeline(dir.path(), &out);
    let serve = Serve::start(&dir.path().join("state"), &[&spec], &BATCH_API, &[]);
    let api_url = serve.batch_api_url();
    assert!(api_url.starts_with("http://127.0.0.1:") && api_url != serve.url, "{api_url}");
    let client = serve.batch_client();
    setup(&client).await;
    let o = out.display();
    register_sh(&client, "hog", &format!("date +%s%N > {o}/api.start; sleep 1; date +%s%N > {o}/api.end"), 2)
        .await;
    let fan = "if [ \"$AWS_BATCH_JOB_ARRAY_INDEX\" = 2 ]; then echo boom $AWS_BATCH_JOB_ARRAY_INDEX; exit 3; fi; echo ok";
    register_sh(&client, "fan", fan, 1).await;
    register_sh(&client, "plain", "echo plain job", 1).await;

    let hog = submit(&client, "hog", "hog", None).await;
    let run = serve
        .client()
        .post(format!("{}/api/pipelines/pipe/runs", serve.url))
        .bearer_auth(&serve.token)
        .json(&serde_json::json!({ "request_id": "capacity" }))
        .send()
        .await
        .expect("POST run");
    assert_eq!(run.status().as_u16(), 202);
    let run_id = run.json::<Value>().await.unwrap()["run_id"].as_str().unwrap().to_owned();
    let fan = submit(&client, "fan", "fan", Some(4)).await;
    let plain = submit(&client, "plain", "plain", None).await;

    assert_eq!(wait_done(&client, &hog).await.status(), Some(&JobStatus::Succeeded));
    let parent = wait_done(&client, &fan).await;
    assert_eq!(parent.status(), Some(&JobStatus::Failed), "one child failed");
    let summary = parent.array_properties().and_then(|a| a.status_summary()).expect("statusSummary");
    assert_eq!((summary.get("SUCCEEDED"), summary.get("FAILED")), (Some(&3), Some(&1)), "{summary:?}");
    let child = describe(&client, &format!("{fan}:2")).await;
    let attempt = &child.attempts()[0];
    assert_eq!(attempt.container().and_then(|c| c.exit_code()), Some(3));
    assert!(attempt.container().and_then(|c| c.log_stream_name()).is_some(), "{attempt:?}");
    assert_eq!(wait_done(&client, &plain).await.status(), Some(&JobStatus::Succeeded));
    assert_eq!(serve.wait_run(&run_id).await["state"], "SUCCEEDED");

    // One capacity: the API's 2-vCPU job and the run's 2-vCPU child never ran at once.
    let (api, pipe) = (
        (nanos(&out.join("api.start")), nanos(&out.join("api.end"))),
        (nanos(&out.join("pipe.start")), nanos(&out.join("pipe.end"))),
    );
    assert!(
        api.1 <= pipe.0 || pipe.1 <= api.0,
        "the two 2-vCPU jobs overlapped on 2 vCPUs: api {api:?}, pipeline {pipe:?}"
    );

    // The Jobs view's JSON: the API's queue and jobs only (not the pipeline's).
    let (status, list) = get_status(&serve, "/api/jobs", true).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["queues"], serde_json::json!([QUEUE]));
    assert_eq!(list["total"], 3, "{list}");
    assert_eq!(by_name(&list, "hog")["status"], "SUCCEEDED");
    assert_eq!(by_name(&list, "plain")["attempts"], 1);
    let fan_row = by_name(&list, "fan");
    assert_eq!((fan_row["status"].as_str(), fan_row["array_size"].as_u64()), (Some("FAILED"), Some(4)));
    let counts: Vec<(&String, &Value)> = fan_row["status_summary"]
        .as_object()
        .expect("status_summary")
        .iter()
        .filter(|(_, n)| **n != 0)
        .collect();
    assert_eq!(format!("{counts:?}"), r#"[("FAILED", Number(1)), ("SUCCEEDED", Number(3))]"#, "{fan_row}");
    let (_, failed) = get_status(&serve, &format!("/api/jobs?queue={QUEUE}&status=FAILED"), true).await;
    let ids: Vec<&str> =
        failed["jobs"].as_array().unwrap().iter().filter_map(|j| j["job_id"].as_str()).collect();
    assert_eq!(ids, [fan.as_str()], "{failed}");
    let (status, bad) = get_status(&serve, "/api/jobs?queue=nope", true).await;
    assert!(status == 400 && bad["error"].as_str().unwrap().contains("\"nope\""), "{status} {bad}");
    let (status, bad) = get_status(&serve, "/api/jobs?status=DONE", true).await;
    assert!(status == 400 && bad["error"].as_str().unwrap().contains("\"DONE\""), "{status} {bad}");

    let (_, page) = get_status(&serve, &format!("/api/jobs/{fan}"), true).await;
    let children = page["children"].as_array().expect("children");
    assert_eq!(children.len(), 4, "{page}");
    assert_eq!(
        (children[2]["status"].as_str(), children[2]["url"].as_str()),
        (Some("FAILED"), Some(format!("/jobs/{fan}:2").as_str()))
    );
    let (_, child) = get_status(&serve, &format!("/api/jobs/{fan}:2"), true).await;
    assert_eq!(child["parent"].as_str(), Some(fan.as_str()));
    assert_eq!(child["attempts"][0]["exit_code"], 3, "{child}");
    assert!(child["attempts"][0]["log_tail"].as_str().unwrap().contains("boom 2"), "{child}");
    assert_eq!(get_status(&serve, "/api/jobs/no-such-job", true).await.0, 404);

    // The view keeps the login; the API has none, and neither door serves the other.
    assert_eq!(get_status(&serve, "/api/jobs", false).await.0, 401);
    let cookie = serve.login().await;
    let (status, html) = serve.page(&cookie, &format!("/jobs/{fan}:2")).await;
    assert!(status == 200 && html.contains("boom 2") && html.contains(&format!("/jobs/{fan}")), "{html}");
    let r = serve.client().get(format!("{api_url}/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "the API's port serves no page");
    assert_eq!(r.headers()["x-amzn-errortype"].to_str().unwrap().split(':').next(), Some("ClientException"));
    let r = serve.client().post(format!("{}/v1/describejobs", serve.url)).body("{}").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401, "the page's port serves no API without the login");
    assert!(serve.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_loses_no_api_job_and_the_restart_runs_them_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let spec = hog_pipeline(dir.path(), &out);
    let state = dir.path().join("state");
    let mut serve = Serve::start(&state, &[&spec], &BATCH_API, &[]);
    let client = serve.batch_client();
    setup(&client).await;
    let o = out.display();
    register_sh(
        &client,
        "slow",
        &format!(
            "echo start-$AWS_BATCH_JOB_ATTEMPT >> {o}/runs; touch {o}/started; sleep 2; echo end >> {o}/runs"
        ),
        1,
    )
    .await;
    register_sh(&client, "after", &format!("echo after >> {o}/after"), 1).await;
    // Two attempts: the attempt the kill -9 cuts short counts, as a lost host's does on AWS.
    let slow = client
        .submit_job()
        .job_name("slow")
        .job_queue(QUEUE)
        .job_definition("slow")
        .retry_strategy(RetryStrategy::builder().attempts(2).build())
        .send()
        .await
        .expect("submit slow")
        .job_id()
        .unwrap()
        .to_owned();
    let after = client
        .submit_job()
        .job_name("after")
        .job_queue(QUEUE)
        .job_definition("after")
        .depends_on(JobDependency::builder().job_id(&slow).build())
        .send()
        .await
        .expect("submit after")
        .job_id()
        .unwrap()
        .to_owned();
    wait_for("the slow job to start", || async { out.join("started").exists().then_some(()) }).await;
    assert_eq!(describe(&client, &after).await.status(), Some(&JobStatus::Pending));

    serve.stop_with(libc::SIGKILL);
    let serve = Serve::start(&state, &[&spec], &BATCH_API, &[]);
    let client = serve.batch_client();
    let done = wait_done(&client, &slow).await;
    assert_eq!(done.status(), Some(&JobStatus::Succeeded), "{done:?}");
    let attempts = done.attempts();
    assert_eq!(attempts.len(), 2, "the lost attempt and the re-run: {attempts:?}");
    assert!(attempts[0].status_reason().is_some_and(|r| r.starts_with("Host EC2")), "{attempts:?}");
    assert_eq!(wait_done(&client, &after).await.status(), Some(&JobStatus::Succeeded));
    assert_eq!(std::fs::read_to_string(out.join("after")).unwrap(), "after\n", "ran once, after the re-run");
    assert_eq!(std::fs::read_to_string(out.join("runs")).unwrap(), "start-1\nstart-2\nend\n");
    let list = serve.get("/api/jobs?status=SUCCEEDED").await;
    assert_eq!(list["total"], 2, "{list}");
    assert!(serve.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sends_the_api_jobs_state_changes_to_the_events_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let spec = hog_pipeline(dir.path(), &out);
    let events = dir.path().join("events.jsonl");
    let events_arg = events.display().to_string();
    let args = [BATCH_API[0], BATCH_API[1], "--events-file", &events_arg];
    let serve = Serve::start(&dir.path().join("state"), &[&spec], &args, &[]);
    let client = serve.batch_client();
    setup(&client).await;
    register_sh(&client, "plain", "echo plain job", 1).await;
    let plain = submit(&client, "plain", "plain", None).await;
    assert_eq!(wait_done(&client, &plain).await.status(), Some(&JobStatus::Succeeded));
    assert!(serve.stop().success());

    // Every change of the job after its submission, in order, as AWS sends them.
    let statuses: Vec<String> = std::fs::read_to_string(&events)
        .expect("the events file")
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("one JSON envelope per line"))
        .filter(|e| e["detail"]["jobId"] == plain.as_str())
        .inspect(|e| {
            assert_eq!(
                (e["source"].as_str(), e["detail-type"].as_str()),
                (Some("aws.batch"), Some("Batch Job State Change"))
            )
        })
        .map(|e| e["detail"]["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(statuses, ["RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"], "no SUBMITTED: {statuses:?}");
}

#[test]
fn event_sinks_without_batch_api_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = hog_pipeline(dir.path(), dir.path());
    let state = dir.path().join("state").display().to_string();
    let out =
        batchfan(&["serve", &spec.display().to_string(), "--state", &state, "--events-file", "x.jsonl"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("add --batch-api"), "{stderr}");
}

#[test]
fn a_public_address_needs_its_own_flag_and_the_help_says_the_api_is_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    let spec = hog_pipeline(dir.path(), dir.path());
    let (spec, state) = (spec.to_str().unwrap(), dir.path().join("state"));
    let serve = ["serve", spec, "--state", state.to_str().unwrap(), "--listen", "127.0.0.1:0"];
    let out = batchfan(&[&serve[..], &["--batch-api", "0.0.0.0:0"]].concat(), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--batch-api 0.0.0.0:0") && err.contains("--batch-api-public"), "{err}");
    let out = batchfan(&[&serve[..], &["--batch-api", "--batch-api-account", "42"]].concat(), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--batch-api-account \"42\" is not valid"), "{err}");
    assert!(!state.join("batch-api.sqlite").exists(), "nothing opened before the options are checked");
    let help = batchfan(&["serve", "--help"], &[]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--batch-api [<ADDR>]") && help.contains("NOT authenticated"), "{help}");
    assert!(help.contains("--batch-api-public"), "{help}");
}
