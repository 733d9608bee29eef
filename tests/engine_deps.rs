//! Dependencies on the local engine: N_TO_N, SEQUENTIAL and standard ordering,
//! and the dependency-failure cascade.

use crate::engine_support;

use batchfan::batch::{JobDependency, JobStatus, SubmitJob};
use engine_support::{sh, stamp, Harness};

const INDEX: &str = "$AWS_BATCH_JOB_ARRAY_INDEX";

fn array(name: &str, size: u32, script: &str, deps: Vec<JobDependency>) -> SubmitJob {
    SubmitJob { array_size: Some(size), depends_on: deps, ..sh(name, script) }
}

#[tokio::test]
async fn n_to_n_child_starts_after_its_partner_while_others_still_run() {
    let mut h = Harness::new().await;
    let d = h.d();
    // A:0 runs long; the other A children end at once.
    let a = h
        .submit(array(
            "a",
            4,
            &format!("if [ {INDEX} = 0 ]; then sleep 2; fi; date +%s%N > {d}/a.{INDEX}.end"),
            vec![],
        ))
        .await;
    let b = h
        .submit(array("b", 4, &format!("date +%s%N > {d}/b.{INDEX}.start"), vec![JobDependency::n_to_n(&a)]))
        .await;
    assert_eq!(h.wait_done(&b).await.status, JobStatus::Succeeded);
    for i in 0..4 {
        let (a_end, b_start) =
            (stamp(&h.path(&format!("a.{i}.end"))), stamp(&h.path(&format!("b.{i}.start"))));
        assert!(b_start >= a_end, "B[{i}] started before A[{i}] ended");
    }
    assert!(
        stamp(&h.path("b.3.start")) < stamp(&h.path("a.0.end")),
        "B[3] should not wait for A[0]: N_TO_N waits only for the matching child"
    );
    assert_eq!(h.describe(&a).await.status, JobStatus::Succeeded);
}

#[tokio::test]
async fn sequential_children_run_one_after_another() {
    let mut h = Harness::new().await;
    let d = h.d();
    let script = format!("date +%s%N > {d}/s.{INDEX}.start; sleep 0.1; date +%s%N > {d}/s.{INDEX}.end");
    let s = h.submit(array("seq", 4, &script, vec![JobDependency::sequential()])).await;
    let detail = h.wait_done(&s).await;
    assert_eq!(detail.status, JobStatus::Succeeded);
    assert_eq!(detail.array_properties.unwrap().status_summary[&JobStatus::Succeeded], 4);
    for i in 1..4 {
        let prev_end = stamp(&h.path(&format!("s.{}.end", i - 1)));
        assert!(stamp(&h.path(&format!("s.{i}.start"))) >= prev_end, "child {i} overlapped child {}", i - 1);
    }
}

#[tokio::test]
async fn standard_dependency_on_an_array_waits_for_every_child() {
    let mut h = Harness::new().await;
    let d = h.d();
    let a =
        h.submit(array("a", 3, &format!("sleep 0.{INDEX}; date +%s%N > {d}/a.{INDEX}.end"), vec![])).await;
    let c = h
        .submit(SubmitJob {
            depends_on: vec![JobDependency::on(&a)],
            ..sh("c", &format!("date +%s%N > {d}/c"))
        })
        .await;
    assert_eq!(h.wait_done(&c).await.status, JobStatus::Succeeded);
    let last_a = (0..3).map(|i| stamp(&h.path(&format!("a.{i}.end")))).max().unwrap();
    assert!(stamp(&h.path("c")) >= last_a, "C started before all of A ended");
    assert_eq!(h.describe(&c).await.depends_on, vec![JobDependency::on(&a)]);
}

/// A child that fails at index 1 (exit 1), marking that it ran.
fn failing_at_1(name: &str, d: &str) -> SubmitJob {
    array(name, 3, &format!("touch {d}/{name}.{INDEX}; if [ {INDEX} = 1 ]; then exit 1; fi"), vec![])
}

#[tokio::test]
async fn n_to_n_failure_fails_only_the_matching_child() {
    let mut h = Harness::new().await;
    let d = h.d();
    let a = h.submit(failing_at_1("a", &d)).await;
    let b = h.submit(array("b", 3, &format!("touch {d}/b.{INDEX}"), vec![JobDependency::n_to_n(&a)])).await;
    let parent = h.wait_done(&b).await;
    assert_eq!(parent.status, JobStatus::Failed, "a parent with a failed child fails");
    assert_eq!(h.describe(&a).await.status, JobStatus::Failed);
    let b1 = h.describe(&format!("{b}:1")).await;
    assert_eq!(b1.status, JobStatus::Failed);
    assert_eq!(b1.status_reason.as_deref(), Some("Dependent Job failed"));
    assert!(b1.attempts.is_empty(), "B[1] never ran");
    assert!(!h.path("b.1").exists(), "B[1] never ran");
    for i in [0, 2] {
        assert_eq!(h.describe(&format!("{b}:{i}")).await.status, JobStatus::Succeeded);
        assert!(h.path(&format!("b.{i}")).exists());
    }
}

#[tokio::test]
async fn standard_dependency_failure_fails_the_whole_dependent() {
    let mut h = Harness::new().await;
    let d = h.d();
    let a = h.submit(failing_at_1("a", &d)).await;
    let c = h
        .submit(SubmitJob { depends_on: vec![JobDependency::on(&a)], ..sh("c", &format!("touch {d}/c")) })
        .await;
    let arr = h.submit(array("arr", 2, &format!("touch {d}/arr.{INDEX}"), vec![JobDependency::on(&a)])).await;
    let detail = h.wait_done(&c).await;
    assert_eq!(detail.status, JobStatus::Failed);
    assert_eq!(detail.status_reason.as_deref(), Some("Dependent Job failed"));
    assert_eq!(h.wait_done(&arr).await.status, JobStatus::Failed);
    assert_eq!(h.statuses(&c), [JobStatus::Pending, JobStatus::Failed]);
    // A job submitted after its dependency failed fails at once.
    let late = h
        .submit(SubmitJob {
            depends_on: vec![JobDependency::on(&a)],
            ..sh("late", &format!("touch {d}/late"))
        })
        .await;
    assert_eq!(h.wait_done(&late).await.status, JobStatus::Failed);
    for marker in ["c", "arr.0", "arr.1", "late"] {
        assert!(!h.path(marker).exists(), "{marker} must never run");
    }
}

#[tokio::test]
async fn sequential_failure_fails_every_later_child() {
    let mut h = Harness::new().await;
    let d = h.d();
    let script = format!("touch {d}/s.{INDEX}; if [ {INDEX} = 1 ]; then exit 1; fi");
    let s = h.submit(array("s", 4, &script, vec![JobDependency::sequential()])).await;
    assert_eq!(h.wait_done(&s).await.status, JobStatus::Failed);
    assert_eq!(h.describe(&format!("{s}:0")).await.status, JobStatus::Succeeded);
    let failed = h.describe(&format!("{s}:1")).await;
    assert_eq!((failed.status, failed.attempts[0].exit_code), (JobStatus::Failed, Some(1)));
    for i in [2, 3] {
        let child = h.describe(&format!("{s}:{i}")).await;
        assert_eq!(child.status, JobStatus::Failed);
        assert_eq!(child.status_reason.as_deref(), Some("Dependent Job failed"));
        assert!(!h.path(&format!("s.{i}")).exists(), "child {i} must never run");
    }
}
