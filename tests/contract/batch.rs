//! Contract scenarios for the [`Batch`] port, run unchanged against every
//! backend (the local engine now, the AWS adapter against an AWS-compatible
//! server later). They only assert what both can do: no scenario depends on how
//! fast jobs run (moto marks jobs SUCCEEDED at once), so a status is checked
//! only where every backend agrees.

/// The scenarios every implementation runs: `$run!(scenario, …)` for a
/// file's own test macro. The one list, so no implementation's copy drifts.
macro_rules! batch_scenarios {
    ($run:ident) => {
        $run!(
            submit_plain_and_describe,
            submit_array_and_describe_parent_and_child,
            describe_omits_unknown_ids,
            list_by_name_with_trailing_star,
            list_array_children,
            depends_on_is_recorded,
            cancel_a_waiting_job,
            limits_are_rejected,
        );
    };
}

/// The scenarios that need jobs that really run: the local engine and
/// `batchfan batch-api`, not moto (its jobs succeed at submit).
#[allow(unused_macros)] // not on moto
macro_rules! batch_scenarios_that_run_jobs {
    ($run:ident) => {
        $run!(
            dependency_failure_cascades,
            exit_75_is_retried,
            a_job_past_its_timeout_fails,
            timings_of_a_stage_come_from_the_children
        );
    };
}

use batchfan::{
    batch::{Batch, ContainerSpec, JobDependency, JobQuery, JobStatus, RetryStrategy, SubmitJob},
    error::PortError,
};

/// Where a backend's scenarios submit, and a prefix unique to this run so
/// re-runs against a shared account never see each other's jobs.
pub struct Fixture {
    pub queue: String,
    pub job_definition: String,
    pub prefix: String,
}

impl Fixture {
    pub fn new(queue: &str, job_definition: &str) -> Self {
        let prefix = format!("ct{:08x}", rand::random::<u32>());
        Fixture { queue: queue.into(), job_definition: job_definition.into(), prefix }
    }

    /// A plain job named `{prefix}-{name}` running `command`.
    pub fn job(&self, name: &str, command: &[&str]) -> SubmitJob {
        SubmitJob {
            job_name: format!("{}-{name}", self.prefix),
            job_queue: self.queue.clone(),
            job_definition: self.job_definition.clone(),
            array_size: None,
            depends_on: Vec::new(),
            container: ContainerSpec {
                image: String::new(),
                command: command.iter().map(|c| c.to_string()).collect(),
                environment: Default::default(),
                vcpus: 0.25,
                memory_mib: 512,
            },
            retry_strategy: RetryStrategy::default(),
            timeout_seconds: None,
            tags: Default::default(),
        }
    }

    fn array(&self, name: &str, size: u32) -> SubmitJob {
        SubmitJob { array_size: Some(size), ..self.job(name, &["true"]) }
    }

    /// The queue as a backend reports it: the name, or an ARN ending in it.
    fn is_queue(&self, reported: &str) -> bool {
        reported == self.queue || reported.ends_with(&format!("/{}", self.queue))
    }
}

async fn describe_one(batch: &dyn Batch, id: &str) -> batchfan::batch::JobDetail {
    let mut jobs = batch.describe_jobs(&[id.to_string()]).await.expect("describe_jobs");
    assert_eq!(jobs.len(), 1, "{id} is described");
    jobs.remove(0)
}

pub async fn submit_plain_and_describe(batch: &dyn Batch, fx: &Fixture) {
    let request = fx.job("plain", &["true"]);
    let submitted = batch.submit_job(request.clone()).await.expect("submit");
    assert!(!submitted.job_id.is_empty());
    assert_eq!(submitted.job_name, request.job_name);
    let job = describe_one(batch, &submitted.job_id).await;
    assert_eq!(job.job_id, submitted.job_id);
    assert_eq!(job.job_name, request.job_name);
    assert!(fx.is_queue(&job.job_queue), "queue {}", job.job_queue);
    assert_eq!(job.container.command, request.container.command);
    assert!(job.created_at > 0);
    assert!(job.array_properties.is_none(), "a plain job has no array properties");
}

