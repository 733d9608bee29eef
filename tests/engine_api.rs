//! The local engine's API surface: events, cancel and terminate, submit
//! limits, and the state directory lock.

use crate::engine_support;

use std::collections::BTreeMap;

use batchfan::{
    batch::{
        fsm::{transition, Event},
        Batch, JobDependency, JobQuery, JobStatus, RetryStrategy, SubmitJob,
    },
    engine::{EngineError, LocalEngine, ShutdownMode},
    error::PortError,
};
use engine_support::{config, sh, wait_file, Harness};

/// Every consecutive pair of statuses, from the unseen SUBMITTED on, is a
/// transition the state machine allows.
fn assert_valid_path(id: &str, statuses: &[JobStatus]) {
    assert!(!statuses.contains(&JobStatus::Submitted), "{id}: AWS sends no SUBMITTED event: {statuses:?}");
    let path: Vec<JobStatus> =
        std::iter::once(JobStatus::Submitted).chain(statuses.iter().copied()).collect();
    for pair in path.windows(2) {
        let ok = Event::ALL.iter().any(|e| transition(pair[0], *e) == Ok(pair[1]) && pair[0] != pair[1]);
        assert!(ok, "{id}: {} -> {} is no transition: {statuses:?}", pair[0], pair[1]);
    }
}

#[tokio::test]
async fn events_cover_children_and_parents_with_aws_fields() {
    let mut h = Harness::new().await;
    let d = h.d();
    // `first` runs until the array is submitted, so its children wait (PENDING) on it.
    let first = h.submit(sh("first", &format!("while [ ! -e {d}/go ]; do sleep 0.01; done"))).await;
    let mut arr = SubmitJob {
        array_size: Some(2),
        depends_on: vec![JobDependency::on(&first)],
        ..sh("arr", "[ $AWS_BATCH_JOB_ARRAY_INDEX = 1 ] && exit 3; exit 0")
    };
    arr.tags = BTreeMap::from([("batchfan:run".to_string(), "r1".to_string())]);
    let arr = h.submit(arr).await;
    std::fs::write(h.path("go"), "").unwrap();
    h.wait_done(&arr).await;
    let child = format!("{arr}:1");
    assert_eq!(
        h.statuses(&child),
        [JobStatus::Pending, JobStatus::Runnable, JobStatus::Starting, JobStatus::Running, JobStatus::Failed]
    );
    let failed = h.seen.iter().find(|e| e.job_id == child && e.status == JobStatus::Failed).unwrap();
    assert_eq!(failed.container.exit_code, Some(3), "the FAILED event carries the exit code");
    assert_eq!(failed.container.log_stream_name, Some(h.engine.log_path(&child, 1).display().to_string()));
    assert_eq!(failed.array_properties.as_ref().and_then(|a| a.index), Some(1));
    assert_eq!((failed.job_name.as_str(), failed.job_queue.as_str()), ("arr", "local"));
    assert_eq!(failed.depends_on, vec![JobDependency::on(&first)]);
    assert_eq!(failed.tags["batchfan:run"], "r1");
    assert_eq!(failed.attempts.len(), 1);
    assert!(failed.created_at.is_some() && failed.started_at.is_some() && failed.stopped_at.is_some());
    let parent = h.statuses(&arr);
    assert_eq!(parent.last(), Some(&JobStatus::Failed));
    let last = h.seen.iter().rev().find(|e| e.job_id == arr).unwrap();
    let props = last.array_properties.as_ref().unwrap();
    assert_eq!((props.size, props.index), (Some(2), None));
    assert_eq!(
        (props.status_summary[&JobStatus::Failed], props.status_summary[&JobStatus::Succeeded]),
        (1, 1)
    );
    for id in [first.clone(), format!("{arr}:0"), child] {
        assert_valid_path(&id, &h.statuses(&id));
    }
    // A parent's status is derived from its children: it only moves forward.
    assert!(parent.windows(2).all(|w| w[0] < w[1]), "parent went back or repeated: {parent:?}");
    // Issue 13: no event for the initial submission, as on AWS.
    assert_eq!(parent[0], JobStatus::Pending);
    // The event detail is EventBridge's shape.
    let json = serde_json::to_value(failed).unwrap();
    assert_eq!(json["container"]["exitCode"], 3);
    assert_eq!(json["attempts"][0]["container"]["exitCode"], 3, "attempts nest their container");
    assert_eq!(json["arrayProperties"]["index"], 1);
}

