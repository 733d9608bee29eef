//! Issue 13: the monitor must not assume what AWS does not document — here,
//! that an array parent FAILS only after all its children ended. A Batch
//! port over the real engine reports chosen jobs FAILED early (as AWS may:
//! the parent and its cascade), while the children keep their own statuses.

use super::*;
use crate::parent_fails_early::{wait_status, ParentFailsEarly};

const GATED: &str = r#"
name = "gate"
[planner]
strategy = "range"
count = 3
[[stages]]
name = "one"
command = ["sh", "-c", "[ \"$AWS_BATCH_JOB_ARRAY_INDEX\" = 0 ] && exit 1; while [ ! -e GATE ]; do sleep 0.05; done"]
[aggregation]
command = ["true"]
[cleanup]
command = ["true"]
[alerts]
topic = "gate-alerts"
[storage]
bucket = "batchfan-gate"
"#;

/// The event AWS would send for `d` (as the monitor sees it).
fn event(d: &JobDetail) -> JobStateChange {
    JobStateChange {
        job_name: d.job_name.clone(),
        job_id: d.job_id.clone(),
        status: d.status,
        attempts: d.attempts.clone(),
        depends_on: d.depends_on.clone(),
        array_properties: d.array_properties.clone(),
        tags: d.tags.clone(),
        ..JobStateChange::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_array_parent_failed_while_children_run_makes_the_cleanup_wait() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate-file");
    let toml = GATED.replace("GATE", &gate.display().to_string());
    let spec = spec::load_str(&toml, "gate.toml", dir.path()).expect("valid spec");
    let options = LocalOptions { vcpus: Some(8.0), memory_mib: Some(8192), ..LocalOptions::default() };
    let backend = LocalBackend::open(&dir.path().join("state"), options).await.unwrap();
    let early = Arc::new(ParentFailsEarly::new(backend.ports.batch.clone()));
    let ports = batchfan::run::Ports { batch: early.clone(), ..backend.ports.clone() };
    let run_id = planner::plan(&ports, &spec, TriggerEvent { pipeline: "gate".into(), ..trigger("gate") })
        .await
        .unwrap()
        .run_id;
    let rec = submit::submit(&ports, &spec, &run_id, "s1").await.unwrap();
    let id_of = |suffix: &str| {
        rec.jobs.iter().find(|(name, _)| name.ends_with(suffix)).map(|(_, id)| id.clone()).unwrap()
    };
    let (stage, agg, cleanup) = (id_of("-one-0"), id_of("-aggregate"), id_of("-cleanup"));
    let monitor = Monitor::new(ports.clone(), [spec.clone()]);

    // Child 0 fails; children 1 and 2 run on. AWS may already say: parent FAILED, and its cascade.
    let child0 = wait_status(early.as_ref(), &format!("{stage}:0"), JobStatus::Failed).await;
    wait_status(early.as_ref(), &format!("{stage}:1"), JobStatus::Running).await;
    early.fail([stage.clone(), agg.clone(), cleanup.clone()]);
    monitor.on_event(&event(&child0)).await.unwrap();
    let cleanup_failed = early.describe_jobs(std::slice::from_ref(&cleanup)).await.unwrap().remove(0);
    assert!(cleanup_failed.attempts.is_empty());
    monitor.on_event(&event(&cleanup_failed)).await.unwrap();

    let store = RunStore::new(ports.table.as_ref(), &spec.storage.table);
    let onfailure = JobQuery::ByName {
        queue: spec.job_queue.clone(),
        pattern: batchfan::graph::job_name(&spec.name, &run_id, "cleanup-onfailure"),
    };
    assert!(ports.batch.list_jobs(&onfailure).await.unwrap().is_empty(), "cleanup ran while children run");
    let waiting = store.get(&run_id).await.unwrap().unwrap();
    assert!(waiting.times.contains_key("cleanup_waiting"), "{:?}", waiting.times);
    assert_eq!(waiting.failure.as_ref().map(|f| f.index), Some(Some(0)), "the root failure alerted");
    assert!(!waiting.state.is_terminal());

    // The children end: the next reconciliation (or terminal event) submits the cleanup, once.
    std::fs::write(&gate, "").unwrap();
    for i in [1, 2] {
        let child = wait_status(early.as_ref(), &format!("{stage}:{i}"), JobStatus::Succeeded).await;
        monitor.on_event(&event(&child)).await.unwrap();
    }
    monitor.reconcile(&spec.name, &run_id).await.unwrap();
    assert_eq!(ports.batch.list_jobs(&onfailure).await.unwrap().len(), 1, "one failure cleanup");
    let done = store.get(&run_id).await.unwrap().unwrap();
    assert!(!done.times.contains_key("cleanup_waiting"), "{:?}", done.times);
    backend.engine.shutdown(ShutdownMode::Abandon).await;
}

/// Issue 13: "a dependency failed" comes from the dependencies' own statuses
/// (DescribeJobs), never from the words of a status reason. A job that FAILED
/// without running, whose reason mentions a dependency while its dependency
/// has not failed (here: stopped by someone), is the run's root failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_a_cascade_only_if_a_dependency_failed_whatever_its_reason_says() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate-file");
    let toml = GATED.replace("GATE", &gate.display().to_string()).replace("exit 1;", "true;");
    let spec = spec::load_str(&toml, "gate.toml", dir.path()).expect("valid spec");
    let options = LocalOptions { vcpus: Some(8.0), memory_mib: Some(8192), ..LocalOptions::default() };
    let backend = LocalBackend::open(&dir.path().join("state"), options).await.unwrap();
    let ports = backend.ports.clone();
    let run_id = planner::plan(&ports, &spec, TriggerEvent { pipeline: "gate".into(), ..trigger("gate") })
        .await
        .unwrap()
        .run_id;
    let rec = submit::submit(&ports, &spec, &run_id, "s1").await.unwrap();
    let agg =
        rec.jobs.iter().find(|(name, _)| name.ends_with("-aggregate")).map(|(_, id)| id.clone()).unwrap();
    let monitor = Monitor::new(ports.clone(), [spec.clone()]);

    // The stage's children wait at the gate: the aggregation's dependency has not failed.
    let pending = ports.batch.describe_jobs(std::slice::from_ref(&agg)).await.unwrap().remove(0);
    assert!(pending.attempts.is_empty() && !pending.status.is_terminal(), "{:?}", pending.status);
    let mut stopped = event(&pending);
    stopped.status = JobStatus::Failed;
    stopped.status_reason = Some("Dependent job stopped by an operator".into());
    monitor.on_event(&stopped).await.unwrap();

    let store = RunStore::new(ports.table.as_ref(), &spec.storage.table);
    let failed = store.get(&run_id).await.unwrap().unwrap();
    let failure = failed.failure.as_ref().expect("the stopped aggregation is the run's failure, alerted");
    assert_eq!((failure.stage.as_str(), failure.job_id.as_str()), ("aggregation", agg.as_str()));
    std::fs::write(&gate, "").unwrap();
    backend.engine.shutdown(ShutdownMode::Abandon).await;
}
