//! End to end on a moto server: the trigger handler (a recorded S3 event) →
//! planner → SNS (read back from an SQS queue subscribed to the plan topic) →
//! the submit handler → jobs on AWS Batch, asserted through the AWS API; the
//! same deliveries repeated, a submitter killed mid-graph and retried, and the
//! alert path with recorded `aws.batch` events.

use crate::common;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use async_trait::async_trait;
use aws_sdk_batch::types::ArrayJobDependency;
use batchfan::{
    batch::{Batch, JobDetail, JobQuery, JobSummary, SubmitJob, SubmittedJob},
    error::{PortError, PortResult},
    run::{RunError, RunState, RunStore},
};
use batchfan_dispatchers::{alert, submit, trigger, DispatchError};
use common::{fixtures::fixture, world::World};
use serde_json::Value;

const NOW: i64 = 1_795_413_600;

/// Plans the recorded S3 event's first object (7 data rows → 4 children) and
/// returns the run id with the SNS event the submitter gets.
async fn planned(w: &World) -> (String, aws_lambda_events::sns::SnsEvent) {
    w.put_csv("in/orders 2026-11-23.csv", 7).await;
    let ctx = w.trigger_context().await;
    let out = trigger::handle(&ctx, w.s3_event_of(0), "invoke-1", NOW).await.expect("planned");
    let run_id = out["runs"][0]["run_id"].as_str().expect("a run id").to_owned();
    let delivered = w.delivered(&w.plan_probe, 1).await;
    assert_eq!(delivered.len(), 1, "one RunPlanned on the plan topic");
    (run_id, w.sns_event(&delivered[0]))
}

