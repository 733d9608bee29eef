//! "Shaped like AWS's event": the documented `Batch Job State Change` sample
//! (`tests/fixtures/batch_events/aws_doc_runnable.json`) compared key by key
//! and type by type with an event batchfan sent. Shared by the workspace's
//! test crates (`#[path = "../../tests/support/event_shape.rs"]` from
//! `dispatchers/tests`).

#![allow(dead_code)]

use serde_json::Value;

/// The AWS Batch User Guide's sample event.
pub const DOC_SAMPLE: &str = include_str!("../fixtures/batch_events/aws_doc_runnable.json");

/// Every member of `JobDetail` (botocore `batch/2016-08-10`): the keys a detail may have.
pub const JOB_DETAIL_KEYS: [&str; 30] = [
    "jobArn",
    "jobName",
    "jobId",
    "jobQueue",
    "status",
    "shareIdentifier",
    "schedulingPriority",
    "attempts",
    "statusReason",
    "createdAt",
    "retryStrategy",
    "startedAt",
    "stoppedAt",
    "dependsOn",
    "jobDefinition",
    "parameters",
    "container",
    "nodeDetails",
    "nodeProperties",
    "arrayProperties",
    "timeout",
    "tags",
    "propagateTags",
    "platformCapabilities",
    "eksProperties",
    "eksAttempts",
    "ecsProperties",
    "isCancelled",
    "isTerminated",
    "consumableResourceProperties",
];

/// Maps whose keys are the user's (the sample's are its own job's).
const USER_MAPS: [&str; 2] = ["tags", "parameters"];

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of `sample` is in `got` at the same place with a value of the
/// same JSON type (arrays: their first elements, when both have one).
pub fn assert_shaped_like(sample: &Value, got: &Value, at: &str) {
    assert_eq!(type_name(got), type_name(sample), "{at}: {got} is not of the type of AWS's {sample}");
    match (sample, got) {
        (Value::Object(s), Value::Object(g)) => {
            for (k, sv) in s {
                let gv =
                    g.get(k).unwrap_or_else(|| panic!("{at}.{k} is in AWS's event but not in ours: {got}"));
                if USER_MAPS.contains(&k.as_str()) {
                    // The user's own keys: only the type must match.
                    assert_eq!(type_name(gv), type_name(sv), "{at}.{k}");
                } else {
                    assert_shaped_like(sv, gv, &format!("{at}.{k}"));
                }
            }
        }
        (Value::Array(s), Value::Array(g)) => {
            if let (Some(sv), Some(gv)) = (s.first(), g.first()) {
                assert_shaped_like(sv, gv, &format!("{at}[0]"));
            }
        }
        _ => {}
    }
}

/// `event` has every key and type of AWS's documented sample (but the
/// envelope keys in `missing`), and its `detail` only keys that `JobDetail` has.
pub fn assert_event_shaped_like_aws_but(event: &Value, missing: &[&str]) {
    let mut sample: Value = serde_json::from_str(DOC_SAMPLE).expect("the sample is JSON");
    for key in missing {
        sample.as_object_mut().expect("an object").remove(*key);
    }
    assert_shaped_like(&sample, event, "event");
    for key in event["detail"].as_object().expect("detail is an object").keys() {
        assert!(JOB_DETAIL_KEYS.contains(&key.as_str()), "detail.{key} is no JobDetail member");
    }
}

/// [`assert_event_shaped_like_aws_but`] with nothing missing.
pub fn assert_event_shaped_like_aws(event: &Value) {
    assert_event_shaped_like_aws_but(event, &[]);
}