#[tokio::test]
async fn cancel_fails_waiting_jobs_and_leaves_started_ones() {
    let mut h = Harness::new().await;
    let a = h
        .submit(SubmitJob { retry_strategy: RetryStrategy::batchfan_default(3), ..sh("a", "exec sleep 30") })
        .await;
    let b = h.submit(SubmitJob { depends_on: vec![JobDependency::on(&a)], ..sh("b", "true") }).await;
    h.wait_status(&a, JobStatus::Running).await;
    h.engine.cancel_job(&b, "not needed").await.unwrap();
    let job = h.wait_done(&b).await;
    assert_eq!((job.status, job.status_reason.as_deref()), (JobStatus::Failed, Some("not needed")));
    h.engine.cancel_job(&a, "too late").await.unwrap();
    assert_eq!(h.describe(&a).await.status, JobStatus::Running, "cancel leaves a started job alone");
    h.engine.terminate_job(&a, "stop now").await.unwrap();
    let job = h.wait_done(&a).await;
    assert_eq!((job.status, job.status_reason.as_deref()), (JobStatus::Failed, Some("stop now")));
    assert_eq!(job.attempts.len(), 1, "terminated: no retry");
    assert_eq!(job.attempts[0].exit_code, Some(143), "SIGTERM ended it");
    let missing = h.engine.cancel_job("no-such-job", "x").await.unwrap_err();
    assert!(matches!(missing, PortError::NotFound(_)), "{missing}");
}

#[tokio::test]
async fn terminate_kills_a_process_ignoring_term_after_the_grace() {
    let mut h = Harness::new().await;
    let d = h.d();
    let id = h
        .submit(sh("stubborn", &format!("trap '' TERM; touch {d}/ready; while true; do sleep 0.05; done")))
        .await;
    wait_file(&h.path("ready")).await;
    h.engine.terminate_job(&id, "bye").await.unwrap();
    let job = h.wait_done(&id).await;
    assert_eq!((job.status, job.attempts[0].exit_code), (JobStatus::Failed, Some(137)));
}

#[tokio::test]
async fn cancelling_an_array_cancels_children_not_started() {
    let mut h = Harness::with(|c| c.vcpus = 1.0).await;
    let d = h.d();
    let script = format!("touch {d}/ran.$AWS_BATCH_JOB_ARRAY_INDEX; sleep 0.3");
    let id = h.submit(SubmitJob { array_size: Some(3), ..sh("arr", &script) }).await;
    h.wait_status(&format!("{id}:0"), JobStatus::Running).await;
    h.engine.cancel_job(&id, "enough").await.unwrap();
    let parent = h.wait_done(&id).await;
    assert_eq!((parent.status, parent.status_reason.as_deref()), (JobStatus::Failed, Some("enough")));
    assert_eq!(
        h.describe(&format!("{id}:0")).await.status,
        JobStatus::Succeeded,
        "the running child finishes"
    );
    for i in [1, 2] {
        let child = h.describe(&format!("{id}:{i}")).await;
        assert_eq!((child.status, child.status_reason.as_deref()), (JobStatus::Failed, Some("enough")));
        assert!(!h.path(&format!("ran.{i}")).exists());
    }
}

#[tokio::test]
async fn every_submit_limit_is_rejected_with_a_clear_message() {
    let h = Harness::new().await;
    let plain = h.submit(sh("plain", "true")).await;
    let arr3 = h.submit(SubmitJob { array_size: Some(3), ..sh("arr3", "true") }).await;
    let base = sh("job", "true");
    let arr = |n| SubmitJob { array_size: Some(n), ..base.clone() };
    let mut cases: Vec<(&str, SubmitJob)> = vec![
        ("job name \"bad name\"", SubmitJob { job_name: "bad name".into(), ..base.clone() }),
        ("array size 1 ", arr(1)),
        ("array size 10001", arr(10_001)),
        ("21 dependencies", SubmitJob { depends_on: vec![JobDependency::on(&plain); 21], ..base.clone() }),
        ("does not exist", SubmitJob { depends_on: vec![JobDependency::on("nope")], ..base.clone() }),
        ("same size", SubmitJob { depends_on: vec![JobDependency::n_to_n(&arr3)], ..arr(4) }),
        ("same size", SubmitJob { depends_on: vec![JobDependency::n_to_n(&plain)], ..arr(3) }),
        (
            "needs this job to be an array",
            SubmitJob { depends_on: vec![JobDependency::n_to_n(&arr3)], ..base.clone() },
        ),
        (
            "SEQUENTIAL dependency needs an array",
            SubmitJob { depends_on: vec![JobDependency::sequential()], ..base.clone() },
        ),
        ("takes no job id", {
            let dep = JobDependency { job_id: Some(plain.clone()), ..JobDependency::sequential() };
            SubmitJob { depends_on: vec![dep], ..arr(2) }
        }),
        (
            "1 to 10",
            SubmitJob {
                retry_strategy: RetryStrategy { attempts: 11, evaluate_on_exit: vec![] },
                ..base.clone()
            },
        ),
        ("timeout 59 s", SubmitJob { timeout_seconds: Some(59), ..base.clone() }),
    ];
    let mut big_env = base.clone();
    big_env.container.environment.insert("DATA".into(), "x".repeat(9000));
    cases.push(("8192", big_env));
    let mut big_tags = base.clone();
    big_tags.tags.insert("blob".into(), "x".repeat(31 * 1024));
    cases.push(("30720", big_tags));
    let mut resources: Vec<(&str, f64, u64)> = vec![("vcpus 0", 0.0, 64), ("memory 0", 1.0, 0)];
    resources.extend([("could never run", 16.0, 64), ("could never run", 1.0, 9000)]);
    for (want, vcpus, memory_mib) in resources {
        let mut job = base.clone();
        (job.container.vcpus, job.container.memory_mib) = (vcpus, memory_mib);
        cases.push((want, job));
    }
    let mut empty = base.clone();
    empty.container.command.clear();
    cases.push(("command is empty", empty));
    for (want, request) in cases {
        match h.engine.submit_job(request).await {
            Err(PortError::Invalid(msg)) => assert!(msg.contains(want.trim()), "wanted {want:?} in {msg:?}"),
            other => panic!("wanted Invalid({want:?}), got {other:?}"),
        }
    }
    let all = JobQuery::ByName { queue: "local".into(), pattern: "*".into() };
    assert_eq!(h.engine.list_jobs(&all).await.unwrap().len(), 2, "no rejected request left a job behind");
}

