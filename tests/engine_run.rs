//! Running attempts on the local engine: retry rules, timeouts, the AWS_BATCH_*
//! environment, capacity, per-attempt logs, and commands that cannot start.

use crate::engine_support;

use std::collections::BTreeMap;

use batchfan::batch::{EvaluateOnExit, JobStatus, RetryAction, RetryStrategy, SubmitJob};
use engine_support::{sh, Harness};

fn with_retry(job: SubmitJob, strategy: RetryStrategy) -> SubmitJob {
    SubmitJob { retry_strategy: strategy, ..job }
}

#[tokio::test]
async fn exit_75_is_retried_with_the_attempt_number_incrementing() {
    let mut h = Harness::new().await;
    let d = h.d();
    let script =
        format!("echo $AWS_BATCH_JOB_ATTEMPT >> {d}/attempts; [ $AWS_BATCH_JOB_ATTEMPT -ge 3 ] || exit 75");
    let id = h.submit(with_retry(sh("tempfail", &script), RetryStrategy::batchfan_default(3))).await;
    let job = h.wait_done(&id).await;
    assert_eq!(job.status, JobStatus::Succeeded);
    let codes: Vec<_> = job.attempts.iter().map(|a| a.exit_code).collect();
    assert_eq!(codes, [Some(75), Some(75), Some(0)]);
    assert_eq!(std::fs::read_to_string(h.path("attempts")).unwrap(), "1\n2\n3\n");
    let runnable_again = h.statuses(&id).iter().filter(|s| **s == JobStatus::Runnable).count();
    assert_eq!(runnable_again, 3, "RUNNABLE once at submit and after each retried attempt");
}

#[tokio::test]
async fn exit_1_is_not_retried_under_default_rules() {
    let mut h = Harness::new().await;
    let id = h.submit(with_retry(sh("permanent", "exit 1"), RetryStrategy::batchfan_default(3))).await;
    let job = h.wait_done(&id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.attempts.len(), 1);
    assert_eq!(job.attempts[0].exit_code, Some(1));
    assert_eq!(job.status_reason.as_deref(), Some("Essential container in task exited"));
}

#[tokio::test]
async fn attempts_run_out() {
    let mut h = Harness::new().await;
    let id = h.submit(with_retry(sh("always75", "exit 75"), RetryStrategy::batchfan_default(2))).await;
    let job = h.wait_done(&id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.attempts.len(), 2, "exactly the 2 attempts allowed");
}

#[tokio::test]
async fn no_rule_matched_means_retry() {
    let mut h = Harness::new().await;
    let strategy = RetryStrategy {
        attempts: 2,
        evaluate_on_exit: vec![EvaluateOnExit {
            on_exit_code: Some("3".into()),
            action: RetryAction::Exit,
            ..Default::default()
        }],
    };
    let id = h.submit(with_retry(sh("exit4", "exit 4"), strategy.clone())).await;
    let exit3 = h.submit(with_retry(sh("exit3", "exit 3"), strategy)).await;
    assert_eq!(h.wait_done(&id).await.attempts.len(), 2, "exit 4 matches no rule: retried");
    assert_eq!(h.wait_done(&exit3).await.attempts.len(), 1, "exit 3 matches the EXIT rule");
}

#[tokio::test]
async fn timeout_sends_term_then_kill_after_the_grace_and_is_not_retried() {
    // time_scale 0.01: a 100 s timeout is 1 s, the 30 s grace 0.3 s.
    let mut h = Harness::new().await;
    let d = h.d();
    let stubborn = SubmitJob {
        timeout_seconds: Some(100),
        retry_strategy: RetryStrategy { attempts: 3, evaluate_on_exit: vec![] },
        ..sh("stubborn", &format!("trap 'echo term >> {d}/got' TERM; while true; do sleep 0.05; done"))
    };
    let plain = SubmitJob { timeout_seconds: Some(60), ..sh("plain", "exec sleep 30") };
    let (stubborn, plain) = (h.submit(stubborn).await, h.submit(plain).await);
    let job = h.wait_done(&stubborn).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.attempts.len(), 1, "a timed-out attempt is not retried");
    let attempt = &job.attempts[0];
    assert_eq!((attempt.exit_code, attempt.reason.as_deref()), (Some(137), Some("Signal 9")));
    assert_eq!(attempt.status_reason.as_deref(), Some("Job attempt duration exceeded timeout"));
    assert_eq!(job.status_reason.as_deref(), Some("Job attempt duration exceeded timeout"));
    assert!(std::fs::read_to_string(h.path("got")).unwrap().contains("term"), "SIGTERM came first");
    let ran_ms = attempt.stopped_at.unwrap() - attempt.started_at.unwrap();
    assert!(ran_ms >= 1250, "killed after timeout + grace (1300 ms), not before: {ran_ms} ms");
    let job = h.wait_done(&plain).await;
    assert_eq!(
        (job.attempts[0].exit_code, job.attempts[0].reason.as_deref()),
        (Some(143), Some("Signal 15"))
    );
}

