//! The recorded payloads parse into `aws_lambda_events` types, survive a serde
//! round trip, and each reaches the right handler path (or a clear error).

use crate::common;

use aws_lambda_events::{
    eventbridge::EventBridgeEvent, lambda_function_urls::LambdaFunctionUrlRequest, s3::S3Event, sns::SnsEvent,
};
use batchfan::batch::JobStatus;
use batchfan_dispatchers::{
    alert,
    trigger::{classify, TriggerPayload},
    DispatchError,
};
use common::fixtures::{fixture, round_trip};
use serde_json::{json, Value};

#[test]
fn s3_notification_with_two_records_round_trips_and_classifies() {
    let v = fixture("s3_put_two_records", &[("INBOX", "inbox")]);
    let event: S3Event = round_trip(&v);
    assert_eq!(event.records.len(), 2);
    assert_eq!(event.records[1].s3.object.version_id.as_deref(), Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"));
    match classify(v).unwrap() {
        TriggerPayload::S3(e) => assert_eq!(e.records[0].event_name.as_deref(), Some("ObjectCreated:Put")),
        other => panic!("not S3: {other:?}"),
    }
}

#[test]
fn the_s3_test_event_is_recognised_and_not_a_run() {
    assert!(matches!(classify(fixture("s3_test_event", &[])).unwrap(), TriggerPayload::S3TestEvent));
}

#[test]
fn scheduled_events_from_rules_and_scheduler_classify() {
    for name in ["scheduled_event", "scheduler_event"] {
        let v = fixture(name, &[("PIPELINE", "p")]);
        let e: EventBridgeEvent<Value> = round_trip(&v);
        assert_eq!(e.detail_type, "Scheduled Event");
        assert!(matches!(classify(v).unwrap(), TriggerPayload::Scheduled(_)), "{name}");
    }
}

#[test]
fn function_url_requests_round_trip_and_classify() {
    let v = fixture("function_url_post", &[]);
    let r: LambdaFunctionUrlRequest = round_trip(&v);
    assert_eq!(r.request_context.http.method.as_deref(), Some("POST"));
    assert_eq!(r.headers.get("X-Batchfan-Delivery").and_then(|h| h.to_str().ok()), Some("DELIVERY"));
    assert!(matches!(classify(v).unwrap(), TriggerPayload::FunctionUrl(_)));
}

#[test]
fn manual_payloads_classify_and_unknown_fields_are_rejected() {
    let ok =
        json!({"pipeline": "p", "request_id": "r-1", "params": {"day": "mon"}, "input": "s3://bkt/in.csv"});
    match classify(ok).unwrap() {
        TriggerPayload::Manual(m) => assert_eq!(m.request_id.as_deref(), Some("r-1")),
        other => panic!("not manual: {other:?}"),
    }
    let err = classify(json!({"pipeline": "p", "param": {}})).unwrap_err();
    assert!(matches!(err, DispatchError::BadEvent(_)));
    assert!(err.to_string().contains("unknown field `param`"), "{err}");
    let err = classify(json!({"pipeline": 7})).unwrap_err();
    assert!(err.to_string().contains("malformed manual run request"), "{err}");
}

#[test]
fn unrecognised_payloads_say_what_was_expected() {
    let err = classify(json!([1, 2])).unwrap_err();
    assert!(err.to_string().contains("expected a JSON object, got an array"), "{err}");
    let err = classify(json!({"hello": "world"})).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("[hello]") && msg.contains("S3 notification"), "{msg}");
    let sns = fixture("sns_run_planned", &[("MESSAGE", "{}")]);
    let err = classify(sns).unwrap_err();
    assert!(err.to_string().contains("\"aws:sns\""), "{err}");
    let batch = fixture("batch_failed_child", &[]);
    let err = classify(batch).unwrap_err();
    assert!(err.to_string().contains("Batch Job State Change"), "{err}");
    let err = classify(json!({"Records": {"not": "a list"}})).unwrap_err();
    assert!(err.to_string().contains("Records is not an array"), "{err}");
}

#[test]
fn sns_records_round_trip() {
    let message = json!({"pipeline": "p", "run_id": "r1"}).to_string();
    let v = fixture("sns_run_planned", &[("PIPELINE", "p"), ("RUN", "r1")]);
    let mut v = v;
    v["Records"][0]["Sns"]["Message"] = Value::String(message.clone());
    let e: SnsEvent = round_trip(&v);
    assert_eq!(e.records[0].sns.message, message);
    assert_eq!(e.records[0].sns.message_attributes["run_id"].value, "r1");
}

#[test]
fn batch_state_changes_with_unknown_fields_parse() {
    let fill = [
        ("JOB_ID", "4c7599ae"),
        ("INDEX", "2"),
        ("JOB_NAME", "p-r1-confirm-0"),
        ("PIPELINE", "p"),
        ("RUN", "r1"),
    ];
    let v = fixture("batch_failed_child", &fill);
    let e: EventBridgeEvent<Value> = round_trip(&v);
    let change = alert::state_change(e).unwrap();
    assert_eq!(change.status, JobStatus::Failed);
    assert_eq!(change.container.exit_code, Some(1));
    assert_eq!(change.container.reason.as_deref(), Some("row 17: Order ID is empty"));
    // Issue 13: each attempt's exit code and log stream sit under `attempts[].container`.
    assert_eq!(change.attempts[0].exit_code, Some(1));
    assert_eq!(change.attempts[0].log_stream_name.as_deref(), Some("p-confirm/default/4c1f0f6c"));
    assert_eq!(change.array_properties.and_then(|a| a.index), Some(2));
    let cascade = fixture(
        "batch_cleanup_cascade",
        &[("JOB_ID", "c1"), ("JOB_NAME", "p-r1-cleanup"), ("RUN", "r1"), ("PIPELINE", "p")],
    );
    let change = alert::state_change(serde_json::from_value(cascade).unwrap()).unwrap();
    assert!(change.attempts.is_empty());
    assert_eq!(change.depends_on.len(), 1, "a dependency without a type is a plain one");
}

#[test]
fn the_alert_function_rejects_other_events() {
    let e: EventBridgeEvent<Value> =
        serde_json::from_value(fixture("scheduled_event", &[("PIPELINE", "p")])).unwrap();
    let err = alert::state_change(e).unwrap_err();
    assert!(err.to_string().contains("not a Batch job state change"), "{err}");
    let mut v = fixture(
        "batch_failed_child",
        &[("JOB_ID", "j"), ("INDEX", "0"), ("JOB_NAME", "n"), ("PIPELINE", "p"), ("RUN", "r")],
    );
    v["detail"]["status"] = json!("EXPLODED");
    let err = alert::state_change(serde_json::from_value(v).unwrap()).unwrap_err();
    assert!(err.to_string().contains("EXPLODED"), "{err}");
}
