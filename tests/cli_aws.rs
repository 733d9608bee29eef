//! `batchfan run --backend aws` and `batchfan status --backend aws` against a
//! moto server (the SDK's `AWS_ENDPOINT_URL` pointing at it): planning and
//! submission from "a laptop", jobs on (moto's) AWS Batch, the run followed
//! to its end and read back.

use crate::aws_fixtures;
use crate::batch_api_support;
#[path = "cli_aws/logs.rs"]
mod logs;
use crate::moto;
#[path = "cli_aws/ops.rs"]
mod ops;

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use aws_fixtures::Fixtures;
use moto::Moto;
use serde_json::Value;

/// Longest a command may take before the test gives up on it (a guard, not an assertion on time).
const GUARD: Duration = Duration::from_secs(240);

pub(crate) struct Deployed {
    pub(crate) moto: Moto,
    pub(crate) fx: Fixtures,
    pub(crate) table: String,
    bucket: String,
    queue: String,
    pub(crate) prefix: String,
    plan_topic: String,
    alerts_topic: String,
}

/// The table, bucket and topics on `moto`, for jobs on `queue` and definitions named `{prefix}{what}`.
pub(crate) async fn deploy_stores(moto: Moto, queue: Option<&str>) -> Deployed {
    let fx = Fixtures::new(&moto.sdk_config());
    let suffix = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let (table, bucket) = (format!("batchfan-{suffix}"), format!("runs-{suffix}"));
    fx.create_table(&table).await;
    fx.create_bucket(&bucket).await;
    let plan_topic = fx.create_topic(&format!("cli-plan-{suffix}")).await;
    let alerts_topic = fx.create_topic(&format!("cli-alerts-{suffix}")).await;
    let queue = match queue {
        Some(q) => q.to_owned(),
        None => fx.batch_queue(&moto).await.0,
    };
    let prefix = format!("cli-{suffix}-");
    Deployed { moto, fx, table, bucket, queue, prefix, plan_topic, alerts_topic }
}

async fn deploy(stages: &[&str]) -> Deployed {
    let d = deploy_stores(Moto::start(), None).await;
    register_definitions(&d.fx.batch, &d.prefix, stages, None, "512").await;
    d
}

/// Registers job definitions `{prefix}{what}` for each stage and the
/// aggregation, cleanup and barrier: 1 vCPU, `memory` MiB, and `env` (the
/// static variables the Terraform module's definitions carry) when given.
pub(crate) async fn register_definitions(
    client: &aws_sdk_batch::Client,
    prefix: &str,
    stages: &[&str],
    env: Option<Vec<aws_sdk_batch::types::KeyValuePair>>,
    memory: &str,
) {
    use aws_sdk_batch::types::{ContainerProperties, JobDefinitionType, ResourceRequirement, ResourceType};
    let res = |t, v: &str| ResourceRequirement::builder().r#type(t).value(v).build();
    for what in stages.iter().chain(&["aggregation", "cleanup", "barrier"]) {
        client
            .register_job_definition()
            .job_definition_name(batchfan::deploy::job_definition_name(prefix, what))
            .r#type(JobDefinitionType::Container)
            .container_properties(
                ContainerProperties::builder()
                    .image("batchfan-jobs:latest")
                    .command("true")
                    .set_environment(env.clone())
                    .resource_requirements(res(ResourceType::Vcpu, "1"))
                    .resource_requirements(res(ResourceType::Memory, memory))
                    .build(),
            )
            .send()
            .await
            .expect("register job definition");
    }
}

impl Deployed {
    pub(crate) fn flags(&self) -> Vec<String> {
        [
            ("--backend", "aws"),
            ("--table", &self.table),
            ("--bucket", &self.bucket),
            ("--job-queue", &self.queue),
            ("--job-definition-prefix", &self.prefix),
            ("--plan-topic-arn", &self.plan_topic),
            ("--alerts-topic-arn", &self.alerts_topic),
        ]
        .iter()
        .flat_map(|(k, v)| [k.to_string(), v.to_string()])
        .collect()
    }

    /// Runs `batchfan ARGS` with the SDK pointed at the moto server.
    fn batchfan(&self, args: &[String]) -> Output {
        finish(self.command(args).spawn().expect("run batchfan"), args)
    }