#[tokio::test]
async fn jobs_get_the_aws_batch_environment() {
    let bin = tempfile::tempdir().unwrap();
    let tool = bin.path().join("my-tool");
    std::fs::write(&tool, "#!/bin/sh\necho tool-ran\n").unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let prefix = bin.path().to_path_buf();
    let mut h = Harness::with(|c| {
        c.queue_name = "jq".into();
        c.ce_name = "ce".into();
        c.path_prefix = vec![prefix];
        c.base_env =
            BTreeMap::from([("BASE_VAR".into(), "base".into()), ("OVERRIDDEN".into(), "base".into())]);
    })
    .await;
    let d = h.d();
    let dump = |name: &str| {
        format!("env | grep -E '^(AWS_BATCH|BASE_VAR|OWN_VAR|OVERRIDDEN)' | sort > {d}/{name}.$AWS_BATCH_JOB_ID.env; my-tool > {d}/{name}.tool")
    };
    let mut arr = SubmitJob { array_size: Some(2), ..sh("arr", &dump("arr")) };
    arr.container.environment =
        BTreeMap::from([("OWN_VAR".into(), "own".into()), ("OVERRIDDEN".into(), "job".into())]);
    let arr = h.submit(arr).await;
    let plain = h.submit(sh("plain", &dump("plain"))).await;
    assert_eq!(h.wait_done(&arr).await.status, JobStatus::Succeeded);
    assert_eq!(h.wait_done(&plain).await.status, JobStatus::Succeeded);
    for i in 0..2 {
        let env = std::fs::read_to_string(h.path(&format!("arr.{arr}:{i}.env"))).unwrap();
        let expected = format!(
            "AWS_BATCH_CE_NAME=ce\nAWS_BATCH_JOB_ARRAY_INDEX={i}\nAWS_BATCH_JOB_ARRAY_SIZE=2\nAWS_BATCH_JOB_ATTEMPT=1\n\
             AWS_BATCH_JOB_ID={arr}:{i}\nAWS_BATCH_JQ_NAME=jq\nBASE_VAR=base\nOVERRIDDEN=job\nOWN_VAR=own\n"
        );
        assert_eq!(env, expected);
    }
    let env = std::fs::read_to_string(h.path(&format!("plain.{plain}.env"))).unwrap();
    let expected = format!(
        "AWS_BATCH_CE_NAME=ce\nAWS_BATCH_JOB_ATTEMPT=1\nAWS_BATCH_JOB_ID={plain}\nAWS_BATCH_JQ_NAME=jq\nBASE_VAR=base\nOVERRIDDEN=base\n"
    );
    assert_eq!(env, expected, "a plain job has no array index");
    assert_eq!(
        std::fs::read_to_string(h.path("plain.tool")).unwrap(),
        "tool-ran\n",
        "path_prefix is searched"
    );
}

#[tokio::test]
async fn never_more_processes_than_capacity_and_parallel_up_to_it() {
    let mut h = Harness::with(|c| c.vcpus = 2.0).await;
    let d = h.d();
    // Each child counts the markers of children running with it.
    let script = format!(
        "touch {d}/run.$AWS_BATCH_JOB_ARRAY_INDEX; sleep 0.3; ls {d} | grep -c '^run\\.' >> {d}/counts; \
         rm {d}/run.$AWS_BATCH_JOB_ARRAY_INDEX"
    );
    let id = h.submit(SubmitJob { array_size: Some(6), ..sh("cap", &script) }).await;
    assert_eq!(h.wait_done(&id).await.status, JobStatus::Succeeded);
    let counts: Vec<u32> =
        std::fs::read_to_string(h.path("counts")).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(counts.len(), 6);
    assert!(counts.iter().all(|&c| c <= 2), "more than 2 ran at once: {counts:?}");
    assert!(counts.contains(&2), "2 should run at once: {counts:?}");
}

