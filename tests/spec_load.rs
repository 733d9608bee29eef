//! Loading valid specs: the shipped examples, defaults, every key.

use std::path::{Path, PathBuf};

use batchfan::{
    batch::{RetryAction, RetryStrategy},
    spec::{self, CatchUpPolicy, OverlapPolicy, Planner, SecretSource, StageDependency},
};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs").join(name)
}

#[test]
fn orders_example_is_valid() {
    let s = spec::load(&example("orders.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name, "orders");
    assert_eq!(s.planner, Planner::Lines { lines_per_item: 30_000, header: true, columns: orders_columns() });
    assert_eq!(s.stages.len(), 1);
    assert_eq!(s.stages[0].name, "confirm");
    assert_eq!(s.stages[0].job.command, ["orders-confirm"]);
    assert_eq!(s.stages[0].items_per_child, 1);
    assert_eq!(s.aggregation.command, ["orders-aggregate"]);
    assert_eq!(s.cleanup.command, ["batchfan", "job", "cleanup"]);
    assert_eq!(s.alerts.tolerated_failure_percent, 1.0);
    assert_eq!(s.alerts.topic, "orders-alerts");
    assert_eq!(s.storage.bucket, "batchfan-orders");
    assert_eq!(s.storage.table, "batchfan");
    assert_eq!(s.job_queue, "batchfan-orders");
    assert!(s.triggers.manual);
    assert_eq!(s.base_dir, example(""));
}

/// The orders example's header row as the spec names it (the job's parser
/// agrees with it: `batchfan_jobs` test `the_spec_header_is_the_columns_the_job_parses`).
fn orders_columns() -> Vec<String> {
    let s = spec::load(&example("orders.toml")).unwrap_or_else(|e| panic!("{e}"));
    match s.planner {
        Planner::Lines { columns, .. } => {
            assert_eq!((columns.len(), columns[0].as_str(), columns[6].as_str()), (14, "Region", "Order ID"));
            columns
        }
        other => panic!("orders plans by lines, not {other:?}"),
    }
}

#[test]
fn fanout_example_is_valid() {
    let s = spec::load(&example("fanout.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name, "fanout");
    assert_eq!(s.planner, Planner::Range { count: 1000 });
    let names: Vec<&str> = s.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(s.stages[0].job.command, ["fanout-a"]);
    assert_eq!(s.stages[1].job.command, ["fanout-b"]);
    assert!(s.stages.iter().all(|st| st.dependency == StageDependency::NToN && st.job.vcpus == 1.0));
    assert_eq!(s.aggregation.command, ["fanout-sum"]);
    assert_eq!(s.cleanup.command, ["batchfan", "job", "cleanup"]);
}

const MINIMAL: &str = r#"
name = "mini"
[planner]
strategy = "objects"
[[stages]]
name = "s"
command = ["prog"]
"#;

#[test]
fn minimal_spec_gets_every_default() {
    let s = spec::load_str(MINIMAL, "mini.toml", Path::new("/specs")).unwrap();
    assert_eq!(s.job_queue, "batchfan-mini");
    assert_eq!(s.max_array_size, 10_000);
    assert_eq!(s.description, "");
    assert!(s.params.is_empty());
    assert!(s.triggers.manual && s.triggers.cron.is_none() && s.triggers.s3.is_none());
    assert_eq!(s.storage.bucket, "batchfan-mini");
    assert_eq!(s.alerts.topic, "mini-alerts");
    assert_eq!(s.alerts.tolerated_failure_percent, 0.0);
    let job = &s.stages[0].job;
    assert_eq!(job.image, "batchfan-jobs:latest");
    assert_eq!((job.vcpus, job.memory_mib, job.timeout_secs), (1.0, 2048, None));
    assert_eq!(job.retry, RetryStrategy::batchfan_default(3));
    assert_eq!(s.stages[0].dependency, StageDependency::NToN);
    assert_eq!(s.base_dir, Path::new("/specs"));
}

const FULL: &str = r#"
name = "full"
description = "every key"
queue = "q-1"
max_array_size = 500
[params]
region = "eu"
[triggers]
manual = false
[triggers.cron]
schedule = "0 0 2 * * Sun"
timezone = "Europe/Paris"
overlap = "queue"
catch_up = "latest"
input = "s3://in-bucket/data.csv"
[triggers.s3]
bucket = "in-bucket"
prefix = "incoming/"
suffix = ".csv"
settle_seconds = 5
[triggers.webhook]
enabled = false
secret_file = "hook.secret"
max_body_bytes = 1024
[planner]
strategy = "custom"
command = ["./plan.sh", "--x"]
[defaults]
image = "ghcr.io/x/y:1"
vcpus = 0.5
memory = 1024
timeout = 120
env = { A = "1", B = "2" }
retry = { attempts = 5 }
[[stages]]
name = "one"
command = ["p1"]
env = { B = "3" }
items_per_child = 4
[stages.retry]
evaluate_on_exit = [
  { on_exit_code = 75, action = "RETRY" },
  { on_reason = "CannotStart*", action = "exit" },
]
[[stages]]
name = "two"
command = ["p2"]
vcpus = 2
memory = 4096
timeout = 60
items_per_child = 4
dependency = "sequential"
[aggregation]
command = ["agg"]
[cleanup]
image = "other:2"
[alerts]
topic = "t_1"
tolerated_failure_percent = 2.5
[storage]
bucket = "b-1"
table = "tbl.x"
"#;

#[test]
fn full_spec_reads_every_key() {
    let s = spec::load_str(FULL, "full.toml", Path::new("/specs")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((s.description.as_str(), s.job_queue.as_str(), s.max_array_size), ("every key", "q-1", 500));
    assert_eq!(s.params.get("region").map(String::as_str), Some("eu"));
    assert!(!s.triggers.manual);
    let cron = s.triggers.cron.as_ref().unwrap();
    assert_eq!(
        (cron.timezone.as_str(), cron.overlap, cron.catch_up),
        ("Europe/Paris", OverlapPolicy::Queue, CatchUpPolicy::Latest)
    );
    assert_eq!(cron.input.as_deref(), Some("s3://in-bucket/data.csv"));
    let s3 = s.triggers.s3.as_ref().unwrap();
    assert_eq!(
        (s3.bucket.as_str(), s3.prefix.as_str(), s3.suffix.as_str()),
        ("in-bucket", "incoming/", ".csv")
    );
    assert_eq!(s3.settle_secs, 5);
    let hook = s.triggers.webhook.as_ref().unwrap();
    assert!(!hook.enabled);
    assert_eq!(hook.secret, Some(SecretSource::File(PathBuf::from("/specs/hook.secret"))));
    assert_eq!(hook.max_body_bytes, 1024);
    assert_eq!(s.planner, Planner::Custom { command: vec!["./plan.sh".into(), "--x".into()] });

    let one = &s.stages[0];
    assert_eq!(one.job.image, "ghcr.io/x/y:1");
    assert_eq!((one.job.vcpus, one.job.memory_mib, one.job.timeout_secs), (0.5, 1024, Some(120)));
    assert_eq!(one.job.env.get("A").map(String::as_str), Some("1"));
    assert_eq!(one.job.env.get("B").map(String::as_str), Some("3"), "a stage's env wins over [defaults]");
    assert_eq!(one.job.retry.attempts, 5, "attempts come from [defaults]");
    assert_eq!(one.job.retry.evaluate_on_exit.len(), 2);
    assert_eq!(one.job.retry.evaluate_on_exit[0].on_exit_code.as_deref(), Some("75"));
    assert_eq!(one.job.retry.evaluate_on_exit[0].action, RetryAction::Retry);
    assert_eq!(one.job.retry.evaluate_on_exit[1].action, RetryAction::Exit);
    assert_eq!(one.items_per_child, 4);

    let two = &s.stages[1];
    assert_eq!((two.job.vcpus, two.job.memory_mib, two.job.timeout_secs), (2.0, 4096, Some(60)));
    assert_eq!(two.dependency, StageDependency::Sequential);
    assert_eq!(two.job.retry, RetryStrategy::batchfan_default(5));

    assert_eq!(s.aggregation.command, ["agg"]);
    assert_eq!(s.aggregation.image, "ghcr.io/x/y:1", "[defaults] reach the aggregation");
    assert_eq!(s.cleanup.image, "other:2");
    assert_eq!(s.cleanup.command, ["batchfan", "job", "cleanup"]);
    assert_eq!((s.alerts.topic.as_str(), s.alerts.tolerated_failure_percent), ("t_1", 2.5));
    assert_eq!((s.storage.bucket.as_str(), s.storage.table.as_str()), ("b-1", "tbl.x"));
}

#[test]
fn stages_may_be_inline_tables_and_range_count_may_come_later() {
    let text = r#"
name = "inline"
stages = [{ name = "a", command = ["x"] }, { name = "b", command = ["y"], dependency = "sequential" }]
planner = { strategy = "range" }
"#;
    let s = spec::load_str(text, "inline.toml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.stages.len(), 2);
    assert_eq!(s.planner, Planner::Range { count: 0 });
}

#[test]
fn load_reports_a_missing_file_with_its_name() {
    let err = spec::load(Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(err.to_string().starts_with("/nonexistent/x.toml:1:1: cannot read the spec"), "{err}");
}
