use super::*;
use crate::plan::Sizing;

/// A record with `jobs` (suffix → id), made through serde so that fields added later keep it valid.
fn record(sizing: Sizing, jobs: &[(&str, &str)]) -> RunRecord {
    let jobs: BTreeMap<String, String> =
        jobs.iter().map(|(s, id)| (graph::job_name("p", "r1", s), (*id).to_owned())).collect();
    serde_json::from_value(serde_json::json!({
        "run_id": "r1", "pipeline": "p", "state": "SUBMITTED",
        "trigger": {"pipeline": "p", "source": "manual", "idempotency_key": "k", "input": null, "params": {}},
        "sizing": sizing, "jobs": jobs, "output": {"bucket": "b", "key": "k"},
        "stages": ["a", "b"], "created_at": 0, "updated_at": 0, "version": 0,
    }))
    .unwrap()
}

fn child(
    job: &str,
    index: u32,
    status: JobStatus,
    created: i64,
    started: Option<i64>,
    stopped: Option<i64>,
) -> ChildTime {
    ChildTime {
        job_id: format!("{job}:{index}"),
        index,
        status,
        created_at: created,
        started_at: started,
        stopped_at: stopped,
        exit_code: None,
    }
}

#[test]
fn run_jobs_follow_stage_order_and_shards_and_prefer_the_cleanup_after_a_failure() {
    // 5 children in shards of 3 and 2.
    let sizing = Sizing::new(5, 1, 3);
    assert_eq!(sizing.shards, 2);
    let rec = record(
        sizing,
        &[
            ("a-0", "A0"),
            ("a-1", "A1"),
            ("b-0", "B0"),
            ("aggregate", "G"),
            ("cleanup", "C"),
            ("cleanup-onfailure", "CF"),
        ],
    );
    let jobs = run_jobs(&rec);
    let got: Vec<(&str, &str, u64, u64)> =
        jobs.iter().map(|j| (j.stage.as_str(), j.job_id.as_str(), j.first_child, j.children)).collect();
    assert_eq!(
        got,
        [
            ("a", "A0", 0, 3),
            ("a", "A1", 3, 2),
            ("b", "B0", 0, 3),
            ("aggregation", "G", 0, 1),
            ("cleanup after failure", "CF", 0, 1)
        ]
    );
}

#[test]
fn a_stage_spans_first_start_to_last_stop_across_shards_with_its_waits_and_slowest_children() {
    let jobs = vec![
        RunJob { stage: "a".into(), job_id: "A0".into(), first_child: 0, children: 2, ..Default::default() },
        RunJob { stage: "a".into(), job_id: "A1".into(), first_child: 2, children: 2, ..Default::default() },
    ];
    let ok = JobStatus::Succeeded;
    let times: BTreeMap<String, Vec<ChildTime>> = [
        (
            "A0".to_owned(),
            vec![
                child("A0", 0, ok, 100, Some(150), Some(1150)),
                child("A0", 1, ok, 100, Some(200), Some(400)),
            ],
        ),
        (
            "A1".to_owned(),
            vec![
                child("A1", 0, ok, 100, Some(400), Some(3400)),
                child("A1", 1, ok, 100, Some(500), Some(600)),
            ],
        ),
    ]
    .into();
    let t = &stage_timings(&jobs, &times, 99_999)[0];
    assert_eq!((t.children, t.started, t.created_at), (4, 4, Some(100)));
    assert_eq!((t.first_started_at, t.last_stopped_at, t.duration_ms), (Some(150), Some(3400), Some(3250)));
    // Waits 50, 100, 300, 400 → median (lower) 100, max 400.
    assert_eq!(t.queue_wait, Some(Spread { median_ms: 100, max_ms: 400 }));
    let slow: Vec<(u64, i64)> = t.slowest.iter().map(|s| (s.index, s.run_ms)).collect();
    assert_eq!(slow, [(2, 3000), (0, 1000), (1, 200), (3, 100)], "global indexes, longest first");
}

