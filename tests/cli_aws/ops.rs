//! Issue 14 items 1 and 2 on AWS: `batchfan cancel --backend aws` and
//! `batchfan retry --backend aws` for runs whose records live in DynamoDB
//! (moto) and whose jobs run in `batchfan batch-api` (as on AWS Batch: the
//! job binaries read and write DynamoDB and S3 on moto). The retry of an
//! `orders` run whose child 2 failed reruns that child only and its output is
//! the clean run's byte for byte; a cancel stops running and waiting
//! children with TerminateJob/CancelJob, ends the run CANCELLED with one
//! notice on the alerts topic, and a second cancel changes nothing.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use super::{
    batch_api_support::{describe, Server, DEADLINE, QUEUE},
    deploy_stores, finish, json_of, register_definitions, Deployed,
};
use aws_sdk_batch::types::{JobStatus, KeyValuePair};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_batchfan")).parent().expect("target/debug").to_owned()
}

fn kv(vars: &[(&str, &str)]) -> Vec<KeyValuePair> {
    vars.iter().map(|(k, v)| KeyValuePair::builder().name(*k).value(*v).build()).collect()
}

/// moto for DynamoDB, S3 and SNS; batch-api for Batch, its jobs seeing what a
/// container on AWS sees (the job binaries on `PATH`, region, credentials,
/// the endpoint of moto); job definitions `{prefix}{what}` carrying
/// the static env (`BATCHFAN_BACKEND=aws`, table, bucket) as the
/// Terraform module's do.
async fn world(stages: &[&str]) -> (Deployed, Server) {
    let d = deploy_stores(super::Moto::start(), Some(QUEUE)).await;
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir().display());
    let endpoint = d.moto.endpoint();
    let job_env = [
        ("PATH", path.as_str()),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", super::moto::REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let mut args = vec![];
    for (name, _) in &job_env {
        args.extend(["--pass-env", name]);
    }
    let batch = Server::start_with_env(&args, &job_env);
    let client = batch.client();
    batch.setup(&client).await;
    let env =
        kv(&[("BATCHFAN_BACKEND", "aws"), ("BATCHFAN_TABLE", &d.table), ("BATCHFAN_BUCKET", &d.bucket)]);
    register_definitions(&client, &d.prefix, stages, Some(env), "256").await;
    (d, batch)
}

impl Deployed {
    /// `batchfan ARGS FLAGS` (the deployment's flags) with Batch on `batch`, to its end.
    fn on_aws(&self, batch: &Server, args: &[&str]) -> Output {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(self.flags());
        let mut cmd = self.command(&all);
        cmd.env("AWS_ENDPOINT_URL_BATCH", &batch.endpoint);
        finish(cmd.spawn().expect("run batchfan"), &all)
    }

    /// An object's bytes in moto's S3, if it is there.
    async fn object(&self, key: &str) -> Option<Vec<u8>> {
        let got = self.fx.s3.get_object().bucket(&self.bucket).key(key).send().await.ok()?;
        Some(got.body.collect().await.expect("the body").into_bytes().to_vec())
    }

    /// Every message delivered so far to `queue` (subscribed to a topic).
    async fn delivered(&self, queue: &str) -> Vec<batchfan::topic::Message> {
        let mut all = Vec::new();
        loop {
            let got = self.fx.receive(queue, Duration::from_secs(1)).await;
            if got.is_empty() {
                return all;
            }
            all.extend(got.into_iter().map(|d| d.message));
        }
    }
}