#[tokio::test]
async fn a_second_engine_on_the_same_state_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = LocalEngine::open(config(dir.path())).await.unwrap();
    let err = LocalEngine::open(config(dir.path())).await.unwrap_err();
    assert!(matches!(err, EngineError::Locked { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&std::process::id().to_string()), "names the holder's pid: {msg}");
    assert!(msg.contains("stop it, or use another --state directory"), "{msg}");
    first.shutdown(ShutdownMode::Drain).await;
    let again = LocalEngine::open(config(dir.path())).await.expect("the lock is released at shutdown");
    let after = first.describe_jobs(&[]).await.unwrap_err();
    assert!(matches!(after, PortError::Unavailable(_)), "a shut-down handle says so: {after}");
    again.shutdown(ShutdownMode::Drain).await;
}

#[tokio::test]
async fn listing_follows_aws() {
    let mut h = Harness::new().await;
    let older = h.submit(sh("Orders-r1-s0", "true")).await;
    let arr = h
        .submit(SubmitJob {
            array_size: Some(3),
            ..sh("orders-r1-agg", "[ $AWS_BATCH_JOB_ARRAY_INDEX != 2 ]")
        })
        .await;
    h.submit(sh("other", "true")).await;
    let by_name = |pattern: &str| JobQuery::ByName { queue: "local".into(), pattern: pattern.into() };
    let ids = |jobs: Vec<batchfan::batch::JobSummary>| jobs.into_iter().map(|j| j.job_id).collect::<Vec<_>>();
    let found = ids(h.engine.list_jobs(&by_name("ORDERS-R1-*")).await.unwrap());
    assert_eq!(found, [arr.clone(), older.clone()], "case-insensitive prefix, newest first");
    assert_eq!(ids(h.engine.list_jobs(&by_name("orders-r1-s0")).await.unwrap()), [older.as_str()]);
    assert!(h.engine.list_jobs(&by_name("orders-r1")).await.unwrap().is_empty(), "no '*': exact match");
    let other_queue = JobQuery::ByName { queue: "elsewhere".into(), pattern: "*".into() };
    assert!(h.engine.list_jobs(&other_queue).await.unwrap().is_empty());
    h.wait_done(&arr).await;
    let failed_children =
        JobQuery::ArrayChildren { array_job_id: arr.clone(), status: Some(JobStatus::Failed) };
    assert_eq!(ids(h.engine.list_jobs(&failed_children).await.unwrap()), [format!("{arr}:2")]);
    let failed = JobQuery::ByStatus { queue: "local".into(), status: JobStatus::Failed };
    assert_eq!(ids(h.engine.list_jobs(&failed).await.unwrap()), [arr.as_str()], "parents, not children");
    let parent = h.describe(&arr).await;
    let summary = parent.array_properties.unwrap().status_summary;
    assert_eq!(summary.len(), 7, "every status, as AWS");
    assert_eq!((summary[&JobStatus::Succeeded], summary[&JobStatus::Failed]), (2, 1));
    let asked = [arr.clone(), "nope".into(), format!("{arr}:1"), format!("{arr}:3")];
    let described = h.engine.describe_jobs(&asked).await.unwrap();
    assert_eq!(ids_of(described), [arr.clone(), format!("{arr}:1")], "unknown ids are omitted");
    let not_array = JobQuery::ArrayChildren { array_job_id: older, status: None };
    assert!(matches!(h.engine.list_jobs(&not_array).await, Err(PortError::Invalid(_))));
}

fn ids_of(jobs: Vec<batchfan::batch::JobDetail>) -> Vec<String> {
    jobs.into_iter().map(|j| j.job_id).collect()
}
