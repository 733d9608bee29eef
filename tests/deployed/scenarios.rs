//! The wiring read back from the deployment, and the runs an upload starts:
//! a success (byte for byte the embedded backend's output), a failed child
//! (cascade, cleanup, one alert), duplicated deliveries (one run).

use std::{collections::BTreeMap, path::Path, process::Command};

use aws_sdk_dynamodb::types::AttributeValue;
use batchfan::run::RunState;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::lambda_support::{
    deploy::json_api,
    deployed::{bin_dir, Deployment},
    router::Router,
};

/// The pipeline's parts, as deployed.
pub struct Wiring {
    pub trigger: String,
    pub bucket: String,
    pub prefix: String,
    pub alerts_topic: String,
    pub table: String,
}

/// Reads the wiring and checks each route is the one the module means.
pub async fn wiring(r: &Router<'_>) -> Wiring {
    let trigger = r.routes.arn_of(&r.d.output("trigger_function"));
    let env_of = |arn: &str| {
        let f = r.function(arn);
        let env = f.try_lock().expect("no invocation yet").config.environment.clone();
        env
    };
    let plan_topic = env_of(&trigger)["BATCHFAN_PLAN_TOPIC_ARN"].clone();
    let submit = match r.routes.topics.get(&plan_topic).map(Vec::as_slice) {
        Some([one]) => one.clone(),
        other => panic!(
            "the plan topic {plan_topic} has lambda subscribers {other:?}: expected the submit function"
        ),
    };
    let (patterns, ticks): (Vec<_>, Vec<_>) = r.routes.rules.iter().partition(|r| !r.pattern.is_empty());
    let [rule] = patterns.as_slice() else {
        panic!("one EventBridge rule with an event pattern expected: {:?}", r.routes.rules)
    };
    let alert = match rule.targets.as_slice() {
        [one] => one.clone(),
        other => panic!("rule {} targets {other:?}: expected the alert function", rule.name),
    };
    let [tick] = ticks.as_slice() else { panic!("one schedule rule (the reconcile tick): {ticks:?}") };
    assert_eq!(tick.schedule, "rate(5 minutes)", "the module's default reconcile_minutes: {tick:?}");
    assert_eq!(
        tick.targets,
        std::slice::from_ref(&alert),
        "the reconcile tick invokes the alert function: {tick:?}"
    );
    let input: Value = serde_json::from_str(&tick.inputs[&alert]).expect("the tick's input is JSON");
    assert_eq!(input, serde_json::json!({"batchfan": "reconcile"}), "{tick:?}");
    for (arn, role) in [(&trigger, "trigger"), (&submit, "submit"), (&alert, "alert")] {
        assert!(r.routes.functions[arn].ends_with(&format!("-{role}")), "{arn} is not the {role} function");
    }
    let [s3] = r.routes.s3.as_slice() else { panic!("one bucket notification expected: {:?}", r.routes.s3) };
    assert_eq!(s3.function_arn, trigger, "uploads invoke the trigger");
    assert_eq!(s3.events, ["s3:ObjectCreated:*"]);
    assert_eq!(r.d.output("bucket"), s3.bucket, "the trigger bucket of ci/triggers.toml is the pipeline's");
    let alerts_topic = env_of(&alert)["BATCHFAN_ALERTS_TOPIC_ARN"].clone();
    assert_eq!(alerts_topic, r.d.output("alerts_topic_arn"));
    Wiring {
        trigger,
        bucket: s3.bucket.clone(),
        prefix: s3.prefix.clone(),
        alerts_topic,
        table: r.d.output("table"),
    }
}

/// Generates `rows` orders into `path` with target/debug/orders-gen.
pub fn gen_orders(path: &Path, rows: u64) {
    let out = Command::new(bin_dir().join("orders-gen"))
        .args(["--rows", &rows.to_string(), "--out"])
        .arg(path)
        .output()
        .expect("orders-gen runs");
    assert!(out.status.success(), "orders-gen: {}", String::from_utf8_lossy(&out.stderr));
}

/// The run the trigger's last answer names.
pub fn last_run(r: &Router<'_>) -> String {
    let (name, last) = r.invocations.last().expect("an invocation");
    let answer = last.attempts.last().expect("an attempt").response();
    answer["runs"][0]["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} answered no run: {answer}"))
        .to_owned()
}

