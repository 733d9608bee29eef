//! The run lifecycle on the local ports: idempotent planning, exactly-once
//! submission under redelivery, and one alert per run under duplicate events.

use std::{
    collections::BTreeMap,
    future::Future as _,
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use async_trait::async_trait;
use batchfan::{
    backend::{LocalBackend, LocalOptions},
    batch::{
        event::ContainerDetail, Attempt, Batch, JobDetail, JobQuery, JobStateChange, JobStatus, JobSummary,
        SubmitJob, SubmittedJob,
    },
    engine::ShutdownMode,
    error::{PortError, PortResult},
    run::{monitor::Monitor, planner, submit, RunState, RunStore, TriggerEvent, TriggerSource},
    spec::{self, PipelineSpec},
};

#[path = "run_lifecycle/upstream.rs"]
mod upstream;

const SPEC: &str = r#"
name = "life"
[planner]
strategy = "range"
count = 30
[[stages]]
name = "one"
command = ["sleep", "30"]
[[stages]]
name = "two"
command = ["true"]
[aggregation]
command = ["true"]
[cleanup]
command = ["true"]
[alerts]
topic = "life-alerts"
[storage]
bucket = "batchfan-life"
"#;

fn spec(dir: &Path) -> PipelineSpec {
    spec::load_str(SPEC, "life.toml", dir).expect("valid spec")
}

fn trigger(key: &str) -> TriggerEvent {
    TriggerEvent {
        pipeline: "life".into(),
        source: TriggerSource::Manual,
        idempotency_key: key.into(),
        input: None,
        params: BTreeMap::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_triggers_and_deliveries_make_one_run_and_one_set_of_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path());
    let backend = LocalBackend::open(&dir.path().join("state"), LocalOptions::default()).await.unwrap();
    let ports = backend.ports.clone();

    // The same trigger three times: one run.
    let a = planner::plan(&ports, &spec, trigger("k1")).await.unwrap();
    let b = planner::plan(&ports, &spec, trigger("k1")).await.unwrap();
    let c = planner::plan(&ports, &spec, trigger("k1")).await.unwrap();
    assert_eq!(a.run_id, b.run_id);
    assert_eq!(b.run_id, c.run_id);
    assert_eq!(c.state, RunState::Planned);
    let store = RunStore::new(ports.table.as_ref(), "batchfan");
    assert_eq!(store.list_runs(Some("life")).await.unwrap(), vec![a.run_id.clone()]);
    // A range run stores no work item: child i computes units i × per.. from BATCHFAN_RANGE.
    assert!(store.work_item(&a.run_id, 0).await.unwrap().is_none());
    let sizing = a.sizing.unwrap();
    let item = |i| batchfan::plan::range_item(sizing.units, sizing.items_per_child, i);
    assert_eq!(item(29).unwrap().units, vec![serde_json::json!(29)]);
    assert!(item(30).is_none());

    // A submitter that died after submitting only the first stage: a redelivery
    // submits the rest, and further redeliveries submit nothing.
    let graph = batchfan::graph::build(&spec, &a.run_id, &a.sizing.unwrap()).unwrap();
    let first = graph.nodes[0].to_submit(&spec, |_| None).unwrap();
    ports.batch.submit_job(first).await.unwrap();
    for owner in ["s1", "s1", "s2"] {
        submit::submit(&ports, &spec, &a.run_id, owner).await.unwrap();
    }
    let pattern = format!("life-{}-*", a.run_id);
    let jobs =
        ports.batch.list_jobs(&JobQuery::ByName { queue: spec.job_queue.clone(), pattern }).await.unwrap();
    let mut names: Vec<String> = jobs.iter().map(|j| j.job_name.clone()).collect();
    names.sort();
    let mut expected: Vec<String> = graph.nodes.iter().map(|n| n.name.clone()).collect();
    expected.sort();
    assert_eq!(names, expected, "each job submitted exactly once");
    let rec = store.get(&a.run_id).await.unwrap().unwrap();
    assert_eq!(rec.state, RunState::Submitted);
    assert_eq!(rec.jobs.len(), graph.nodes.len());

    // Another submitter holding the lease blocks a second one until it expires.
    let lease_run = planner::plan(&ports, &spec, trigger("k2")).await.unwrap();
    store
        .update(&lease_run.run_id, |r| {
            r.lease = Some(batchfan::run::record::Lease { owner: "other".into(), until: i64::MAX });
            true
        })
        .await
        .unwrap();
    let err = submit::submit(&ports, &spec, &lease_run.run_id, "me").await.unwrap_err();
    assert!(err.retryable(), "{err}");
    assert!(err.to_string().contains("other"), "{err}");

    // The same FAILED event three times (and a cascade failure): one alert.
    let monitor = Monitor::new(ports.clone(), [spec.clone()]);
    let mut tags = BTreeMap::new();
    tags.insert("batchfan:run".to_owned(), a.run_id.clone());
    tags.insert("batchfan:pipeline".to_owned(), "life".to_owned());
    tags.insert("batchfan:role".to_owned(), "stage".to_owned());
    tags.insert("batchfan:stage".to_owned(), "one".to_owned());
    let failed = JobStateChange {
        job_arn: String::new(),
        job_name: format!("life-{}-one-0", a.run_id),
        job_id: "x:4".into(),
        job_queue: String::new(),
        status: JobStatus::Failed,
        status_reason: Some("Essential container in task exited".into()),
        attempts: vec![Attempt {
            exit_code: Some(2),
            reason: None,
            status_reason: None,
            log_stream_name: None,
            started_at: None,
            stopped_at: None,
        }],
        created_at: None,
        started_at: None,
        stopped_at: None,
        retry_strategy: None,
        depends_on: vec![],
        job_definition: String::new(),
        parameters: BTreeMap::new(),
        container: ContainerDetail { exit_code: Some(2), ..Default::default() },
        array_properties: Some(batchfan::batch::ArrayProperties { index: Some(4), ..Default::default() }),
        tags: tags.clone(),
        propagate_tags: None,
    };
    let mut cascade = failed.clone();
    cascade.attempts.clear();
    cascade.status_reason = Some("Dependent Job failed".into());
    for ev in [&failed, &cascade, &failed, &failed] {
        monitor.on_event(ev).await.unwrap();
    }
    let rec = store.get(&a.run_id).await.unwrap().unwrap();
    let f = rec.failure.expect("failure recorded");
    assert_eq!((f.stage.as_str(), f.index, f.exit_code), ("one", Some(4), Some(2)));
    assert!(rec.alerted);
    backend.bus.wait_idle().await;
    let alerts = backend.bus.messages("life-alerts").await.unwrap();
    assert_eq!(alerts.len(), 1, "one alert for duplicated events");
    assert_eq!(alerts[0].message.attributes["run_id"], a.run_id);

    // The cleanup's end makes the run terminal and wakes whoever listens on
    // `finished` (`Service::wait`) then, not at its next poll; an event that
    // finishes nothing wakes no one.
    let finished = monitor.finished().notified();
    tokio::pin!(finished);
    finished.as_mut().enable();
    let mut running = failed.clone();
    running.status = JobStatus::Running;
    monitor.on_event(&running).await.unwrap();
    let woken = |f: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>| {
        let waker = std::task::Waker::noop();
        f.poll(&mut std::task::Context::from_waker(waker)).is_ready()
    };
    assert!(!woken(finished.as_mut()), "a RUNNING event finishes no run");
    let mut cleanup = failed.clone();
    cleanup.job_name = format!("life-{}-cleanup", a.run_id);
    cleanup.job_id = "cleanup-1".into();
    cleanup.status = JobStatus::Succeeded;
    cleanup.array_properties = None;
    cleanup.tags.insert("batchfan:role".to_owned(), "cleanup".to_owned());
    monitor.on_event(&cleanup).await.unwrap();
    assert_eq!(store.get(&a.run_id).await.unwrap().unwrap().state, RunState::Failed);
    assert!(woken(finished.as_mut()), "the run's end wakes its waiters");
    backend.engine.shutdown(ShutdownMode::Abandon).await;
}

/// A Batch port whose first SubmitJob of the job named `trip` creates the job
/// and then fails as a timed-out call does on AWS (`Unavailable`).
struct TimesOutAfterCreating {
    inner: Arc<dyn Batch>,
    trip: String,
    tripped: AtomicBool,
}

#[async_trait]
impl Batch for TimesOutAfterCreating {
    async fn submit_job(&self, request: SubmitJob) -> PortResult<SubmittedJob> {
        let name = request.job_name.clone();
        let out = self.inner.submit_job(request).await?;
        if name == self.trip && !self.tripped.swap(true, Ordering::SeqCst) {
            return Err(PortError::unavailable(format!("batch SubmitJob {name}: timed out")));
        }
        Ok(out)
    }
    async fn describe_jobs(&self, job_ids: &[String]) -> PortResult<Vec<JobDetail>> {
        self.inner.describe_jobs(job_ids).await
    }
    async fn list_jobs(&self, query: &JobQuery) -> PortResult<Vec<JobSummary>> {
        self.inner.list_jobs(query).await
    }
    async fn cancel_job(&self, job_id: &str, reason: &str) -> PortResult<()> {
        self.inner.cancel_job(job_id, reason).await
    }
    async fn terminate_job(&self, job_id: &str, reason: &str) -> PortResult<()> {
        self.inner.terminate_job(job_id, reason).await
    }
}

/// Issue 10: SubmitJob has no idempotency token, so a transient error after
/// which the job may exist is not resent: the submit step fails retryably and
/// its retry reconciles by name, submitting each job once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_that_fails_after_creating_the_job_is_reconciled_by_name_not_resent() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path());
    let backend = LocalBackend::open(&dir.path().join("state"), LocalOptions::default()).await.unwrap();
    let run = planner::plan(&backend.ports, &spec, trigger("k-timeout")).await.unwrap();
    let graph = batchfan::graph::build(&spec, &run.run_id, &run.sizing.unwrap()).unwrap();
    let trip = graph.nodes[1].name.clone();
    let flaky = TimesOutAfterCreating {
        inner: backend.ports.batch.clone(),
        trip: trip.clone(),
        tripped: false.into(),
    };
    let ports = batchfan::run::Ports { batch: Arc::new(flaky), ..backend.ports.clone() };

    let err = submit::submit(&ports, &spec, &run.run_id, "lambda-1").await.unwrap_err();
    assert!(err.retryable() && err.to_string().contains(&trip), "{err}");
    // The retry (same invocation id, so it takes over its own lease).
    let rec = submit::submit(&ports, &spec, &run.run_id, "lambda-1").await.unwrap();
    assert_eq!(rec.state, RunState::Submitted);

    let pattern = format!("life-{}-*", run.run_id);
    let jobs =
        ports.batch.list_jobs(&JobQuery::ByName { queue: spec.job_queue.clone(), pattern }).await.unwrap();
    let mut names: Vec<String> = jobs.iter().map(|j| j.job_name.clone()).collect();
    names.sort();
    let mut expected: Vec<String> = graph.nodes.iter().map(|n| n.name.clone()).collect();
    expected.sort();
    assert_eq!(names, expected, "each job exists once: {trip} was not sent again");
    assert_eq!(rec.jobs.len(), graph.nodes.len());
    assert_eq!(rec.jobs.get(&trip), jobs.iter().find(|j| j.job_name == trip).map(|j| &j.job_id));
    backend.engine.shutdown(ShutdownMode::Abandon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_rows_have_expired_is_not_retried_and_its_rows_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path());
    let backend = LocalBackend::open(&dir.path().join("state"), LocalOptions::default()).await.unwrap();
    let ports = backend.ports.clone();
    let run = planner::plan(&ports, &spec, trigger("old")).await.unwrap();
    let store = RunStore::of(ports.table.as_ref(), &spec);
    // A result stored 15 days ago by a run that then failed: past the default 14 scratch days.
    let result = batchfan::run::ChildResult { items: 1, ..Default::default() };
    store.put_result(&run.run_id, "one", 0, &result).await.unwrap();
    let day = 86_400_000;
    let now = batchfan::run::record::now_ms();
    store
        .update(&run.run_id, |r| {
            r.state = RunState::Failed;
            r.created_at = now - 15 * day;
            true
        })
        .await
        .unwrap();
    let err = batchfan::run::retry::start(&ports, &spec, &run.run_id).await.unwrap_err().to_string();
    assert!(err.contains("expired") && err.contains("scratch_days = 14"), "{err}");
    assert_eq!(store.results(&run.run_id, "one").await.unwrap().len(), 1, "a refused retry deletes nothing");

    // The local sweep (DynamoDB's TTL on AWS) deletes the rows 14 days after the run's last write, once.
    assert_eq!(store.sweep_expired("life", now + 13 * day).await.unwrap(), 0);
    assert_eq!(store.sweep_expired("life", now + 15 * day).await.unwrap(), 1);
    assert!(store.results(&run.run_id, "one").await.unwrap().is_empty());
    let swept = store.get(&run.run_id).await.unwrap().unwrap();
    assert!(swept.times.contains_key(batchfan::run::record::SCRATCH_EXPIRED), "{:?}", swept.times);
    assert_eq!(
        store.sweep_expired("life", now + 15 * day).await.unwrap(),
        0,
        "a swept run is not looked at again"
    );
    backend.engine.shutdown(ShutdownMode::Drain).await;
}