    /// `batchfan ARGS` with the SDK pointed at the moto server, stdout and stderr piped.
    pub(crate) fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_batchfan"));
        cmd.args(args)
            .env("AWS_ENDPOINT_URL", self.moto.endpoint())
            .env("AWS_REGION", moto::REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("BATCHFAN_BACKEND")
            .env_remove("BATCHFAN_TABLE")
            .env_remove("BATCHFAN_JOB_QUEUE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

/// Waits for `child` (`batchfan ARGS`) to end, killing it after [`GUARD`].
pub(crate) fn finish(mut child: std::process::Child, args: &[String]) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > GUARD {
            let _ = child.kill();
            panic!("batchfan {args:?} did not finish within {GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

fn write_pipeline(dir: &Path) -> (String, String) {
    let spec = dir.join("cli.toml");
    std::fs::write(
        &spec,
        "name = \"cli\"\n[planner]\nstrategy = \"lines\"\nlines_per_item = 2\nheader = true\n\
         [[stages]]\nname = \"square\"\ncommand = [\"square\"]\n",
    )
    .unwrap();
    let input = dir.join("numbers.csv");
    let rows: String = (0..7).map(|i| format!("{i}\n")).collect();
    std::fs::write(&input, format!("n\n{rows}")).unwrap();
    (spec.to_string_lossy().into_owned(), input.to_string_lossy().into_owned())
}

pub(crate) fn json_of(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}): {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_backend_aws_submits_the_graph_follows_it_and_status_reads_it() {
    let d = deploy(&["square"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (spec, input) = write_pipeline(dir.path());
    let mut args: Vec<String> = ["run", &spec, "--input", &input, "--output", "json", "--poll", "0.5"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(d.flags());
    let out = d.batchfan(&args);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let run = json_of(&out);
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    assert_eq!(run["state"], "SUCCEEDED", "moto's Batch succeeds every job: {run}");
    assert_eq!(run["children"], 4);
    let jobs = run["jobs"].as_object().unwrap();
    let mut names: Vec<&str> = jobs.keys().map(String::as_str).collect();
    names.sort();
    let expected: Vec<String> =
        ["aggregate", "cleanup", "square-0"].iter().map(|s| format!("cli-{run_id}-{s}")).collect();
    assert_eq!(names, expected);

    // What AWS has: the array of 4 on the stage's job definition, the input uploaded.
    let square_id = jobs[&format!("cli-{run_id}-square-0")].as_str().unwrap();
    let described = d.fx.batch.describe_jobs().jobs(square_id).send().await.unwrap().jobs.unwrap();
    assert_eq!(described[0].array_properties.as_ref().and_then(|a| a.size), Some(4));
    assert!(described[0].job_definition.as_deref().unwrap().contains(&format!("{}square", d.prefix)));
    let uploaded = d.fx.s3.list_objects_v2().bucket(&d.bucket).prefix("inputs/").send().await.unwrap();
    let keys: Vec<String> = uploaded.contents().iter().filter_map(|o| o.key.clone()).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].ends_with("/numbers.csv"), "{keys:?}");

    // The same command again is the same run, already finished.
    let again = d.batchfan(&args);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(json_of(&again)["run_id"], run_id.as_str());

    let status_args: Vec<String> =
        ["status", &run_id, "--backend", "aws", "--table", &d.table, "--output", "json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let status = d.batchfan(&status_args);
    assert_eq!(status.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&status.stderr));
    let rec = json_of(&status);
    assert_eq!(rec["run_id"], run_id.as_str());
    assert_eq!(rec["state"], "SUCCEEDED");
    assert_eq!(rec["jobs"].as_object().unwrap().len(), 3);

    let text =
        d.batchfan(&["status".into(), "--backend".into(), "aws".into(), "--table".into(), d.table.clone()]);
    let listing = String::from_utf8_lossy(&text.stdout);
    assert!(listing.contains(&run_id) && listing.contains("SUCCEEDED"), "{listing}");
    let one = d.batchfan(&[
        "status".into(),
        run_id.clone(),
        "--backend".into(),
        "aws".into(),
        "--table".into(),
        d.table.clone(),
    ]);
    let one = String::from_utf8_lossy(&one.stdout);
    assert!(one.contains(&format!("job cli-{run_id}-square-0")) && one.contains("4 SUCCEEDED"), "{one}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_backend_aws_detached_returns_once_submitted() {
    let d = deploy(&["square"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (spec, input) = write_pipeline(dir.path());
    let mut args: Vec<String> = ["run", &spec, "--input", &input, "--output", "json", "--detach"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(d.flags());
    let out = d.batchfan(&args);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let run = json_of(&out);
    assert_eq!(run["state"], "SUBMITTED");
    assert_eq!(run["jobs"].as_object().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_backend_aws_names_what_is_missing() {
    let d = deploy(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (spec, input) = write_pipeline(dir.path());
    let args: Vec<String> = ["run", &spec, "--input", &input, "--backend", "aws", "--job-queue", &d.queue]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = d.batchfan(&args);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--job-definition-prefix (or BATCHFAN_JOB_DEFINITION_PREFIX)"), "{err}");
    assert!(err.contains("--plan-topic-arn (or BATCHFAN_PLAN_TOPIC_ARN)"), "{err}");
    assert!(!err.contains("--job-queue (or"), "the queue was given: {err}");
    let mut args: Vec<String> =
        ["run", &spec, "--input", "s3://nowhere-bucket/none.csv"].iter().map(|s| s.to_string()).collect();
    args.extend(d.flags());
    let out = d.batchfan(&args);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("s3://nowhere-bucket/none.csv"), "{err}");
}

/// `run --backend aws --detach` of a `range` pipeline of `stages` N_TO_N
/// stages and 1,000-child shards; returns the run's JSON.
fn run_range(d: &Deployed, dir: &Path, stages: &[&str], count: u64, items_per_child: u64) -> Value {
    let spec = dir.join(format!("fan{}.toml", stages.len()));
    let mut text =
        String::from("name = \"fan\"\nmax_array_size = 1000\n[planner]\nstrategy = \"range\"\ncount = 10\n");
    for s in stages {
        text.push_str(&format!("[[stages]]\nname = \"{s}\"\ncommand = [\"true\"]\n"));
    }
    std::fs::write(&spec, text).unwrap();
    let mut args: Vec<String> = [
        "run".to_owned(),
        spec.to_string_lossy().into_owned(),
        "--param".into(),
        format!("count={count}"),
        "--param".into(),
        format!("items_per_child={items_per_child}"),
        "--request-id".into(),
        format!("calls-{}-{count}-{items_per_child}", stages.len()),
        "--output".into(),
        "json".into(),
        "--detach".into(),
    ]
    .into();
    args.extend(d.flags());
    let out = d.batchfan(&args);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    json_of(&out)
}

/// The calls `batchfan cost --output json` predicts for the trigger (planner) and submit phases.
fn predicted_calls(d: &Deployed, spec: &Path, items: u64, per: u64) -> BTreeMap<String, u64> {
    let args: Vec<String> = [
        "cost".to_owned(),
        spec.to_string_lossy().into_owned(),
        "--items".into(),
        items.to_string(),
        "--items-per-child".into(),
        per.to_string(),
        "--output".into(),
        "json".into(),
    ]
    .into();
    let out = d.batchfan(&args);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let estimate = json_of(&out);
    let mut sum = BTreeMap::new();
    for phase in estimate["phases"].as_array().unwrap() {
        let name = phase["name"].as_str().unwrap();
        if name.starts_with("trigger") || name.starts_with("submit") {
            for (kind, n) in phase["calls"].as_object().unwrap() {
                *sum.entry(kind.clone()).or_insert(0) += n.as_u64().unwrap();
            }
        }
    }
    sum
}

fn calls(run: &Value, kind: &str) -> u64 {
    run["api_calls"][kind]["calls"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_job_calls_grow_with_stages_and_shards_not_with_items() {
    let d = deploy(&["a", "b"]).await;
    let dir = tempfile::tempdir().unwrap();
    // (planned items, items per child, expected children, expected shards)
    let cases: [(u64, u64, u64, u64); 3] =
        [(10, 1, 10, 1), (10_000, 1, 10_000, 10), (1_000_000, 100, 10_000, 10)];
    let mut seen = Vec::new();
    for (items, per, children, shards) in cases {
        for stages in [&["a"][..], &["a", "b"][..]] {
            let run = run_range(&d, dir.path(), stages, items, per);
            eprintln!("{items} items, {} stage(s): {}", stages.len(), run["api_calls"]);
            assert_eq!(run["children"], children, "{run}");
            let jobs = run["jobs"].as_object().unwrap().len() as u64;
            let expected = stages.len() as u64 * shards + 2; // + aggregation + cleanup
            assert_eq!(jobs, expected, "{run}");
            assert_eq!(calls(&run, "Batch.SubmitJob"), expected, "one SubmitJob per job: {run}");
            // A range run stores no work items: its children compute theirs.
            assert_eq!(calls(&run, "DynamoDB.BatchWriteItem"), 0, "{run}");
            assert_eq!(calls(&run, "SNS.Publish"), 1, "{run}");
            // `batchfan cost` predicts what the planner and submitter call, kind by kind.
            let spec = dir.path().join(format!("fan{}.toml", stages.len()));
            let predicted = predicted_calls(&d, &spec, items, per);
            let measured: BTreeMap<String, u64> = run["api_calls"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v["calls"].as_u64().unwrap()))
                .collect();
            assert_eq!(measured, predicted, "measured vs `batchfan cost`");
            seen.push((items, stages.len(), run));
        }
    }
    // A hundred times the items in the same children: the same calls of every kind.
    let of = |items: u64, stages: usize| &seen.iter().find(|s| s.0 == items && s.1 == stages).unwrap().2;
    for stages in [1, 2] {
        let (ten_k, million) = (of(10_000, stages), of(1_000_000, stages));
        let kinds: Vec<&String> = ten_k["api_calls"].as_object().unwrap().keys().collect();
        for kind in kinds {
            assert_eq!(calls(ten_k, kind), calls(million, kind), "{kind}: {ten_k} vs {million}");
        }
    }
}

/// Issue 10 finding 1 on AWS: a local input is uploaded once to
/// `inputs/{sha256}/{name}` with its hash in the object's metadata; an object
/// there that does not record that hash is refused until `--fresh`, and a
/// request id whose run was started from other content refuses to resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_backend_aws_uploads_a_local_input_once_under_its_content_hash() {
    use sha2::{Digest, Sha256};
    let d = deploy(&["square"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (spec, input) = write_pipeline(dir.path());
    let content = std::fs::read(&input).unwrap();
    let sha = hex::encode(Sha256::digest(&content));
    let key = format!("inputs/{sha}/numbers.csv");
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = ["run", &spec, "--input", &input, "--output", "json", "--detach"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect();
        args.extend(d.flags());
        d.batchfan(&args)
    };

    let first = run(&["--request-id", "up-1"]);
    assert_eq!(first.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(calls(&json_of(&first), "S3.PutObject"), 1, "{}", json_of(&first));
    let head =
        d.fx.s3.head_object().bucket(&d.bucket).key(&key).send().await.expect("uploaded under its hash");
    assert_eq!(head.metadata().and_then(|m| m.get("sha256")), Some(&sha), "the hash is in the metadata");
    let body = d.fx.s3.get_object().bucket(&d.bucket).key(&key).send().await.unwrap().body;
    assert_eq!(body.collect().await.unwrap().into_bytes().to_vec(), content);

    // Another run of the same file: the object is there and says so, nothing is uploaded.
    let second = run(&["--request-id", "up-2"]);
    assert_eq!(second.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&second.stderr));
    let v = json_of(&second);
    assert_eq!(calls(&v, "S3.PutObject"), 0, "uploaded once: {v}");
    let heads = calls(&json_of(&first), "S3.HeadObject");
    assert_eq!(calls(&v, "S3.HeadObject"), heads, "the same HEADs as the first run, no more: {v}");

    // Other bytes under the name, without the hash: refused, then replaced by --fresh.
    d.fx.s3
        .put_object()
        .bucket(&d.bucket)
        .key(&key)
        .body(b"tampered\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let refused = run(&["--request-id", "up-3"]);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains(&format!("s3://{}/{key}", d.bucket)) && err.contains("--fresh"), "{err}");
    let fresh = run(&["--fresh"]);
    assert_eq!(fresh.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&fresh.stderr));
    let body = d.fx.s3.get_object().bucket(&d.bucket).key(&key).send().await.unwrap().body;
    assert_eq!(
        body.collect().await.unwrap().into_bytes().to_vec(),
        content,
        "--fresh uploaded the file again"
    );

    // The file changes: its request id's run was started from the old content.
    std::fs::write(&input, "n\n1\n2\n").unwrap();
    let changed = run(&["--request-id", "up-1"]);
    assert_eq!(changed.status.code(), Some(2));
    let err = String::from_utf8_lossy(&changed.stderr);
    assert!(err.contains("restore the file") && err.contains(&sha), "{err}");
}
