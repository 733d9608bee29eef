//! The handlers called with recorded events on a moto server: what runs (in
//! DynamoDB, on SNS), and for every bad event, a clear error or HTTP status,
//! and no run.

use crate::common;

use aws_lambda_events::sns::SnsEvent;
use base64::Engine as _;
use batchfan::{
    run::{RunState, TriggerSource},
    trigger::webhook,
};
use batchfan_dispatchers::{submit, trigger, DispatchError};
use common::{
    fixtures::fixture,
    world::{World, SECRET},
};
use serde_json::{json, Value};

const NOW: i64 = 1_795_413_600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_event_with_two_records_plans_two_runs_with_decoded_keys() {
    let w = World::start().await;
    w.put_csv("in/orders 2026-11-23.csv", 3).await;
    w.put_csv("in/orders-east.csv", 5).await;
    let ctx = w.trigger_context().await;
    let out = trigger::handle(&ctx, w.s3_event(), "invoke-1", NOW).await.expect("planned");
    let runs = out["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["children"], 2);
    assert_eq!(runs[1]["children"], 3);
    let keys: Vec<&str> = runs.iter().map(|r| r["idempotency_key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            format!("s3:{}/in/orders 2026-11-23.csv@0055AED6DCD90281E5", w.inbox),
            format!("s3:{}/in/orders-east.csv@3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", w.inbox),
        ]
    );
    let stored = w.runs().await;
    assert_eq!(stored.len(), 2);
    for r in &stored {
        assert_eq!(r.state, RunState::Planned);
        assert_eq!(r.trigger.source, TriggerSource::S3);
        assert_eq!(r.trigger.params["day"], "today", "the spec's default params apply");
        assert_eq!(r.trigger.input.as_ref().unwrap().bucket, w.inbox);
    }
    let delivered = w.delivered(&w.plan_probe, 2).await;
    assert_eq!(delivered.len(), 2, "one RunPlanned per run");
    assert!(delivered.iter().all(|d| d.message.subject.as_deref() == Some("RunPlanned")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_s3_events_plan_nothing_and_say_why() {
    let w = World::start().await;
    let ctx = w.trigger_context().await;
    let removed = fixture("s3_removed", &[("INBOX", &w.inbox)]);
    let err = trigger::handle(&ctx, removed, "invoke-1", NOW).await.unwrap_err();
    assert!(matches!(err, DispatchError::BadEvent(_)), "{err:?}");
    assert!(err.to_string().contains("\"ObjectRemoved:Delete\" is not an object creation"), "{err}");
    assert!(!err.retryable());

    // One good record and one for an object that was never uploaded: the good
    // one runs, the other fails the invocation (so Lambda retries it, then its
    // failure destination gets it) without a run.
    w.put_csv("in/orders-east.csv", 5).await;
    let err = trigger::handle(&ctx, w.s3_event(), "invoke-2", NOW).await.unwrap_err();
    assert!(err.to_string().starts_with("1 of 2 records failed"), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(w.runs().await.len(), 1);

    // Another bucket than the spec's trigger.
    let other = fixture("s3_put_two_records", &[("INBOX", "somebody-elses")]);
    let err = trigger::handle(&ctx, other, "invoke-3", NOW).await.unwrap_err();
    assert!(err.to_string().contains("outside pipeline orders's trigger"), "{err}");
    assert_eq!(w.runs().await.len(), 1, "no new run");

    let test_event = fixture("s3_test_event", &[("INBOX", &w.inbox)]);
    let out = trigger::handle(&ctx, test_event, "invoke-4", NOW).await.unwrap();
    assert_eq!(out["ignored"], "s3:TestEvent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_events_plan_one_run_per_slot() {
    let w = World::start().await;
    w.put_csv("in/daily.csv", 4).await;
    let ctx = w.trigger_context().await;
    let rule = fixture("scheduled_event", &[("PIPELINE", "orders")]);
    let scheduler = fixture("scheduler_event", &[("PIPELINE", "orders")]);
    let a = trigger::handle(&ctx, rule, "invoke-1", NOW).await.unwrap();
    let b = trigger::handle(&ctx, scheduler, "invoke-2", NOW).await.unwrap();
    assert_eq!(a["runs"][0]["run_id"], b["runs"][0]["run_id"], "the same slot is the same run");
    assert_eq!(a["runs"][0]["idempotency_key"], "cron:2026-11-23T06:00:00Z");
    w.set_state(a["runs"][0]["run_id"].as_str().unwrap(), RunState::Succeeded).await;
    let mut next = fixture("scheduled_event", &[("PIPELINE", "orders")]);
    next["time"] = json!("2026-11-24T06:00:00Z");
    let c = trigger::handle(&ctx, next, "invoke-3", NOW).await.unwrap();
    assert_ne!(a["runs"][0]["run_id"], c["runs"][0]["run_id"]);
    let runs = w.runs().await;
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.trigger.source == TriggerSource::Cron));
    let mut untimed = fixture("scheduler_event", &[("PIPELINE", "orders")]);
    untimed.as_object_mut().unwrap().remove("time");
    let err = trigger::handle(&ctx, untimed, "invoke-4", NOW).await.unwrap_err();
    assert!(err.to_string().contains("aws.scheduler.scheduled-time"), "{err}");
}

/// A scheduled event for the slot at `time`.
fn slot(time: &str) -> Value {
    let mut v = fixture("scheduler_event", &[("PIPELINE", "orders")]);
    v["time"] = json!(time);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_slots_follow_the_overlap_policy() {
    let w = World::start().await;
    w.put_csv("in/daily.csv", 4).await;
    let ctx = w.trigger_context().await;
    // overlap = "skip" (the default): a slot while the last one's run is going starts nothing.
    let a = trigger::handle(&ctx, slot("2026-11-23T06:00:00Z"), "i-1", NOW).await.unwrap();
    let run_a = a["runs"][0]["run_id"].as_str().unwrap().to_owned();
    let skipped = trigger::handle(&ctx, slot("2026-11-24T06:00:00Z"), "i-2", NOW).await.unwrap();
    assert_eq!(skipped["runs"], json!([]), "{skipped}");
    assert_eq!(skipped["skipped"], "cron:2026-11-24T06:00:00Z");
    let reason = skipped["reason"].as_str().unwrap();
    assert!(reason.contains(&run_a) && reason.contains("overlap = skip"), "{reason}");
    // The first slot delivered again is still its own run, not a skip.
    let again = trigger::handle(&ctx, slot("2026-11-23T06:00:00Z"), "i-3", NOW).await.unwrap();
    assert_eq!(again["runs"][0]["run_id"], run_a.as_str());
    // Once the run has ended, a redelivery of the skipped slot stays skipped; the next slot runs.
    w.set_state(&run_a, RunState::Succeeded).await;
    let late = trigger::handle(&ctx, slot("2026-11-24T06:00:00Z"), "i-4", NOW).await.unwrap();
    assert_eq!(late["skipped"], "cron:2026-11-24T06:00:00Z", "{late}");
    let c = trigger::handle(&ctx, slot("2026-11-25T06:00:00Z"), "i-5", NOW).await.unwrap();
    let run_c = c["runs"][0]["run_id"].as_str().unwrap().to_owned();
    assert_ne!(run_c, run_a);
    assert_eq!(w.runs().await.len(), 2);

    // overlap = "allow": the next slot runs beside the one still going.
    let spec = common::world::spec_text(&w.inbox)
        .replace("schedule = \"0 0 6 * * *\"", "schedule = \"0 0 6 * * *\"\noverlap = \"allow\"");
    w.put(&w.bucket, "spec/orders.toml", spec.as_bytes()).await;
    let ctx = w.trigger_context().await;
    assert_eq!(
        ctx.dispatcher.spec.triggers.cron.as_ref().unwrap().overlap,
        batchfan::spec::OverlapPolicy::Allow
    );
    let d = trigger::handle(&ctx, slot("2026-11-26T06:00:00Z"), "i-6", NOW).await.unwrap();
    assert!(d["runs"][0]["run_id"].is_string(), "{d}");
    assert_eq!(w.run(&run_c).await.state, RunState::Planned, "still going");
    assert_eq!(w.runs().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_invokes_plan_with_params_and_reject_what_does_not_fit() {
    let w = World::start().await;
    w.put_csv("in/manual.csv", 2).await;
    let ctx = w.trigger_context().await;
    let input = format!("s3://{}/in/manual.csv", w.inbox);
    let payload =
        json!({"pipeline": "orders", "request_id": "ticket-42", "params": {"day": "mon"}, "input": input});
    let a = trigger::handle(&ctx, payload.clone(), "invoke-1", NOW).await.unwrap();
    let b = trigger::handle(&ctx, payload, "invoke-2", NOW).await.unwrap();
    assert_eq!(a["runs"][0]["run_id"], b["runs"][0]["run_id"]);
    assert_eq!(a["runs"][0]["idempotency_key"], "request:ticket-42");
    let run = w.run(a["runs"][0]["run_id"].as_str().unwrap()).await;
    assert_eq!(run.trigger.params["day"], "mon");

    let cases = [
        (
            json!({"pipeline": "orders", "params": {"colour": "red"}, "input": input}),
            "unknown parameter \"colour\"",
        ),
        (json!({"pipeline": "invoices", "input": input}), "not \"invoices\""),
        (json!({"pipeline": "orders", "input": "/tmp/local.csv"}), "/tmp/local.csv"),
        (json!({"pipeline": "orders", "input": format!("s3://{}/in/nope.csv", w.inbox)}), "does not exist"),
        (json!({"pipeline": "orders"}), "needs an input"),
        // Issue 10 finding 8: request ids are checked before anything reaches DynamoDB.
        (json!({"pipeline": "orders", "request_id": "", "input": input}), "request id is empty"),
        (
            json!({"pipeline": "orders", "request_id": "r".repeat(5000), "input": input}),
            "is 5000 characters long: use 1-100 characters of",
        ),
        (json!({"pipeline": "orders", "request_id": "a/b", "input": input}), "holds '/'"),
    ];
    for (payload, expect) in cases {
        let err = trigger::handle(&ctx, payload.clone(), "invoke-x", NOW).await.unwrap_err();
        assert!(err.to_string().contains(expect), "{payload}: {err}");
        assert!(!err.retryable(), "{payload}: {err}");
    }
    assert_eq!(w.runs().await.len(), 1, "no run from a bad request");
}

/// A Function URL request for `body`, signed at `signed_at` with `secret`.
fn url_request(body: &[u8], signed_at: i64, secret: &[u8], delivery: &str) -> Value {
    let ts = signed_at.to_string();
    let signature = webhook::sign(secret, &ts, delivery, body);
    let mut v = fixture(
        "function_url_post",
        &[("TIMESTAMP", &ts), ("SIGNATURE", &signature), ("DELIVERY", delivery)],
    );
    v["body"] = json!(String::from_utf8_lossy(body));
    v
}

fn status(v: &Value) -> (i64, Value) {
    let body = v["body"].as_str().map(|b| serde_json::from_str(b).expect("JSON body")).unwrap_or(Value::Null);
    (v["statusCode"].as_i64().expect("an HTTP response"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_is_accepted_once_per_delivery() {
    let w = World::start().await;
    w.put_csv("in/hook.csv", 3).await;
    let ctx = w.trigger_context().await;
    let body =
        json!({"params": {"day": "tue"}, "input": format!("s3://{}/in/hook.csv", w.inbox)}).to_string();
    let req = url_request(body.as_bytes(), NOW - 30, SECRET.as_bytes(), "gh-delivery-1");
    let (code, answer) = status(&trigger::handle(&ctx, req.clone(), "invoke-1", NOW).await.unwrap());
    assert_eq!(code, 202, "{answer}");
    let run_id = answer["run_id"].as_str().unwrap().to_owned();
    let (code, again) = status(&trigger::handle(&ctx, req, "invoke-2", NOW).await.unwrap());
    assert_eq!(
        (code, again["run_id"].as_str()),
        (202, Some(run_id.as_str())),
        "a redelivery is the same run"
    );
    let run = w.run(&run_id).await;
    assert_eq!(run.trigger.source, TriggerSource::Webhook);
    assert_eq!(run.trigger.idempotency_key, "webhook:gh-delivery-1");
    assert_eq!(run.trigger.params["day"], "tue");

    // A base64-encoded body (binary content types) is decoded before verifying.
    let mut req = url_request(body.as_bytes(), NOW, SECRET.as_bytes(), "gh-delivery-2");
    req["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body.as_bytes()));
    req["isBase64Encoded"] = json!(true);
    let (code, answer) = status(&trigger::handle(&ctx, req, "invoke-3", NOW).await.unwrap());
    assert_eq!(code, 202, "{answer}");
    assert_ne!(answer["run_id"].as_str(), Some(run_id.as_str()));
    assert_eq!(w.runs().await.len(), 2);
}

/// Issue 10, finding 2: one captured request, resent with 20 new delivery ids
/// within the window, started 20 runs. The id is signed now: each resend is a
/// 401, and only the original delivery has a run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_webhook_resent_under_new_delivery_ids_starts_no_run() {
    let w = World::start().await;
    w.put_csv("in/hook.csv", 3).await;
    let ctx = w.trigger_context().await;
    let body = json!({"input": format!("s3://{}/in/hook.csv", w.inbox)}).to_string();
    let captured = url_request(body.as_bytes(), NOW - 10, SECRET.as_bytes(), "original-1");
    let (code, answer) = status(&trigger::handle(&ctx, captured.clone(), "invoke-0", NOW).await.unwrap());
    assert_eq!(code, 202, "{answer}");
    let run_id = answer["run_id"].as_str().unwrap().to_owned();
    for i in 0..20 {
        let mut replay = captured.clone();
        replay["headers"]["x-batchfan-delivery"] = json!(format!("attacker-{i}"));
        let (code, answer) = status(&trigger::handle(&ctx, replay, "invoke", NOW + 60).await.unwrap());
        assert_eq!(code, 401, "replay {i}: {answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains("signature does not match"),
            "{answer}"
        );
    }
    // The same request again (same signed id) is the same run, not a new one.
    let (code, again) = status(&trigger::handle(&ctx, captured, "invoke-21", NOW + 60).await.unwrap());
    assert_eq!((code, again["run_id"].as_str()), (202, Some(run_id.as_str())), "{again}");
    let runs = w.runs().await;
    assert_eq!(runs.len(), 1, "one run for one signed delivery: {runs:?}");
    let refused = ctx.refusals.lock().unwrap().view();
    assert_eq!(refused.total, 20, "{refused:?}");
    assert_eq!(refused.by_reason[0].reason, "bad-signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_secret_in_secrets_manager_is_read_through_ssm() {
    let mut w = World::start().await;
    // The secret in Secrets Manager (moto's JSON API, as the SDK would call it).
    let secret_id = format!("orders/{}/hook", w.prefix.trim_end_matches('-'));
    let create = json!({"Name": secret_id, "SecretString": "from-secrets-manager"}).to_string();
    let (code, answer) = w
        .moto
        .request_with(
            "POST",
            "/",
            &create,
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "secretsmanager.CreateSecret"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
                ),
            ],
        )
        .unwrap();
    assert_eq!(code, 200, "CreateSecret: {answer}");
    // A spec naming it, and no BATCHFAN_WEBHOOK_SECRET_PARAMETER: the trigger
    // finds the secret from the spec alone.
    let spec = common::world::spec_text(&w.inbox)
        .replace("secret_ssm = \"/orders/webhook\"", &format!("secret_secretsmanager = \"{secret_id}\""));
    w.put(&w.bucket, "spec/orders.toml", spec.as_bytes()).await;
    w.config.webhook_secret_parameter = None;
    w.put_csv("in/hook.csv", 3).await;
    let ctx = w.trigger_context().await;
    let body = json!({"input": format!("s3://{}/in/hook.csv", w.inbox)}).to_string();
    let req = url_request(body.as_bytes(), NOW, b"from-secrets-manager", "sm-1");
    let (code, answer) = status(&trigger::handle(&ctx, req, "invoke-1", NOW).await.unwrap());
    assert_eq!(code, 202, "{answer}");
    // Signed with the SSM parameter's secret (not the one in use): refused.
    let req = url_request(body.as_bytes(), NOW, SECRET.as_bytes(), "sm-2");
    let (code, answer) = status(&trigger::handle(&ctx, req, "invoke-2", NOW).await.unwrap());
    assert_eq!(code, 401, "{answer}");
    assert_eq!(w.runs().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhooks_get_4xx_and_no_run() {
    let w = World::start().await;
    w.put_csv("in/hook.csv", 3).await;
    let ctx = w.trigger_context().await;
    let input = format!("s3://{}/in/hook.csv", w.inbox);
    let body = json!({"input": input}).to_string();
    let good = || url_request(body.as_bytes(), NOW, SECRET.as_bytes(), "d-1");
    let mut unsigned = good();
    unsigned["headers"].as_object_mut().unwrap().remove("x-batchfan-signature");
    let mut no_delivery = good();
    no_delivery["headers"].as_object_mut().unwrap().remove("x-batchfan-delivery");
    let mut tampered = good();
    tampered["body"] = json!(json!({"input": format!("s3://{}/in/other.csv", w.inbox)}).to_string());
    let mut wrong_path = good();
    wrong_path["rawPath"] = json!("/admin");
    let mut get = good();
    get["requestContext"]["http"]["method"] = json!("GET");
    let mut bad_base64 = good();
    bad_base64["isBase64Encoded"] = json!(true);
    bad_base64["body"] = json!("%%%");
    let big = format!("{{\"input\": \"{input}\", \"params\": {{\"day\": \"{}\"}}}}", "x".repeat(300 * 1024));
    let cases = [
        (unsigned, 401, "missing header X-Batchfan-Signature"),
        (no_delivery, 400, "missing header X-Batchfan-Delivery"),
        (url_request(body.as_bytes(), NOW, SECRET.as_bytes(), "with.dot"), 400, "other than '.'"),
        (url_request(body.as_bytes(), NOW, b"not-the-secret", "d-1"), 401, "signature does not match"),
        (tampered, 401, "signature does not match"),
        (url_request(body.as_bytes(), NOW - 301, SECRET.as_bytes(), "d-1"), 401, "301 s away"),
        (url_request(big.as_bytes(), NOW, SECRET.as_bytes(), "d-1"), 413, "over the 262144-byte limit"),
        (url_request(b"{not json", NOW, SECRET.as_bytes(), "d-1"), 400, "body is not valid"),
        (
            url_request(b"{\"params\": {\"colour\": \"red\"}}", NOW, SECRET.as_bytes(), "d-1"),
            400,
            "unknown parameter",
        ),
        (wrong_path, 404, "POST to / or /orders"),
        (get, 405, "method GET is not allowed"),
        (bad_base64, 400, "does not decode"),
    ];
    for (req, expect_code, expect_text) in cases {
        let (code, answer) = status(&trigger::handle(&ctx, req, "invoke", NOW).await.unwrap());
        assert_eq!(code, expect_code, "{expect_text}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(expect_text), "{expect_code}: {error}");
    }
    assert!(w.runs().await.is_empty(), "no run from a rejected webhook");
    assert!(w.quiet(&w.plan_probe).await, "nothing published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_plan_message_submits_nothing() {
    let w = World::start().await;
    let d = w.dispatcher().await;
    let mut v = fixture("sns_run_planned", &[("PIPELINE", "orders"), ("RUN", "r1")]);
    v["Records"][0]["Sns"]["Message"] = json!("{\"pipeline\": \"orders\", \"run\": ");
    let event: SnsEvent = serde_json::from_value(v.clone()).unwrap();
    let err = submit::handle(&d, event, "submit-1").await.unwrap_err();
    assert!(matches!(err, DispatchError::BadEvent(_)), "{err:?}");
    assert!(err.to_string().contains("is not RunPlanned JSON"), "{err}");
    v["Records"][0]["Sns"]["Message"] = json!(json!({"pipeline": "invoices", "run_id": "r1"}).to_string());
    let err = submit::handle(&d, serde_json::from_value(v.clone()).unwrap(), "submit-2").await.unwrap_err();
    assert!(err.to_string().contains("pipeline \"invoices\""), "{err}");
    v["Records"][0]["Sns"]["Message"] =
        json!(json!({"pipeline": "orders", "run_id": "r-unknown"}).to_string());
    let err = submit::handle(&d, serde_json::from_value(v).unwrap(), "submit-3").await.unwrap_err();
    assert!(err.to_string().contains("run r-unknown not found"), "{err}");
    assert!(w.jobs_named("orders-").await.is_empty(), "no job submitted");
}

#[test]
fn the_one_binary_serves_a_handler_for_each_lambda_of_the_deployment() {
    let lambdas: Vec<&str> = batchfan::deploy::COMPONENTS
        .iter()
        .filter(|c| c.runs == batchfan::deploy::Runs::Lambda)
        .map(|c| c.name)
        .collect();
    assert_eq!(batchfan_dispatchers::HANDLERS.to_vec(), lambdas);
}
