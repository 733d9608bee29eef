//! Issue 14 item 3: `batchfan logs --backend aws` reads a child's attempts
//! from CloudWatch Logs (moto), where `batchfan batch-api --logs-url` ships
//! them, for a run submitted by `run --backend aws` (DynamoDB, S3, SNS on
//! moto; Batch on batch-api, which runs the jobs): the last attempt, one
//! `--attempt`, `--output json`, and `--follow` while the child runs.

use std::{path::Path, process::Output, time::Instant};

use serde_json::Value;

use super::{
    batch_api_support::{describe, register_sh, Server, DEADLINE, QUEUE},
    deploy_stores, finish, json_of, Deployed,
};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `range` pipeline of 2 children whose stage prints its index and attempt,
/// fails child 1's first attempt with 75 (retried), and waits for `gate`.
fn write_spec(dir: &Path, gate: &Path) -> String {
    let script = format!(
        "echo child $AWS_BATCH_JOB_ARRAY_INDEX attempt $AWS_BATCH_JOB_ATTEMPT; \
         if [ $AWS_BATCH_JOB_ARRAY_INDEX = 1 ] && [ $AWS_BATCH_JOB_ATTEMPT = 1 ]; then exit 75; fi; \
         while [ ! -e {} ]; do sleep 0.05; done; echo done",
        gate.display()
    );
    let spec = dir.join("cwl.toml");
    let text = format!(
        "name = \"cwl\"\n[planner]\nstrategy = \"range\"\ncount = 2\n\
         [[stages]]\nname = \"work\"\ncommand = [\"sh\", \"-c\", {script:?}]\nvcpus = 1\nmemory = 64\n\
         [stages.retry]\nattempts = 2\n[aggregation]\ncommand = [\"true\"]\nvcpus = 1\nmemory = 64\n\
         [cleanup]\ncommand = [\"true\"]\nvcpus = 1\nmemory = 64\n"
    );
    std::fs::write(&spec, text).unwrap();
    spec.to_string_lossy().into_owned()
}

impl Deployed {
    /// `batchfan ARGS FLAGS` with Batch calls sent to `batch`.
    fn on_batch_api(&self, batch: &Server, args: &[&str]) -> std::process::Command {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(self.flags());
        let mut cmd = self.command(&all);
        cmd.env("AWS_ENDPOINT_URL_BATCH", &batch.endpoint);
        cmd
    }

    fn logs(&self, batch: &Server, args: &[&str]) -> Output {
        let all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        finish(self.on_batch_api(batch, &[&["logs"], args].concat()).spawn().unwrap(), &all)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_backend_aws_reads_cloudwatch_follows_a_retried_child_and_picks_attempts() {
    let d = deploy_stores(super::Moto::start(), Some(QUEUE)).await;
    let batch = Server::start_with(&["--logs-url", &d.moto.endpoint()]);
    let client = batch.client();
    batch.setup(&client).await;
    for what in ["work", "aggregation", "cleanup", "barrier"] {
        let name = batchfan::deploy::job_definition_name(&d.prefix, what);
        register_sh(&client, &name, "true", &batch.out()).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let spec = write_spec(dir.path(), &gate);
    let submit = ["run", &spec, "--request-id", "cw-1", "--detach", "--output", "json"];
    let out = finish(d.on_batch_api(&batch, &submit).spawn().unwrap(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = json_of(&out);
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let parent = run["jobs"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(name, _)| name.ends_with("-work-0"))
        .and_then(|(_, id)| id.as_str())
        .unwrap_or_else(|| panic!("a work job: {run}"))
        .to_owned();

    // Child 1 failed its first attempt and runs its second, held by the gate.
    let child = format!("{parent}:1");
    let start = Instant::now();
    loop {
        let job = describe(&client, &child).await;
        let running = job.status().is_some_and(|s| s.as_str() == "RUNNING");
        if running && job.attempts().len() == 1 {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "child 1 never ran a second attempt: {job:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut follow =
        d.on_batch_api(&batch, &["logs", &run_id, "work", "1", "--follow", "--poll", "0.2"]).spawn().unwrap();
    // The child cannot end before the gate opens, so neither can the follower.
    assert!(follow.try_wait().unwrap().is_none(), "--follow ended while the child runs");
    std::fs::write(&gate, "").unwrap();
    let followed = finish(follow, &[]);
    let err = text(&followed.stderr);
    assert_eq!(followed.status.code(), Some(0), "the child SUCCEEDED: {err}");
    assert_eq!(text(&followed.stdout), "child 1 attempt 1\nchild 1 attempt 2\ndone\n", "{err}");
    assert!(err.contains(":1 attempt 1 (CloudWatch Logs /aws/batch/job "), "{err}");
    assert!(err.contains(":1 attempt 2 ("), "{err}");

    let last = d.logs(&batch, &[&run_id, "work", "1"]);
    assert_eq!(text(&last.stdout), "child 1 attempt 2\ndone\n", "{}", text(&last.stderr));
    let first = d.logs(&batch, &[&run_id, "work", "1", "--attempt", "1"]);
    assert_eq!(text(&first.stdout), "child 1 attempt 1\n", "{}", text(&first.stderr));
    let json = d.logs(&batch, &[&run_id, "work", "0", "--output", "json"]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let lines: Vec<Value> = text(&json.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let got: Vec<(u64, &str)> =
        lines.iter().map(|l| (l["attempt"].as_u64().unwrap(), l["line"].as_str().unwrap())).collect();
    assert_eq!(got, [(1, "child 0 attempt 1"), (1, "done")]);
    assert_eq!(lines[0]["job_id"], format!("{parent}:0"));
}