/// `jobs/orders.toml` with its confirm stage behind `flaky.sh`: child 2
/// fails while `faults/fail-2` exists — the cause a user fixes. The job
/// definitions' resources are small, the Orders rows go to `orders_table`.
fn flaky_orders(dir: &Path, orders_table: &str) -> PathBuf {
    let script = dir.join("flaky.sh");
    let fault = dir.join("faults/fail-2");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexport ORDERS_TABLE={orders_table}\n\
             if [ \"${{AWS_BATCH_JOB_ARRAY_INDEX:-0}}\" = 2 ] && [ -e {f} ]; then\n  \
             echo \"error: cannot confirm: {f} is in the way\" >&2\n  exit 1\nfi\nexec orders-confirm\n",
            f = fault.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let stock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/orders.toml")).unwrap();
    let text = stock
        .replace("command = [\"orders-confirm\"]", &format!("command = [{:?}]", script.display()))
        + "\n[defaults]\nvcpus = 1\nmemory = 256\n";
    assert!(text.contains("flaky.sh"), "orders.toml changed: {stock}");
    let spec = dir.join("orders.toml");
    std::fs::write(&spec, text).unwrap();
    spec
}

/// Every job log batch-api kept (for a failure's message).
fn job_logs(batch: &Server) -> String {
    let mut all = String::new();
    let root = batch.dir.path().join("state/logs");
    for job in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(job.path()).into_iter().flatten().flatten() {
            let body = std::fs::read_to_string(f.path()).unwrap_or_default();
            all.push_str(&format!("== {}\n{body}", f.path().display()));
        }
    }
    all
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_backend_aws_reruns_only_the_failed_orders_child_and_the_output_is_the_clean_runs() {
    let (d, batch) = world(&["confirm"]).await;
    let orders_table = "Orders-ops";
    d.fx.create_table(orders_table).await;
    let alerts = d.fx.subscribe_queue(&d.alerts_topic).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = flaky_orders(dir.path(), orders_table);
    std::fs::create_dir(dir.path().join("faults")).unwrap();
    std::fs::write(dir.path().join("faults/fail-2"), "").unwrap();
    let input = dir.path().join("orders.csv");
    let gen = Command::new(bin_dir().join("orders-gen"))
        .args(["--rows", "500", "--out", s(&input), "--malformed-every", "199"])
        .output()
        .unwrap();
    assert!(gen.status.success(), "{}", text(&gen.stderr));
    let run_args = [
        "run",
        s(&spec),
        "--input",
        s(&input),
        "--param",
        "lines_per_item=100",
        "--request-id",
        "ops-aws",
        "--output",
        "json",
        "-q",
    ];

    let first = d.on_aws(&batch, &[&run_args[..], &["--poll", "0.5"]].concat());
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    let first = json_of(&first);
    let run = first["run_id"].as_str().unwrap().to_owned();
    assert_eq!(first["state"], "FAILED", "{first}");
    assert_eq!(first["failure"]["index"], 2, "{first}\n{}", job_logs(&batch));
    assert_eq!(first["children"], 5);
    let published = d.delivered(&alerts).await;
    assert_eq!(published.len(), 1, "one failure alert: {published:?}");
    assert_eq!(published[0].attributes.get("kind").map(String::as_str), Some("failure"));
    // The failure cleanup kept what the retry reuses: the other children's outputs.
    let prefix = format!("runs/orders/{run}");
    for i in [0, 1, 3, 4] {
        let key = format!("{prefix}/confirm/{i:010}");
        assert!(d.object(&key).await.is_some(), "child {i}'s output s3://{}/{key} was deleted", d.bucket);
    }

    // Fix the cause, retry: only child 2 runs again.
    std::fs::remove_file(dir.path().join("faults/fail-2")).unwrap();
    let retry = ["retry", &run, "--spec", s(&spec), "--output", "json", "--poll", "0.5"];
    let retried = d.on_aws(&batch, &retry);
    assert_eq!(retried.status.code(), Some(0), "{}", text(&retried.stderr));
    let err = text(&retried.stderr);
    assert!(err.contains(&format!("run {run} attempt 2: rerunning confirm 1")), "{err}");
    let retried = json_of(&retried);
    assert_eq!(retried["state"], "SUCCEEDED", "{retried}");
    assert_eq!(retried["attempt"], 2);
    assert_eq!(retried["reruns"], serde_json::json!([1]), "only the failed child reran: {retried}");
    assert!(d.delivered(&alerts).await.is_empty(), "a successful retry alerts nobody");

    // What Batch ran for attempt 2: one plain confirm job for the one child.
    let status = d.on_aws(&batch, &["status", &run]);
    let listing = text(&status.stdout);
    assert!(listing.contains("attempt 2"), "{listing}");
    let line = listing
        .lines()
        .find(|l| l.starts_with(&format!("job orders-{run}_a2-confirm-0 ")))
        .unwrap_or_else(|| panic!("no attempt-2 confirm job: {listing}"));
    assert!(line.ends_with(": 1 SUCCEEDED"), "{line}");

    // The same request on the embedded backend, never failing: the same run id and bytes.
    let state = dir.path().join("clean");
    let clean = Command::new(env!("CARGO_BIN_EXE_batchfan"))
        .args(run_args)
        .args(["--state", s(&state)])
        .output()
        .unwrap();
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stderr));
    assert_eq!(json_of(&clean)["run_id"], run.as_str());
    let local =
        |name: &str| std::fs::read(state.join("buckets/batchfan-orders").join(&prefix).join(name)).ok();
    let output = d.object(&format!("{prefix}/output")).await.expect("the retried run's output");
    assert!(output.len() > 1000, "{} bytes", output.len());
    assert!(output == local("output").unwrap(), "the retried run's output differs from the clean run's");
    let rejects = d.object(&format!("{prefix}/rejects.csv")).await;
    assert!(rejects.is_some(), "the input has malformed rows: a rejects file is expected");
    assert_eq!(rejects, local("rejects.csv"), "rejects differ");
    // The success cleanup removed the scratch of both attempts.
    assert!(d.object(&format!("{prefix}/confirm/0000000000")).await.is_none());

    // A SUCCEEDED run is not retried.
    let again = d.on_aws(&batch, &retry);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("is SUCCEEDED"), "{}", text(&again.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_backend_aws_stops_running_and_waiting_jobs_once_with_one_notice() {
    let (d, batch) = world(&["work", "more"]).await;
    let alerts = d.fx.subscribe_queue(&d.alerts_topic).await;
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    // 4 children of 2 vCPUs on batch-api's 4: two run (until the gate opens), two wait RUNNABLE.
    let script = format!("echo started; while [ ! -e {} ]; do sleep 0.1; done", gate.display());
    let spec = dir.path().join("cnl.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"cnl\"\n[planner]\nstrategy = \"range\"\ncount = 4\n\
             [defaults]\nvcpus = 1\nmemory = 64\n\
             [[stages]]\nname = \"work\"\ncommand = [\"sh\", \"-c\", {script:?}]\nvcpus = 2\n\
             [[stages]]\nname = \"more\"\ncommand = [\"true\"]\n"
        ),
    )
    .unwrap();
    let submitted =
        d.on_aws(&batch, &["run", s(&spec), "--request-id", "c1", "--detach", "--output", "json"]);
    assert_eq!(submitted.status.code(), Some(0), "{}", text(&submitted.stderr));
    let submitted = json_of(&submitted);
    let run = submitted["run_id"].as_str().unwrap().to_owned();
    let work = submitted["jobs"][format!("cnl-{run}-work-0")].as_str().expect("the work array").to_owned();

    // Wait until two children run and two wait.
    let client = batch.client();
    let start = Instant::now();
    loop {
        let mut running = 0;
        for i in 0..4 {
            let child = describe(&client, &format!("{work}:{i}")).await;
            running += usize::from(child.status() == Some(&JobStatus::Running));
        }
        if running == 2 {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "two children never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let cancel = ["cancel", &run, "--spec", s(&spec), "--output", "json", "--poll", "0.5"];
    let out = d.on_aws(&batch, &cancel);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = json_of(&out);
    assert_eq!(v["state"], "CANCELLED", "{v}");
    // Every child ended FAILED: the running ones terminated, the waiting ones cancelled.
    for i in 0..4 {
        let child = describe(&client, &format!("{work}:{i}")).await;
        assert_eq!(child.status(), Some(&JobStatus::Failed), "child {i}: {child:?}");
    }
    assert!(!gate.exists(), "the children ended without the gate opening");

    // Idempotent: a second cancel changes nothing and publishes nothing.
    let again = d.on_aws(&batch, &cancel);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(json_of(&again)["state"], "CANCELLED");
    let published = d.delivered(&alerts).await;
    assert_eq!(published.len(), 1, "one notice, no failure alert: {published:?}");
    assert_eq!(published[0].attributes.get("kind").map(String::as_str), Some("cancelled"));
    assert!(published[0].subject.as_deref().unwrap_or_default().contains("cancelled"), "{published:?}");

    let status = d.on_aws(&batch, &["status", &run]);
    let listing = text(&status.stdout);
    assert!(listing.contains(": CANCELLED"), "{listing}");
    assert!(listing.contains(&format!("job cnl-{run}-work-0 ")) && listing.contains("4 FAILED"), "{listing}");
    let cleanup =
        listing.lines().find(|l| l.starts_with(&format!("job cnl-{run}-cleanup-onfailure "))).unwrap();
    assert!(cleanup.ends_with(": 1 SUCCEEDED"), "the failure cleanup ran: {listing}\n{}", job_logs(&batch));
}
