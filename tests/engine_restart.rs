//! Persistence and restart recovery: jobs survive the engine, and an attempt a
//! dead engine left running counts, as AWS counts an attempt whose host was
//! lost: it is retried (once whatever is left of it is gone) only if attempts
//! remain and the retry rules allow it, else the job FAILS with AWS's reason.

use crate::engine_support;

use std::{path::Path, process::Command, time::Duration};

use batchfan::{
    batch::{Batch, JobQuery, JobStatus, RetryStrategy, SubmitJob},
    engine::{LocalEngine, ShutdownMode},
};
use engine_support::{config, sh, wait_file, DEADLINE};

const HOST_LOST: &str = "Host EC2 (local engine restart) terminated.";
const HELPER_ENV: &str = "BATCHFAN_TEST_RESTART_HELPER_DIR";

/// A job that holds an exclusive lock while it runs (exit 7 if it cannot get
/// it: another run of it is still alive) and marks its start and end.
fn locked_job(d: &Path) -> SubmitJob {
    let d = d.display();
    sh(
        "locked",
        &format!(
            "flock -n -E 7 {d}/lock sh -c 'echo start-$AWS_BATCH_JOB_ATTEMPT >> {d}/runs; touch {d}/ready; \
             sleep 1; echo end >> {d}/runs'"
        ),
    )
}

async fn wait_done(engine: &LocalEngine, id: &str) -> batchfan::batch::JobDetail {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let job = engine.describe_jobs(&[id.to_string()]).await.unwrap().remove(0);
        if job.status.is_terminal() {
            return job;
        }
        assert!(std::time::Instant::now() < deadline, "{id} not done: {:?}", job.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_rerun_once_without_overlap(d: &Path, job: &batchfan::batch::JobDetail) {
    assert_eq!(job.status, JobStatus::Succeeded, "the re-run got the lock: no overlap ({job:?})");
    assert_eq!(job.attempts.len(), 2);
    assert_eq!(job.attempts[0].status_reason.as_deref(), Some(HOST_LOST));
    assert_eq!(job.attempts[0].exit_code, None);
    assert_eq!(job.attempts[1].exit_code, Some(0));
    let runs = std::fs::read_to_string(d.join("runs")).unwrap();
    assert_eq!(runs, "start-1\nstart-2\nend\n", "the lost attempt counts: the re-run is attempt 2");
}

#[tokio::test]
async fn abandoned_attempts_count_and_are_retried_by_the_rules_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let engine = LocalEngine::open(config(&state)).await.unwrap();
    let job = SubmitJob { retry_strategy: RetryStrategy::batchfan_default(2), ..locked_job(dir.path()) };
    let id = engine.submit_job(job).await.unwrap().job_id;
    wait_file(&dir.path().join("ready")).await;
    engine.shutdown(ShutdownMode::Abandon).await;
    drop(engine);
    let engine = LocalEngine::open(config(&state)).await.unwrap();
    let job = wait_done(&engine, &id).await;
    assert_rerun_once_without_overlap(dir.path(), &job);
    engine.shutdown(ShutdownMode::Drain).await;
}

/// Run by `killed_engine_...` in a child process: opens the engine, starts the
/// locked job, says so, and waits to be killed.
#[tokio::test]
#[ignore = "helper: runs only inside killed_engine_under_a_single_attempt_job_fails_it_as_a_lost_host"]
async fn restart_helper_engine() {
    // Not a test on its own: run alone (`--ignored`), it has nothing to do and says so.
    let dir = std::env::var_os(HELPER_ENV).unwrap_or_else(|| {
        panic!("restart_helper_engine is killed_engine_under_a_single_attempt_job_fails_it_as_a_lost_host's helper: it needs {HELPER_ENV}, which that test sets")
    });
    let dir = Path::new(&dir);
    let engine = LocalEngine::open(config(&dir.join("state"))).await.unwrap();
    let id = engine.submit_job(locked_job(dir)).await.unwrap().job_id;
    std::fs::write(dir.join("job_id"), &id).unwrap();
    wait_file(&dir.join("ready")).await;
    std::fs::write(dir.join("helper_ready"), "").unwrap();
    tokio::time::sleep(DEADLINE).await;
}

// Regression (issue 13): a lost attempt was free, so an `attempts = 1` job ran again.
#[tokio::test]
async fn killed_engine_under_a_single_attempt_job_fails_it_as_a_lost_host() {
    let dir = tempfile::tempdir().unwrap();
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name("restart_helper_engine").as_str(), "--ignored", "--nocapture"])
        .env(HELPER_ENV, dir.path())
        .spawn()
        .unwrap();
    wait_file(&dir.path().join("helper_ready")).await;
    // kill -9: the engine gets no chance to clean up. Its job's `flock` dies with
    // it (parent-death signal) but flock's child shell, holding the lock, lives on.
    helper.kill().unwrap();
    helper.wait().unwrap();
    let id = std::fs::read_to_string(dir.path().join("job_id")).unwrap();
    let engine = LocalEngine::open(config(&dir.path().join("state"))).await.unwrap();
    let job = wait_done(&engine, &id).await;
    assert_eq!(job.status, JobStatus::Failed, "attempts = 1 and that attempt was lost: {job:?}");
    assert_eq!(job.status_reason.as_deref(), Some(HOST_LOST));
    assert_eq!(job.attempts.len(), 1);
    assert_eq!(job.attempts[0].status_reason.as_deref(), Some(HOST_LOST));
    assert_eq!(job.attempts[0].exit_code, None);
    assert!(job.attempts[0].started_at.is_some(), "it had reached RUNNING");
    let runs = std::fs::read_to_string(dir.path().join("runs")).unwrap();
    assert_eq!(runs, "start-1\n", "never run again, and what was left of it is gone (no end)");
    engine.shutdown(ShutdownMode::Drain).await;
}

#[tokio::test]
async fn jobs_survive_a_drained_shutdown_and_continue_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut cfg = config(&state);
    cfg.vcpus = 1.0;
    let engine = LocalEngine::open(cfg.clone()).await.unwrap();
    let d = dir.path().display();
    let script = format!("touch {d}/started.$AWS_BATCH_JOB_ARRAY_INDEX; sleep 0.2");
    let arr =
        engine.submit_job(SubmitJob { array_size: Some(3), ..sh("persist-arr", &script) }).await.unwrap();
    wait_file(&dir.path().join("started.0")).await;
    engine.shutdown(ShutdownMode::Drain).await;
    assert!(!dir.path().join("started.1").exists(), "drain starts nothing new");
    let engine = LocalEngine::open(cfg).await.unwrap();
    let child0 = engine.describe_jobs(&[format!("{}:0", arr.job_id)]).await.unwrap().remove(0);
    assert_eq!(child0.status, JobStatus::Succeeded, "drain waited for the running child");
    let parent = wait_done(&engine, &arr.job_id).await;
    assert_eq!(parent.status, JobStatus::Succeeded);
    let listed = engine
        .list_jobs(&JobQuery::ByName { queue: "local".into(), pattern: "persist-*".into() })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].job_id, arr.job_id);
    engine.shutdown(ShutdownMode::Drain).await;
}

/// The libtest name of `test` in this file (`FILE::test`: each file is a
/// module of the one integration-test binary).
fn test_name(test: &str) -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{test}")
}