pub async fn submit_array_and_describe_parent_and_child(batch: &dyn Batch, fx: &Fixture) {
    let parent = batch.submit_job(fx.array("arr", 3)).await.expect("submit").job_id;
    let job = describe_one(batch, &parent).await;
    let props = job.array_properties.expect("a parent has array properties");
    assert_eq!(props.size, Some(3));
    let child = describe_one(batch, &format!("{parent}:1")).await;
    assert_eq!(child.job_id, format!("{parent}:1"));
    assert_eq!(child.array_properties.and_then(|a| a.index), Some(1));
}

pub async fn describe_omits_unknown_ids(batch: &dyn Batch, fx: &Fixture) {
    let known = batch.submit_job(fx.job("known", &["true"])).await.expect("submit").job_id;
    let unknown = "00000000-0000-4000-8000-000000000000".to_string();
    let jobs = batch.describe_jobs(&[unknown, known.clone()]).await.expect("describe_jobs");
    let ids: Vec<_> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(ids, [known.as_str()]);
}

pub async fn list_by_name_with_trailing_star(batch: &dyn Batch, fx: &Fixture) {
    let a = batch.submit_job(fx.job("list-a", &["true"])).await.expect("submit").job_id;
    let b = batch.submit_job(fx.array("list-b", 2)).await.expect("submit").job_id;
    batch.submit_job(fx.job("other", &["true"])).await.expect("submit");
    let pattern = format!("{}-list-*", fx.prefix);
    let found = batch.list_jobs(&JobQuery::ByName { queue: fx.queue.clone(), pattern }).await.expect("list");
    let mut ids: Vec<_> = found.iter().map(|j| j.job_id.clone()).collect();
    ids.sort();
    let mut expected = vec![a.clone(), b];
    expected.sort();
    assert_eq!(ids, expected, "prefix match returns the parent and the plain job, not children");
    let exact = format!("{}-list-a", fx.prefix);
    let found =
        batch.list_jobs(&JobQuery::ByName { queue: fx.queue.clone(), pattern: exact }).await.expect("list");
    assert_eq!(found.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(), [a.as_str()]);
}

pub async fn list_array_children(batch: &dyn Batch, fx: &Fixture) {
    let parent = batch.submit_job(fx.array("children", 3)).await.expect("submit").job_id;
    let query = JobQuery::ArrayChildren { array_job_id: parent.clone(), status: None };
    let mut children = batch.list_jobs(&query).await.expect("list");
    children.sort_by_key(|c| c.array_properties.as_ref().and_then(|a| a.index));
    let ids: Vec<_> = children.iter().map(|c| c.job_id.clone()).collect();
    assert_eq!(ids, (0..3).map(|i| format!("{parent}:{i}")).collect::<Vec<_>>());
    for (i, child) in children.iter().enumerate() {
        assert_eq!(child.array_properties.as_ref().and_then(|a| a.index), Some(i as u32));
    }
}

pub async fn depends_on_is_recorded(batch: &dyn Batch, fx: &Fixture) {
    let a = batch.submit_job(fx.array("dep-a", 2)).await.expect("submit").job_id;
    let plain = batch.submit_job(fx.job("dep-p", &["true"])).await.expect("submit").job_id;
    let deps = vec![JobDependency::n_to_n(&a), JobDependency::on(&plain)];
    let b = batch
        .submit_job(SubmitJob { depends_on: deps.clone(), ..fx.array("dep-b", 2) })
        .await
        .expect("submit");
    assert_eq!(describe_one(batch, &b.job_id).await.depends_on, deps);
    let seq = SubmitJob { depends_on: vec![JobDependency::sequential()], ..fx.array("dep-seq", 2) };
    let seq = batch.submit_job(seq).await.expect("submit").job_id;
    assert_eq!(describe_one(batch, &seq).await.depends_on, vec![JobDependency::sequential()]);
}