/// The jobs of run `run_id` in batch-api: name → (status, status reason), plus how many share a name.
pub async fn jobs_of(d: &Deployment, run_id: &str) -> (BTreeMap<String, (String, String)>, usize) {
    let client = d.batch.client();
    let mut jobs = BTreeMap::new();
    let mut repeated = 0;
    for status in ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"] {
        let listed = client
            .list_jobs()
            .job_queue(d.output("job_queue"))
            .job_status(status.into())
            .send()
            .await
            .expect("list jobs");
        for j in
            listed.job_summary_list().iter().filter(|j| j.job_name().unwrap_or_default().contains(run_id))
        {
            let reason = j.status_reason().unwrap_or_default().to_owned();
            let name = j.job_name().unwrap_or_default().to_owned();
            repeated += usize::from(jobs.insert(name, (status.to_owned(), reason)).is_some());
        }
    }
    (jobs, repeated)
}

/// An object's bytes in moto's S3.
pub async fn get(d: &Deployment, bucket: &str, key: &str) -> Vec<u8> {
    let got = d.fx.s3.get_object().bucket(bucket).key(key).send().await;
    let got = got.unwrap_or_else(|e| panic!("get s3://{bucket}/{key}: {e:?}"));
    got.body.collect().await.expect("the body").into_bytes().to_vec()
}