#[test]
fn a_stage_still_running_is_measured_to_now_and_has_no_end() {
    let jobs = vec![RunJob {
        stage: "a".into(),
        job_id: "A".into(),
        first_child: 0,
        children: 3,
        ..Default::default()
    }];
    let times: BTreeMap<String, Vec<ChildTime>> = [(
        "A".to_owned(),
        vec![
            child("A", 0, JobStatus::Succeeded, 0, Some(10), Some(20)),
            child("A", 1, JobStatus::Running, 0, Some(30), None),
            child("A", 2, JobStatus::Runnable, 0, None, None),
        ],
    )]
    .into();
    let t = &stage_timings(&jobs, &times, 1_000)[0];
    assert_eq!((t.started, t.last_stopped_at, t.duration_ms), (2, None, Some(990)));
    assert_eq!(t.slowest[0].index, 1);
    assert_eq!(t.slowest[0].run_ms, 970);
}

#[test]
fn children_that_never_started_have_no_wait_and_no_duration() {
    let jobs = vec![RunJob {
        stage: "b".into(),
        job_id: "B".into(),
        first_child: 0,
        children: 1,
        ..Default::default()
    }];
    let times: BTreeMap<String, Vec<ChildTime>> =
        [("B".to_owned(), vec![child("B", 0, JobStatus::Failed, 5, None, Some(9))])].into();
    let t = &stage_timings(&jobs, &times, 100)[0];
    assert_eq!((t.started, t.duration_ms, t.queue_wait, t.slowest.len()), (0, None, None, 0));
    assert_eq!(t.last_stopped_at, Some(9), "ended (failed by cascade) without running");
}

#[test]
fn durations_read_like_people_write_them() {
    assert_eq!(human_ms(850), "850 ms");
    assert_eq!(human_ms(12_345), "12.3 s");
    assert_eq!(human_ms(185_000), "3 min 05 s");
    assert_eq!(human_ms(7_260_000), "2 h 01 min");
    assert_eq!(human_ms(-5), "0 ms");
}

#[test]
fn a_retry_attempts_jobs_carry_the_global_index_of_each_child_and_its_own_finish() {
    use crate::run::retry_plan::{self, RetryShard};
    // 5 children; attempt 2 reruns a's children 1, 3, 4 (one array) and b's the same.
    let mut rec = record(
        Sizing::new(5, 1, 10),
        &[("a-0", "A"), ("b-0", "B"), ("aggregate", "G"), ("cleanup-onfailure", "CF")],
    );
    let reruns = [vec![1, 3, 4], vec![1, 3, 4]];
    let shard = |stage: usize| RetryShard {
        name: format!("p-r1_a2-{}-0", ["a", "b"][stage]),
        stage,
        first: 0,
        size: 3,
    };
    let plan = retry_plan::RetryPlan {
        attempt: 2,
        reruns: vec![3, 3],
        shards: vec![shard(0), shard(1)],
        ranges: Some(reruns.iter().map(|r| retry_plan::to_ranges(r)).collect()),
    };
    assert_eq!(plan.ranges.as_ref().unwrap()[0], [(1, 2), (3, 5)]);
    for (name, id) in
        [("p-r1_a2-a-0", "A2"), ("p-r1_a2-b-0", "B2"), ("p-r1_a2-aggregate", "G2"), ("p-r1_a2-cleanup", "C2")]
    {
        rec.jobs.insert(name.into(), id.into());
    }
    rec.retry = Some(plan);
    rec.attempt = 2;
    let two = attempt_jobs(&rec, 2);
    let got: Vec<(&str, &str, u32, Option<Vec<u64>>)> =
        two.iter().map(|j| (j.stage.as_str(), j.job_id.as_str(), j.attempt, j.globals.clone())).collect();
    assert_eq!(
        got,
        [
            ("a", "A2", 2, Some(vec![1, 3, 4])),
            ("b", "B2", 2, Some(vec![1, 3, 4])),
            ("aggregation", "G2", 2, None),
            ("cleanup", "C2", 2, None),
        ]
    );
    assert_eq!((two[0].global(2), two[0].position(3), two[0].position(2)), (4, Some(1), None));
    let all = jobs_through(&rec, 2);
    assert_eq!(all.len(), 4 + 4, "attempt 1's jobs, then attempt 2's");
    assert_eq!((all[0].job_id.as_str(), all[0].attempt), ("A", 1));
}