pub async fn cancel_a_waiting_job(batch: &dyn Batch, fx: &Fixture) {
    let first = batch.submit_job(fx.job("cancel-first", &["sleep", "600"])).await.expect("submit").job_id;
    let waiting = SubmitJob { depends_on: vec![JobDependency::on(&first)], ..fx.job("cancel-me", &["true"]) };
    let waiting = batch.submit_job(waiting).await.expect("submit").job_id;
    batch.cancel_job(&waiting, "contract cancel").await.expect("cancel succeeds");
    let job = describe_one(batch, &waiting).await;
    // A backend that already ran it (moto) leaves it SUCCEEDED; otherwise it fails with our reason.
    match job.status {
        JobStatus::Failed => assert_eq!(job.status_reason.as_deref(), Some("contract cancel")),
        JobStatus::Succeeded => {}
        other => panic!("a cancelled waiting job is FAILED (or already SUCCEEDED), not {other}"),
    }
    batch.terminate_job(&first, "contract cleanup").await.expect("terminate succeeds");
}

pub async fn limits_are_rejected(batch: &dyn Batch, fx: &Fixture) {
    let base = fx.job("limits", &["true"]);
    let arr = |n| SubmitJob { array_size: Some(n), ..base.clone() };
    let dep = JobDependency::on("00000000-0000-4000-8000-000000000000");
    let mut big_env = base.clone();
    big_env.container.environment.insert("DATA".into(), "x".repeat(9_000));
    let mut big_request = base.clone();
    big_request.tags.insert("blob".into(), "x".repeat(31 * 1024));
    let cases = [
        ("array size 1", arr(1)),
        ("array size 10001", arr(10_001)),
        ("21 dependencies", SubmitJob { depends_on: vec![dep; 21], ..base.clone() }),
        ("a bad job name", SubmitJob { job_name: "has space".into(), ..base.clone() }),
        ("a timeout under 60 s", SubmitJob { timeout_seconds: Some(59), ..base.clone() }),
        (
            "11 attempts",
            SubmitJob {
                retry_strategy: RetryStrategy { attempts: 11, evaluate_on_exit: vec![] },
                ..base.clone()
            },
        ),
        (
            "SEQUENTIAL on a plain job",
            SubmitJob { depends_on: vec![JobDependency::sequential()], ..base.clone() },
        ),
        ("overrides over 8192 characters", big_env),
        ("a request over 30 KiB", big_request),
    ];
    for (what, request) in cases {
        match batch.submit_job(request).await {
            Err(PortError::Invalid(msg)) => assert!(!msg.is_empty(), "{what}: the message says why"),
            other => panic!("{what} must be rejected as Invalid, got {other:?}"),
        }
    }
}

