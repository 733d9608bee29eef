//! A local attempt is a container-like process (issue 13): exactly the
//! container's environment, a fresh private working directory, and its
//! `memory` enforced as AWS's OOM killer would. Each test pins one way a job
//! used to pass locally and fail on AWS.

use crate::batch_api_support;
use crate::engine_support;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use batchfan::batch::{EvaluateOnExit, JobStatus, RetryAction, RetryStrategy, SubmitJob};
use engine_support::{sh, Harness};

const OOM: &str = "OutOfMemoryError: Container killed due to memory usage";

/// A job running `argv` directly (no shell adding variables of its own).
fn exec(name: &str, argv: &[&str]) -> SubmitJob {
    let mut job = sh(name, "");
    job.container.command = argv.iter().map(|s| s.to_string()).collect();
    job
}

/// `NAME=value` lines of an `env` dump, sorted.
fn env_lines(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// A variable of this test process that the engine must not pass on (any but the container's own).
fn some_host_variable() -> (String, String) {
    std::env::vars()
        .find(|(k, v)| {
            !matches!(k.as_str(), "PATH" | "HOME" | "TMPDIR" | "OWN" | "BATCHFAN_BACKEND")
                && !k.starts_with("AWS_BATCH")
                && !v.contains('\n')
        })
        .expect("the test process has some environment variable")
}

// Regression (issue 13): the job saw the developer's whole environment.
#[tokio::test]
async fn a_job_sees_exactly_the_container_environment() {
    let (host_var, host_value) = some_host_variable();
    let passed = host_var.clone();
    let mut h = Harness::with(|c| {
        c.queue_name = "jq".into();
        c.ce_name = "ce".into();
        c.base_env = BTreeMap::from([("BATCHFAN_BACKEND".into(), "local".into())]);
        c.pass_env = vec![passed, "BATCHFAN_SURELY_UNSET_VARIABLE".into()];
    })
    .await;
    let mut arr = SubmitJob { array_size: Some(3), ..exec("arr", &["env"]) };
    arr.container.environment = BTreeMap::from([("OWN".into(), "own".into())]);
    let arr = h.submit(arr).await;
    assert_eq!(h.wait_done(&arr).await.status, JobStatus::Succeeded);
    let work = h.dir.path().join("state").join("work");
    let child = format!("{arr}:1");
    let got = env_lines(&h.engine.log_path(&child, 1));
    let home = work.join(format!("{arr}.1.1"));
    let mut expected = vec![
        "AWS_BATCH_CE_NAME=ce".to_string(),
        "AWS_BATCH_JOB_ARRAY_INDEX=1".into(),
        "AWS_BATCH_JOB_ARRAY_SIZE=3".into(),
        "AWS_BATCH_JOB_ATTEMPT=1".into(),
        format!("AWS_BATCH_JOB_ID={child}"),
        "AWS_BATCH_JQ_NAME=jq".into(),
        "BATCHFAN_BACKEND=local".into(),
        format!("HOME={}", home.display()),
        "OWN=own".into(),
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        format!("TMPDIR={}", home.join("tmp").display()),
        format!("{host_var}={host_value}"),
    ];
    expected.sort();
    assert_eq!(got, expected, "nothing else of the host: only pass_env's {host_var}");
}

// Regression (issue 13): a relative path or a file another job wrote into the shared cwd worked locally.
#[tokio::test]
async fn each_attempt_runs_in_a_fresh_private_directory_removed_afterwards() {
    let mut h = Harness::new().await;
    let d = h.d();
    let script = format!(
        "pwd -P > {d}/$AWS_BATCH_JOB_ARRAY_INDEX.pwd; ls -A > {d}/$AWS_BATCH_JOB_ARRAY_INDEX.ls; \
         echo mine > shared-file; stat -c %a . > {d}/$AWS_BATCH_JOB_ARRAY_INDEX.mode"
    );
    let arr = h.submit(SubmitJob { array_size: Some(2), ..sh("dirs", &script) }).await;
    assert_eq!(h.wait_done(&arr).await.status, JobStatus::Succeeded);
    let pwd0 = std::fs::read_to_string(h.path("0.pwd")).unwrap();
    let pwd1 = std::fs::read_to_string(h.path("1.pwd")).unwrap();
    assert_ne!(pwd0, pwd1, "each child has its own directory");
    for i in 0..2 {
        assert_eq!(
            std::fs::read_to_string(h.path(&format!("{i}.ls"))).unwrap(),
            "tmp\n",
            "empty but for tmp/"
        );
        assert_eq!(std::fs::read_to_string(h.path(&format!("{i}.mode"))).unwrap().trim(), "700");
    }
    assert!(!Path::new(pwd0.trim()).exists(), "removed once the attempt ended");
    let cwd = std::env::current_dir().unwrap();
    assert!(!cwd.join("shared-file").exists(), "never the caller's directory");
}

#[tokio::test]
async fn keep_workdirs_keeps_them_for_debugging() {
    let mut h = Harness::with(|c| c.keep_workdirs = true).await;
    let id = h.submit(sh("kept", "echo evidence > left-behind")).await;
    assert_eq!(h.wait_done(&id).await.status, JobStatus::Succeeded);
    let dir = h.dir.path().join("state").join("work").join(format!("{id}.1"));
    assert_eq!(std::fs::read_to_string(dir.join("left-behind")).unwrap(), "evidence\n");
}

/// A job of `memory_mib` that allocates and touches `hold_mib`, then holds it for 30 s.
fn hog(name: &str, memory_mib: u64, hold_mib: u64) -> SubmitJob {
    let script = format!("python3 -c 'import time; b = bytearray({hold_mib} * 1024 * 1024); time.sleep(30)'");
    let mut job = sh(name, &script);
    job.container.memory_mib = memory_mib;
    job
}

// Regression (issue 13): a child declared with memory = 64 held 150 MB and SUCCEEDED.
#[tokio::test]
async fn a_job_over_its_memory_is_killed_as_aws_does() {
    let mut h = Harness::new().await;
    let id = h.submit(hog("hog", 64, 150)).await;
    let job = h.wait_done(&id).await;
    assert_eq!(job.status, JobStatus::Failed);
    let attempt = &job.attempts[0];
    assert_eq!(attempt.exit_code, Some(137));
    assert_eq!(attempt.reason.as_deref(), Some(OOM));
    assert_eq!(attempt.status_reason.as_deref(), Some("Essential container in task exited"));
}

#[tokio::test]
async fn the_retry_rules_see_the_out_of_memory_reason() {
    let mut h = Harness::new().await;
    let exit_on_oom = EvaluateOnExit {
        on_reason: Some("OutOfMemoryError*".into()),
        action: RetryAction::Exit,
        ..Default::default()
    };
    let mut stopped = hog("stopped", 64, 150);
    stopped.retry_strategy = RetryStrategy { attempts: 2, evaluate_on_exit: vec![exit_on_oom] };
    let mut retried = hog("retried", 64, 150);
    retried.retry_strategy = RetryStrategy { attempts: 2, evaluate_on_exit: Vec::new() };
    let (stopped, retried) = (h.submit(stopped).await, h.submit(retried).await);
    let stopped = h.wait_done(&stopped).await;
    assert_eq!((stopped.status, stopped.attempts.len()), (JobStatus::Failed, 1), "EXIT on OutOfMemoryError*");
    let retried = h.wait_done(&retried).await;
    assert_eq!((retried.status, retried.attempts.len()), (JobStatus::Failed, 2), "no rule matched: retried");
}

#[tokio::test]
async fn memory_within_the_limit_is_fine() {
    let mut h = Harness::new().await;
    let script = "python3 -c 'b = bytearray(150 * 1024 * 1024)'";
    let mut job = sh("fits", script);
    job.container.memory_mib = 512;
    let id = h.submit(job).await;
    assert_eq!(h.wait_done(&id).await.status, JobStatus::Succeeded);
}

// Regression (issue 11 item 3): a job submitted through `batchfan batch-api` saw the server's environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_submitted_through_the_api_sees_only_its_container_environment() {
    use aws_sdk_batch::types::{ContainerOverrides, KeyValuePair};
    let (host_var, _) = some_host_variable();
    let server = batch_api_support::Server::start();
    let client = server.client();
    server.setup(&client).await;
    batch_api_support::register_sh(&client, "envdump", "env > Ref::dir/env", &server.out()).await;
    let own = KeyValuePair::builder().name("OWN").value("own").build();
    let job = client
        .submit_job()
        .job_name("env")
        .job_queue(batch_api_support::QUEUE)
        .job_definition("envdump")
        .container_overrides(ContainerOverrides::builder().environment(own).build())
        .send()
        .await
        .expect("submit");
    let done = batch_api_support::wait_done(&client, job.job_id().unwrap()).await;
    assert_eq!(done.status(), Some(&aws_sdk_batch::types::JobStatus::Succeeded));
    let text = std::fs::read_to_string(server.out().join("env")).unwrap();
    // What the shell itself adds is not the engine's doing.
    let names: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| !matches!(*k, "PWD" | "OLDPWD" | "SHLVL" | "_"))
        .collect();
    let expected: BTreeSet<&str> = [
        "AWS_BATCH_CE_NAME",
        "AWS_BATCH_JOB_ATTEMPT",
        "AWS_BATCH_JOB_ID",
        "AWS_BATCH_JQ_NAME",
        "HOME",
        "OWN",
        "PATH",
        "TMPDIR",
    ]
    .into();
    assert_eq!(names, expected, "not the server's {host_var} nor anything else of its environment");
}