/// The jobs of a run of 4 children: one array per stage, aggregation, cleanup.
fn node_names(run_id: &str) -> Vec<String> {
    ["parse-0", "load-0", "aggregate", "cleanup"].iter().map(|s| format!("orders-{run_id}-{s}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_event_to_array_jobs_chained_n_to_n_on_batch() {
    let w = World::start().await;
    let (run_id, sns) = planned(&w).await;
    let delivered: batchfan::run::planner::RunPlanned =
        serde_json::from_str(&sns.records[0].sns.message).unwrap();
    assert_eq!(delivered.run_id, run_id);
    assert_eq!(sns.records[0].sns.message_attributes["run_id"].value, run_id);

    let d = w.dispatcher().await;
    let out = submit::handle(&d, sns, "submit-1").await.expect("submitted");
    assert_eq!(out["runs"][0]["state"], "SUBMITTED");

    let jobs = w.jobs_named(&format!("orders-{run_id}-")).await;
    let by_name: BTreeMap<String, String> =
        jobs.iter().map(|j| (j.job_name.clone().unwrap(), j.job_id.clone().unwrap())).collect();
    let mut names: Vec<String> = by_name.keys().cloned().collect();
    names.sort();
    let mut expected = node_names(&run_id);
    expected.sort();
    assert_eq!(names, expected);
    let details = w.describe(&by_name.values().cloned().collect::<Vec<_>>()).await;
    let detail = |suffix: &str| {
        let name = format!("orders-{run_id}-{suffix}");
        details
            .iter()
            .find(|j| j.job_name.as_deref() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name}"))
    };
    let id = |suffix: &str| by_name[&format!("orders-{run_id}-{suffix}")].clone();
    let parse = detail("parse-0");
    assert_eq!(parse.array_properties.as_ref().and_then(|a| a.size), Some(4), "7 rows, 2 per child");
    assert_eq!(
        parse.job_definition.as_deref().map(|d| d.contains(&format!("{}parse", w.prefix))),
        Some(true)
    );
    assert!(parse.depends_on.as_ref().is_none_or(|d| d.is_empty()));
    let load = detail("load-0");
    assert_eq!(load.array_properties.as_ref().and_then(|a| a.size), Some(4));
    let deps = load.depends_on.clone().unwrap_or_default();
    assert_eq!(deps.len(), 1);
    assert_eq!(deps[0].job_id.as_deref(), Some(id("parse-0").as_str()));
    assert_eq!(deps[0].r#type, Some(ArrayJobDependency::NToN));
    let agg = detail("aggregate");
    assert!(agg.array_properties.is_none(), "the aggregation is a plain job");
    let deps = agg.depends_on.clone().unwrap_or_default();
    assert_eq!(deps.iter().map(|d| d.job_id.clone().unwrap()).collect::<Vec<_>>(), [id("load-0")]);
    assert_ne!(deps[0].r#type, Some(ArrayJobDependency::NToN), "the aggregation waits for the whole array");
    let cleanup = detail("cleanup");
    let deps = cleanup.depends_on.clone().unwrap_or_default();
    assert_eq!(deps.iter().map(|d| d.job_id.clone().unwrap()).collect::<Vec<_>>(), [id("aggregate")]);
    assert!(cleanup.job_definition.as_deref().unwrap().contains(&format!("{}cleanup", w.prefix)));
    // Container overrides carry pointers only; the command comes from the spec.
    let env: BTreeMap<String, String> = load
        .container
        .as_ref()
        .and_then(|c| c.environment.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|kv| (kv.name.unwrap_or_default(), kv.value.unwrap_or_default()))
        .collect();
    // A first attempt of a `lines` run (its input an S3 object) carries every
    // override but the retry's rerun marker and a `range` run's size.
    for name in batchfan::deploy::JOB_OVERRIDE_ENV {
        let expected = ![batchfan::env::RERUN, batchfan::env::RANGE].contains(name);
        assert_eq!(env.contains_key(*name), expected, "{name} in {env:?}");
    }
    assert!(!env.contains_key(batchfan::env::TABLE) && !env.contains_key(batchfan::env::BUCKET), "{env:?}");
    assert_eq!(env[batchfan::env::RUN], run_id);
    assert_eq!(env[batchfan::env::STAGE], "load");
    assert!(env[batchfan::env::INPUT].starts_with("s3://"), "{env:?}");
    let command = load.container.as_ref().and_then(|c| c.command.clone()).unwrap_or_default();
    assert_eq!(command, ["orders-load", "--fast"]);
    assert_eq!(load.tags.as_ref().map(|t| t["batchfan:run"].clone()), Some(run_id.clone()));

    // The work items are in the table: 4 children, each a byte range of the
    // input; together they cover every data row once, in order.
    let table = w.clients.table();
    let store = RunStore::new(&table, &w.table);
    let header = "id,amount\n".len() as u64;
    let mut next = header;
    for i in 0..4 {
        let item = store.work_item(&run_id, i).await.unwrap().unwrap_or_else(|| panic!("item {i}"));
        assert_eq!(item.units.len(), 1);
        let range: batchfan::plan::LineRange = serde_json::from_value(item.units[0].clone()).unwrap();
        assert_eq!((range.start, range.line), (next, 1 + 2 * i + 1), "item {i}");
        next = range.end;
    }
    let size = w.fx.s3.head_object().bucket(&w.inbox).key("in/orders 2026-11-23.csv").send().await.unwrap();
    assert_eq!(Some(next as i64), size.content_length, "the ranges end at the end of the input");
    assert!(store.work_item(&run_id, 4).await.unwrap().is_none());
    let run = w.run(&run_id).await;
    assert_eq!(run.state, RunState::Submitted);
    assert_eq!(run.jobs, by_name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_s3_events_and_sns_deliveries_make_one_run_and_one_set_of_jobs() {
    let w = World::start().await;
    w.put_csv("in/orders 2026-11-23.csv", 7).await;
    let ctx = w.trigger_context().await;
    let mut run_ids = Vec::new();
    for attempt in 0..3 {
        // Each delivery is a new invocation (a new request id).
        let out = trigger::handle(&ctx, w.s3_event_of(0), &format!("invoke-{attempt}"), NOW).await.unwrap();
        run_ids.push(out["runs"][0]["run_id"].as_str().unwrap().to_owned());
    }
    run_ids.dedup();
    assert_eq!(run_ids.len(), 1, "three deliveries, one run");
    let run_id = &run_ids[0];
    assert_eq!(w.runs().await.len(), 1);
    // The planner re-publishes on a duplicate (covering a crash between write and
    // publish); every copy is the same RunPlanned.
    let delivered = w.delivered(&w.plan_probe, 3).await;
    assert!(!delivered.is_empty());
    let sns = w.sns_event(&delivered[0]);
    let d = w.dispatcher().await;
    for attempt in 0..3 {
        submit::handle(&d, sns.clone(), &format!("submit-{attempt}")).await.expect("submit");
    }
    for other in &delivered[1..] {
        submit::handle(&d, w.sns_event(other), "submit-late").await.expect("submit");
    }
    for name in node_names(run_id) {
        let jobs = w.jobs_named(&name).await;
        let exact = jobs.iter().filter(|j| j.job_name.as_deref() == Some(name.as_str())).count();
        assert_eq!(exact, 1, "{name} submitted once");
    }
    assert_eq!(w.jobs_named(&format!("orders-{run_id}-")).await.len(), 4);
}

/// A Batch port that fails the `fail_at`-th SubmitJob, as a submitter killed
/// between two SubmitJob calls would leave things.
struct CrashingBatch {
    inner: Arc<dyn Batch>,
    calls: AtomicUsize,
    fail_at: usize,
}

#[async_trait]
impl Batch for CrashingBatch {
    async fn submit_job(&self, request: SubmitJob) -> PortResult<SubmittedJob> {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(PortError::unavailable("injected: the submitter died here"));
        }
        self.inner.submit_job(request).await
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitter_killed_between_two_submits_and_retried_submits_each_job_once() {
    let w = World::start().await;
    let (run_id, sns) = planned(&w).await;
    let mut ports = w.ports();
    ports.batch =
        Arc::new(CrashingBatch { inner: ports.batch.clone(), calls: AtomicUsize::new(0), fail_at: 2 });
    let crashing = w.dispatcher_with(ports).await;
    let err = submit::handle(&crashing, sns.clone(), "submit-1").await.unwrap_err();
    assert!(err.retryable(), "{err}");
    assert_eq!(w.jobs_named(&format!("orders-{run_id}-")).await.len(), 1, "only the first job got out");
    assert_eq!(w.run(&run_id).await.state, RunState::Planned);

    // A duplicate delivery (another invocation) while the lease is held: retry later.
    let healthy = w.dispatcher().await;
    match submit::handle(&healthy, sns.clone(), "submit-duplicate").await {
        Err(DispatchError::Run(RunError::LeaseHeld { owner, .. })) => assert_eq!(owner, "submit-1"),
        other => panic!("expected the lease to be held: {other:?}"),
    }
    // Lambda retries the failed invocation with the same request id.
    submit::handle(&healthy, sns, "submit-1").await.expect("the retry completes the graph");
    for name in node_names(&run_id) {
        let exact =
            w.jobs_named(&name).await.iter().filter(|j| j.job_name.as_deref() == Some(name.as_str())).count();
        assert_eq!(exact, 1, "{name} submitted once");
    }
    assert_eq!(w.run(&run_id).await.state, RunState::Submitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_child_raises_one_alert_submits_cleanup_once_and_fails_the_run() {
    let w = World::start().await;
    let (run_id, sns) = planned(&w).await;
    let d = w.dispatcher().await;
    submit::handle(&d, sns, "submit-1").await.unwrap();
    let run = w.run(&run_id).await;
    let load_name = format!("orders-{run_id}-load-0");
    let load_id = run.jobs[&load_name].clone();
    let cleanup_name = format!("orders-{run_id}-cleanup");
    let cleanup_id = run.jobs[&cleanup_name].clone();
    let ctx = w.alert_context().await;
    let failed = fixture(
        "batch_failed_child",
        &[
            ("JOB_ID", &load_id),
            ("INDEX", "2"),
            ("JOB_NAME", &load_name),
            ("QUEUE", &w.queue),
            ("PIPELINE", "orders"),
            ("RUN", &run_id),
        ],
    );
    let mut failed = failed;
    failed["detail"]["tags"]["batchfan:stage"] = "load".into();
    for _ in 0..2 {
        alert::handle(&ctx, serde_json::from_value(failed.clone()).unwrap()).await.expect("handled");
    }
    let alerts = w.delivered(&w.alerts_probe, 1).await;
    assert_eq!(alerts.len(), 1, "one alert for the run");
    assert!(w.quiet(&w.alerts_probe).await, "however often the event comes");
    let body: Value = serde_json::from_str(&alerts[0].message.body).unwrap();
    assert_eq!(body["run_id"], run_id.as_str());
    assert_eq!(body["stage"], "load");
    assert_eq!(body["index"], 2);
    assert_eq!(body["exit_code"], 1);
    assert_eq!(body["status_reason"], "Essential container in task exited");
    assert_eq!(alerts[0].message.attributes["run_id"], run_id);

    // The cascade fails the planned cleanup: the alerter submits the failure cleanup, once.
    let cascade = fixture(
        "batch_cleanup_cascade",
        &[
            ("JOB_ID", &cleanup_id),
            ("JOB_NAME", &cleanup_name),
            ("QUEUE", &w.queue),
            ("PIPELINE", "orders"),
            ("RUN", &run_id),
        ],
    );
    for _ in 0..2 {
        alert::handle(&ctx, serde_json::from_value(cascade.clone()).unwrap()).await.unwrap();
    }
    let onfailure = format!("orders-{run_id}-cleanup-onfailure");
    let jobs = w.jobs_named(&onfailure).await;
    assert_eq!(jobs.len(), 1, "the failure cleanup is submitted once");
    let onfailure_id = jobs[0].job_id.clone().unwrap();
    let detail = &w.describe(std::slice::from_ref(&onfailure_id)).await[0];
    assert!(detail.depends_on.as_ref().is_none_or(|d| d.is_empty()), "it waits on nothing");
    assert!(detail.job_definition.as_deref().unwrap().contains(&format!("{}cleanup", w.prefix)));
    assert_eq!(w.run(&run_id).await.state, RunState::Submitted, "not final until cleanup ran");

    // The failure cleanup's SUCCEEDED event ends the run FAILED (twice: no change).
    let done = fixture(
        "batch_succeeded",
        &[
            ("JOB_ID", &onfailure_id),
            ("JOB_NAME", &onfailure),
            ("QUEUE", &w.queue),
            ("PIPELINE", "orders"),
            ("RUN", &run_id),
            ("ROLE", "failure-cleanup"),
        ],
    );
    for _ in 0..2 {
        alert::handle(&ctx, serde_json::from_value(done.clone()).unwrap()).await.unwrap();
    }
    let run = w.run(&run_id).await;
    assert_eq!(run.state, RunState::Failed);
    assert!(run.alerted);
    let failure = run.failure.expect("the failure is recorded");
    assert_eq!((failure.stage.as_str(), failure.index, failure.exit_code), ("load", Some(2), Some(1)));
    assert!(w.quiet(&w.alerts_probe).await, "still one alert");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_succeeded_cleanup_finishes_the_run() {
    let w = World::start().await;
    let (run_id, sns) = planned(&w).await;
    let d = w.dispatcher().await;
    submit::handle(&d, sns, "submit-1").await.unwrap();
    let cleanup_name = format!("orders-{run_id}-cleanup");
    let cleanup_id = w.run(&run_id).await.jobs[&cleanup_name].clone();
    let ctx = w.alert_context().await;
    let done = fixture(
        "batch_succeeded",
        &[
            ("JOB_ID", &cleanup_id),
            ("JOB_NAME", &cleanup_name),
            ("QUEUE", &w.queue),
            ("PIPELINE", "orders"),
            ("RUN", &run_id),
            ("ROLE", "cleanup"),
        ],
    );
    alert::handle(&ctx, serde_json::from_value(done).unwrap()).await.unwrap();
    assert_eq!(w.run(&run_id).await.state, RunState::Succeeded);
    assert!(w.quiet(&w.alerts_probe).await, "no alert for a good run");
    // An event of a job batchfan did not submit is ignored.
    let foreign = fixture(
        "batch_succeeded",
        &[
            ("JOB_ID", "x"),
            ("JOB_NAME", "other"),
            ("QUEUE", &w.queue),
            ("PIPELINE", "someone-else"),
            ("RUN", "r0"),
            ("ROLE", "cleanup"),
        ],
    );
    alert::handle(&ctx, serde_json::from_value(foreign).unwrap()).await.unwrap();
}