#[tokio::test]
async fn each_attempt_has_its_own_log_file() {
    let mut h = Harness::new().await;
    let script = "echo out-$AWS_BATCH_JOB_ATTEMPT; echo err-$AWS_BATCH_JOB_ATTEMPT >&2; [ $AWS_BATCH_JOB_ATTEMPT = 2 ] || exit 75";
    let id = h.submit(with_retry(sh("logs", script), RetryStrategy::batchfan_default(2))).await;
    let job = h.wait_done(&id).await;
    assert_eq!(job.status, JobStatus::Succeeded);
    for (n, attempt) in job.attempts.iter().enumerate() {
        let n = n as u32 + 1;
        let path = h.engine.log_path(&id, n);
        assert_eq!(attempt.log_stream_name.as_deref(), Some(path.to_str().unwrap()));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("out-{n}\nerr-{n}\n"));
    }
}

/// Output goes through a pipe the engine copies to the log (engine::output):
/// an attempt that prints nothing makes no file, and an attempt's log is
/// whole by the time its status says it ended.
#[tokio::test]
async fn a_log_is_complete_when_its_attempt_ends_and_absent_when_nothing_was_printed() {
    let mut h = Harness::new().await;
    let quiet = h.submit(sh("quiet", "true")).await;
    // 4 MiB, far more than a pipe holds: copied in many reads after the writer is done.
    let loud = h.submit(sh("loud", "head -c 4194304 /dev/zero | tr '\\0' x; echo; echo last")).await;
    assert_eq!(h.wait_done(&quiet).await.status, JobStatus::Succeeded);
    let path = h.engine.log_path(&quiet, 1);
    assert!(!path.exists(), "nothing printed, no log file: {}", path.display());
    let job = h.wait_done(&loud).await;
    assert_eq!(job.status, JobStatus::Succeeded);
    let log = std::fs::read_to_string(h.engine.log_path(&loud, 1)).unwrap();
    assert_eq!(log.len(), 4 * 1024 * 1024 + "\nlast\n".len(), "every byte, at SUCCEEDED");
    assert!(log.ends_with("x\nlast\n"));
}

/// A process that left the job's group and keeps its output open does not
/// hold the attempt's end back for long (engine::output::DRAIN_WAIT).
#[tokio::test]
async fn an_escaped_process_holding_the_output_delays_the_end_only_briefly() {
    let mut h = Harness::new().await;
    let d = h.d();
    // It has left the group (setsid) before the job ends, so the end's group kill misses it.
    let script = format!(
        "setsid sh -c 'echo $$ > {d}/escaped.tmp; mv {d}/escaped.tmp {d}/escaped; exec sleep 60' & \
         while [ ! -e {d}/escaped ]; do sleep 0.01; done; echo started"
    );
    let id = h.submit(sh("escaped", &script)).await;
    let started = std::time::Instant::now();
    let job = h.wait_done(&id).await;
    let took = started.elapsed();
    let escaped = std::fs::read_to_string(h.path("escaped")).unwrap();
    let _ = std::process::Command::new("kill").arg(escaped.trim()).status();
    assert_eq!(job.status, JobStatus::Succeeded);
    assert!(
        took < std::time::Duration::from_secs(30),
        "ended after {took:?}, not when the escaped sleep did"
    );
    assert!(took >= output_drain_wait(), "it waited for the output first: {took:?}");
    assert_eq!(std::fs::read_to_string(h.engine.log_path(&id, 1)).unwrap(), "started\n");
}

/// `engine::output::DRAIN_WAIT` (private to the engine).
fn output_drain_wait() -> std::time::Duration {
    std::time::Duration::from_secs(2)
}

#[tokio::test]
async fn a_missing_command_fails_naming_the_command() {
    let mut h = Harness::new().await;
    let mut job = sh("missing", "");
    job.container.command = vec!["batchfan-no-such-command".into(), "arg".into()];
    job.retry_strategy = RetryStrategy::batchfan_default(3);
    let id = h.submit(job).await;
    let job = h.wait_done(&id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.attempts.len(), 1, "CannotStartContainerError is not retried by default");
    let reason = job.status_reason.unwrap();
    assert!(reason.starts_with("CannotStartContainerError"), "{reason}");
    assert!(reason.contains("batchfan-no-such-command"), "{reason}");
    assert_eq!(job.attempts[0].exit_code, None);
    // Not executable: the OS error is named.
    let mut job = sh("noexec", "");
    job.container.command = vec![h.path("noexec").display().to_string()];
    std::fs::write(h.path("noexec"), "not a program").unwrap();
    let id = h.submit(job).await;
    let reason = h.wait_done(&id).await.status_reason.unwrap();
    assert!(reason.contains("noexec") && reason.contains("Permission denied"), "{reason}");
}