/// The orders example's ConfirmationId of `order_id` in run `run_id`: the
/// first 16 bytes of SHA-256("{run}:{order}") as a version 8 UUID.
fn confirmation(run_id: &str, order_id: &str) -> String {
    let mut b: [u8; 16] =
        Sha256::digest(format!("{run_id}:{order_id}").as_bytes())[..16].try_into().expect("16");
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// `batchfan run jobs/orders.toml --input CSV` on the embedded backend: (run id, output bytes).
fn embedded_output(csv: &Path, state: &Path) -> (String, Vec<u8>) {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/orders.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_batchfan"))
        .arg("run")
        .arg(&spec)
        .arg("--input")
        .arg(csv)
        .arg("--state")
        .arg(state)
        .args(["--output", "json", "--quiet"])
        .output()
        .expect("batchfan run");
    assert!(out.status.success(), "batchfan run: {}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).expect("the run's JSON summary");
    assert_eq!(s["state"], "SUCCEEDED", "{s}");
    let path = s["output_path"].as_str().expect("output_path");
    (s["run_id"].as_str().expect("run_id").to_owned(), std::fs::read(path).expect("the output"))
}

/// A 100,000-row upload: SUCCEEDED, the output is the embedded backend's
/// (each ConfirmationId under its own run id), every row in the Orders table.
pub async fn upload_of_100k_rows_succeeds(r: &mut Router<'_>, w: &Wiring) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let csv = dir.path().join("orders.csv");
    gen_orders(&csv, 100_000);
    let key = format!("{}orders-100k.csv", w.prefix);
    let events = r.put(&w.bucket, &key, std::fs::read(&csv).expect("the CSV")).await;
    assert_eq!(
        events.iter().map(|(arn, _)| arn).collect::<Vec<_>>(),
        [&w.trigger],
        "the upload's notification"
    );
    r.deliver(&events).await;
    let run_id = last_run(r);
    let run = r.settle(&run_id).await;
    assert_eq!(run.state, RunState::Succeeded, "{:?}", run.failure);
    assert_eq!(run.sizing.as_ref().map(|s| s.children), Some(4), "100,000 rows, 30,000 per child");
    let deployed = get(r.d, &run.output.bucket, &run.output.key).await;

    let (local_run, local) = embedded_output(&csv, &dir.path().join("state"));
    let text = String::from_utf8(local).expect("UTF-8");
    let mut expected = String::with_capacity(text.len());
    for line in text.lines() {
        let (order, id) =
            line.split_once(',').unwrap_or_else(|| panic!("not OrderId,ConfirmationId: {line}"));
        assert_eq!(id, confirmation(&local_run, order), "the embedded output's ConfirmationId of {order}");
        expected.push_str(&format!("{order},{}\n", confirmation(&run_id, order)));
    }
    assert_eq!(text.lines().count(), 100_000);
    assert!(deployed == expected.as_bytes(), "the deployed run's output differs from the embedded backend's");

    // moto counts ItemCount live (AWS refreshes it about every 6 hours); a
    // Scan of 100,000 rows takes moto minutes.
    let table = r.d.fx.dynamodb.describe_table().table_name("Orders").send().await.expect("describe Orders");
    let rows = table.table.and_then(|t| t.item_count).expect("ItemCount");
    assert_eq!(rows, 100_000, "every row in the Orders table");
}

/// Child 0's work item lost before the plan reaches the submitter: that child
/// fails permanently, the aggregation by cascade, cleanup runs, one alert.
/// (Child 0 holds 30,000 of the file's 31,000 rows: the child that succeeds
/// writes only 1,000 to moto's DynamoDB, a second rather than ten.)
pub async fn a_failed_child_fails_the_run_with_one_alert(r: &mut Router<'_>, w: &Wiring, alerts: &str) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let csv = dir.path().join("orders.csv");
    gen_orders(&csv, 31_000);
    let events =
        r.put(&w.bucket, &format!("{}orders-lost.csv", w.prefix), std::fs::read(&csv).expect("csv")).await;
    r.deliver(&events).await;
    let run_id = last_run(r);
    let item = [("pk", format!("items#{run_id}")), ("sk", format!("{:010}", 0))]
        .map(|(k, v)| (k.to_owned(), AttributeValue::S(v)));
    r.d.fx
        .dynamodb
        .delete_item()
        .table_name(&w.table)
        .set_key(Some(item.into()))
        .send()
        .await
        .expect("delete");
    let run = r.settle(&run_id).await;
    assert_eq!(run.state, RunState::Failed);
    let failure = run.failure.expect("the failure");
    assert_eq!((failure.stage.as_str(), failure.index, failure.exit_code), ("confirm", Some(0), Some(1)));
    let (jobs, repeated) = jobs_of(r.d, &run_id).await;
    assert_eq!(repeated, 0);
    let status = |suffix: &str| {
        let name = format!("orders-{run_id}-{suffix}");
        jobs.get(&name).cloned().unwrap_or_else(|| panic!("no job {name}: {jobs:?}"))
    };
    assert_eq!(status("confirm-0").0, "FAILED", "the array: {jobs:?}");
    let cascade = ("FAILED".to_owned(), "Dependent Job failed".to_owned());
    assert_eq!(status("aggregate"), cascade, "the aggregation fails by cascade: {jobs:?}");
    assert_eq!(status("cleanup"), cascade, "the graph's cleanup too: {jobs:?}");
    assert_eq!(status("cleanup-onfailure").0, "SUCCEEDED", "the failure's cleanup runs: {jobs:?}");
    let got = r.d.fx.receive(alerts, std::time::Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "exactly one alert: {got:?}");
    let alert: Value = serde_json::from_str(&got[0].message.body).expect("the alert is JSON");
    assert_eq!(
        (&alert["run_id"], &alert["stage"], &alert["index"], &alert["exit_code"]),
        (&Value::from(run_id.clone()), &Value::from("confirm"), &Value::from(0), &Value::from(1)),
        "the alert names the run, stage, index and exit code: {alert}"
    );
    let tail = alert["log_tail"].as_str().unwrap_or_default();
    assert!(!tail.is_empty() && tail == failure.log_tail, "the alert carries the log tail: {alert}");
    let (group, stream) = log_of(r.d, &failure.job_id).await;
    assert_eq!(group, "/aws/batch/batchfan/orders", "the job definition's awslogs-group");
    assert!(stream.starts_with("orders/default/"), "awslogs-stream-prefix orders: {stream}");
    assert!(
        tail.contains(&format!("group {group}, stream {stream}")),
        "the alert points at the child's log group and stream: {tail}"
    );
    let logged = log_events(r.d, &group, &stream);
    assert!(!logged.is_empty(), "batch-api shipped the child's log to {group} {stream}");
    let command = alert["logs_command"].as_str().unwrap_or_else(|| panic!("no logs_command: {alert}"));
    assert_eq!(
        command,
        format!("batchfan logs {run_id} confirm 0 --backend aws --table {}", w.table),
        "{alert}"
    );
    let printed = run_logs_command(r.d, command);
    assert_eq!(printed.lines().collect::<Vec<_>>(), logged, "`{command}` prints the child's log");
    assert!(r.d.fx.receive(alerts, std::time::Duration::from_secs(1)).await.is_empty(), "one alert only");
}

/// The log group and stream of job `job_id`'s last attempt, read back from
/// batch-api: the stream from DescribeJobs, the group from its job
/// definition's `logConfiguration` (DescribeJobDefinitions).
async fn log_of(d: &Deployment, job_id: &str) -> (String, String) {
    let client = d.batch.client();
    let jobs = client.describe_jobs().jobs(job_id).send().await.expect("describe the failed job");
    let job = jobs.jobs().first().unwrap_or_else(|| panic!("no job {job_id}"));
    let stream = job
        .attempts()
        .last()
        .and_then(|a| a.container()?.log_stream_name())
        .unwrap_or_else(|| panic!("job {job_id} has no attempt with a log stream: {job:?}"))
        .to_owned();
    let definition = job.job_definition().expect("its job definition");
    let defs = client.describe_job_definitions().job_definitions(definition).send().await.expect("describe");
    let group = defs
        .job_definitions()
        .first()
        .and_then(|def| def.container_properties()?.log_configuration()?.options()?.get("awslogs-group"))
        .unwrap_or_else(|| panic!("{definition} has no awslogs-group: {defs:?}"))
        .to_owned();
    (group, stream)
}

/// The messages of `group`/`stream` in moto's CloudWatch Logs.
fn log_events(d: &Deployment, group: &str, stream: &str) -> Vec<String> {
    let body = serde_json::json!({"logGroupName": group, "logStreamName": stream, "startFromHead": true});
    let got = json_api(&d.moto, "logs", "Logs_20140328.GetLogEvents", &body);
    got["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Runs the alert's `batchfan logs … --backend aws` as a user would, with the
/// SDK pointed at moto and batch-api; returns what it printed on stdout.
fn run_logs_command(d: &Deployment, command: &str) -> String {
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("batchfan"), "{command}");
    let out = Command::new(env!("CARGO_BIN_EXE_batchfan"))
        .args(words)
        .env("AWS_ENDPOINT_URL", d.moto.endpoint())
        .env("AWS_ENDPOINT_URL_BATCH", &d.batch.endpoint)
        .env("AWS_REGION", super::lambda_support::moto::REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("BATCHFAN_TABLE")
        .output()
        .expect("batchfan logs");
    assert!(
        out.status.success(),
        "`{command}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The same S3 event three times, each plan message twice: one run, each job once.
pub async fn duplicated_events_start_one_run(r: &mut Router<'_>, w: &Wiring) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let csv = dir.path().join("orders.csv");
    gen_orders(&csv, 500);
    let before = r.runs().await.len();
    let events =
        r.put(&w.bucket, &format!("{}orders-dup.csv", w.prefix), std::fs::read(&csv).expect("csv")).await;
    r.sns_copies = 2;
    let mut answers = Vec::new();
    for _ in 0..3 {
        r.deliver(&events).await;
        answers.push(last_run(r));
    }
    let run = r.settle(&answers[0]).await;
    r.sns_copies = 1;
    assert_eq!(answers, [answers[0].clone(), answers[0].clone(), answers[0].clone()], "one run answered");
    assert_eq!(run.state, RunState::Succeeded, "{:?}", run.failure);
    assert_eq!(r.runs().await.len(), before + 1, "one run");
    let (jobs, repeated) = jobs_of(r.d, &run.run_id).await;
    assert_eq!(repeated, 0, "each job submitted once: {jobs:?}");
    let names: Vec<&String> = jobs.keys().collect();
    assert_eq!(names, run.jobs.keys().collect::<Vec<_>>(), "the jobs in batch-api are the run's");
}

/// Deletes every object version of `bucket`, as a user does before destroying it.
pub async fn empty_bucket(d: &Deployment, bucket: &str) {
    loop {
        let listed = d.fx.s3.list_object_versions().bucket(bucket).send().await.expect("list versions");
        let mut all: Vec<(String, Option<String>)> = listed
            .versions()
            .iter()
            .map(|v| (v.key().unwrap_or_default().to_owned(), v.version_id().map(str::to_owned)))
            .collect();
        all.extend(
            listed
                .delete_markers()
                .iter()
                .map(|m| (m.key().unwrap_or_default().to_owned(), m.version_id().map(str::to_owned))),
        );
        if all.is_empty() {
            return;
        }
        for (key, version) in all {
            d.fx.s3
                .delete_object()
                .bucket(bucket)
                .key(key)
                .set_version_id(version)
                .send()
                .await
                .expect("delete a version");
        }
    }
}