/// Polls DescribeJobs until `id` is SUCCEEDED or FAILED (a generous deadline for a loaded machine).
#[allow(dead_code)] // contract_batch_aws (moto) lists no scenario that needs jobs to run
async fn wait_terminal(batch: &dyn Batch, id: &str) -> batchfan::batch::JobDetail {
    let start = std::time::Instant::now();
    loop {
        let job = describe_one(batch, id).await;
        if job.status.is_terminal() {
            return job;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "{id} still {} after 120 s",
            job.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

// The scenarios below need jobs that really run: the local engine and
// `batchfan batch-api`, not moto (its jobs succeed at submit).

/// A job whose dependency fails goes FAILED without running.
#[allow(dead_code)] // not on moto
pub async fn dependency_failure_cascades(batch: &dyn Batch, fx: &Fixture) {
    let failing = batch.submit_job(fx.job("fails", &["sh", "-c", "exit 3"])).await.expect("submit").job_id;
    let after = SubmitJob { depends_on: vec![JobDependency::on(&failing)], ..fx.job("after", &["true"]) };
    let after = batch.submit_job(after).await.expect("submit").job_id;
    let done = wait_terminal(batch, &after).await;
    assert_eq!(done.status, JobStatus::Failed);
    assert!(done.attempts.is_empty(), "the dependent never ran: {:?}", done.attempts);
    let failed = describe_one(batch, &failing).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.attempts.iter().map(|a| a.exit_code).collect::<Vec<_>>(), [Some(3)]);
}

/// Exit 75 is retried by batchfan's default rules; the second attempt succeeds.
#[allow(dead_code)] // not on moto
pub async fn exit_75_is_retried(batch: &dyn Batch, fx: &Fixture) {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("once");
    let script = format!("[ -e {m} ] && exit 0; touch {m}; exit 75", m = marker.display());
    let job = SubmitJob {
        retry_strategy: RetryStrategy::batchfan_default(2),
        ..fx.job("flaky", &["sh", "-c", &script])
    };
    let id = batch.submit_job(job).await.expect("submit").job_id;
    let done = wait_terminal(batch, &id).await;
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.attempts.iter().map(|a| a.exit_code).collect::<Vec<_>>(), [Some(75), Some(0)]);
}

/// A job past its timeout (AWS's minimum, 60 s: the implementations under test
/// run with time scaled down) is killed and FAILED, with AWS's status reason.
#[allow(dead_code)] // not on moto
pub async fn a_job_past_its_timeout_fails(batch: &dyn Batch, fx: &Fixture) {
    let job = SubmitJob { timeout_seconds: Some(60), ..fx.job("slow", &["sleep", "600"]) };
    let id = batch.submit_job(job).await.expect("submit").job_id;
    let done = wait_terminal(batch, &id).await;
    assert_eq!(done.status, JobStatus::Failed);
    assert_eq!(done.attempts.len(), 1, "{:?}", done.attempts);
    let reason = done.status_reason.as_deref().unwrap_or_default();
    assert!(reason.contains("Job attempt duration exceeded timeout"), "status reason {reason:?}");
}

/// Issue 14 item 4: every child's created/started/stopped times, read as
/// `batchfan status` and the status page read them (`run::timings::collect`:
/// ListJobs of the array's children, DescribeJobs of a plain job), in order,
/// and a stage's span covers each of its children's runs.
#[allow(dead_code)] // not on moto
pub async fn timings_of_a_stage_come_from_the_children(batch: &dyn Batch, fx: &Fixture) {
    use batchfan::run::timings::{collect, stage_timings, RunJob};
    let array = SubmitJob { array_size: Some(3), ..fx.job("timed", &["sleep", "0.2"]) };
    let array = batch.submit_job(array).await.expect("submit").job_id;
    let plain = SubmitJob { depends_on: vec![JobDependency::on(&array)], ..fx.job("after", &["true"]) };
    let plain = batch.submit_job(plain).await.expect("submit").job_id;
    wait_terminal(batch, &plain).await;
    let jobs = [
        RunJob {
            stage: "timed".into(),
            job_id: array.clone(),
            first_child: 0,
            children: 3,
            ..Default::default()
        },
        RunJob {
            stage: "after".into(),
            job_id: plain.clone(),
            first_child: 0,
            children: 1,
            ..Default::default()
        },
    ];
    let times = collect(batch, &jobs).await.expect("collect");
    let children = &times[&array];
    assert_eq!(children.iter().map(|c| c.index).collect::<Vec<_>>(), [0, 1, 2], "{children:?}");
    for c in children.iter().chain(&times[&plain]) {
        assert_eq!(c.status, JobStatus::Succeeded, "{c:?}");
        let (started, stopped) = (c.started_at.expect("started"), c.stopped_at.expect("stopped"));
        assert!(c.created_at <= started && started <= stopped, "{c:?}");
    }
    assert_eq!(children[1].job_id, format!("{array}:1"));
    let last_child_stop = children.iter().filter_map(|c| c.stopped_at).max().unwrap();
    assert!(times[&plain][0].started_at.unwrap() >= last_child_stop, "the dependent started after the array");
    let stages = stage_timings(&jobs, &times, i64::MAX);
    let timed = &stages[0];
    assert_eq!((timed.stage.as_str(), timed.children, timed.started), ("timed", 3, 3));
    let longest = children.iter().map(|c| c.stopped_at.unwrap() - c.started_at.unwrap()).max().unwrap();
    assert!(timed.duration_ms.unwrap() >= longest, "{timed:?}");
    assert_eq!(timed.slowest.len(), 3);
    assert_eq!(timed.run_time.unwrap().max_ms, longest);
}
