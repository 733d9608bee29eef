//! The event fixtures (`tests/fixtures/batch_events/`) round-trip through
//! [`JobStateChange`], and every value batchfan reads is the one in the JSON.

use serde_json::{json, Value};

use super::*;

/// (file name, contents) of every fixture.
pub(crate) const FIXTURES: [(&str, &str); 5] = [
    ("aws_doc_runnable", include_str!("../../tests/fixtures/batch_events/aws_doc_runnable.json")),
    ("aws_failed_child", include_str!("../../tests/fixtures/batch_events/aws_failed_child.json")),
    (
        "aws_array_parent_failed",
        include_str!("../../tests/fixtures/batch_events/aws_array_parent_failed.json"),
    ),
    ("aws_dependency_failed", include_str!("../../tests/fixtures/batch_events/aws_dependency_failed.json")),
    ("aws_retried_succeeded", include_str!("../../tests/fixtures/batch_events/aws_retried_succeeded.json")),
];

fn parse(name: &str) -> (Value, Envelope<JobStateChange>) {
    let (_, text) = FIXTURES.iter().find(|(n, _)| *n == name).expect("fixture");
    let raw: Value = serde_json::from_str(text).expect("fixture is JSON");
    let event = serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    (raw, event)
}

/// Every key of `ours` is in `raw` at the same place, with a value of the same JSON type.
fn within(ours: &Value, raw: &Value, at: &str) {
    match (ours, raw) {
        (Value::Object(o), Value::Object(r)) => {
            for (k, v) in o {
                let rv = r.get(k).unwrap_or_else(|| panic!("{at}.{k} is written but not in AWS's event"));
                within(v, rv, &format!("{at}.{k}"));
            }
        }
        (Value::Array(o), Value::Array(r)) => {
            assert_eq!(o.len(), r.len(), "{at}: length");
            for (i, (a, b)) in o.iter().zip(r).enumerate() {
                within(a, b, &format!("{at}[{i}]"));
            }
        }
        (o, r) => {
            let kind = |v: &Value| std::mem::discriminant(v);
            assert_eq!(kind(o), kind(r), "{at}: {o} is not of the type of {r}");
            assert_eq!(o, r, "{at}");
        }
    }
}

#[test]
fn every_fixture_round_trips_and_writes_only_what_aws_writes() {
    for (name, _) in FIXTURES {
        let (raw, event) = parse(name);
        assert_eq!(event.source, SOURCE, "{name}");
        assert_eq!(event.detail_type, DETAIL_TYPE, "{name}");
        let ours = serde_json::to_value(&event).unwrap();
        let again: Envelope<JobStateChange> = serde_json::from_value(ours.clone()).unwrap();
        assert_eq!(again, event, "{name}: round trip");
        within(&ours, &raw, name);
        // Every attempt's container part is read from where AWS nests it.
        let attempts = raw["detail"]["attempts"].as_array().unwrap();
        assert_eq!(event.detail.attempts.len(), attempts.len(), "{name}");
        for (a, r) in event.detail.attempts.iter().zip(attempts) {
            assert_eq!(a.exit_code.map(i64::from), r["container"]["exitCode"].as_i64(), "{name}");
            assert_eq!(a.log_stream_name.as_deref(), r["container"]["logStreamName"].as_str(), "{name}");
            assert_eq!(a.started_at, r["startedAt"].as_i64(), "{name}");
        }
    }
}

/// Issue 13 item 4: a fixture added to the directory but not to [`FIXTURES`]
/// would be checked by nothing.
#[test]
fn every_fixture_file_is_in_the_list() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/batch_events");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".json").map(str::to_owned))
        .collect();
    files.sort();
    let mut listed: Vec<&str> = FIXTURES.iter().map(|(n, _)| *n).collect();
    listed.sort();
    assert_eq!(files, listed, "add the new fixture to FIXTURES (and its README)");
}

#[test]
fn the_documented_sample_reads_field_for_field() {
    let (_, e) = parse("aws_doc_runnable");
    let d = e.detail;
    assert_eq!((d.job_name.as_str(), d.status), ("event-test", JobStatus::Runnable));
    assert_eq!(d.created_at, Some(1641944200058));
    assert_eq!(d.retry_strategy.map(|r| r.attempts), Some(2));
    assert_eq!(d.container.command, ["sleep", "600"]);
    assert_eq!(d.propagate_tags, Some(false));
    assert!(d.tags["resourceArn"].ends_with(":job/4c7599ae-0a82-49aa-ba5a-4727fcce14a8"));
}

/// Issue 13: the per-attempt exit code and log stream were lost on AWS's shape.
#[test]
fn a_failed_child_keeps_each_attempt() {
    let (_, e) = parse("aws_failed_child");
    let d = e.detail;
    let codes: Vec<Option<i32>> = d.attempts.iter().map(|a| a.exit_code).collect();
    assert_eq!(codes, [Some(75), Some(1)]);
    assert_eq!(d.attempts[1].reason.as_deref(), Some("row 17: Order ID is empty"));
    assert!(d.attempts[0]
        .log_stream_name
        .as_deref()
        .unwrap()
        .starts_with("first-run-job-definition/default/"));
    assert_eq!(d.container.exit_code, Some(1));
    assert_eq!(d.array_properties.and_then(|a| a.index), Some(3));
}

#[test]
fn array_parents_and_dependency_failures_read() {
    let (_, parent) = parse("aws_array_parent_failed");
    let a = parent.detail.array_properties.expect("arrayProperties");
    assert_eq!((a.size, a.index), (Some(4), None));
    assert_eq!(a.status_summary[&JobStatus::Running], 2);
    let (_, dep) = parse("aws_dependency_failed");
    assert!(dep.detail.attempts.is_empty());
    assert_eq!(dep.detail.depends_on, [JobDependency::on("4c7599ae-0a82-49aa-ba5a-4727fcce14a8")]);
}

#[test]
fn unknown_fields_are_ignored() {
    let (mut raw, event) = parse("aws_failed_child");
    raw["detail"]["someFieldAwsAddsLater"] = json!({"nested": [1, 2]});
    raw["detail"]["attempts"][0]["container"]["futureField"] = json!(true);
    let again: Envelope<JobStateChange> = serde_json::from_value(raw).unwrap();
    assert_eq!(again, event);
}
