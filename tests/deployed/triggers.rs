//! The triggers that are not uploads, as deployed: the webhook through its
//! Function URL (over HTTP), and the EventBridge Scheduler schedule.

use batchfan::{run::RunState, trigger::webhook};
use serde_json::{json, Value};

use super::{
    lambda_support::{deploy::json_api, frontdoor::FrontDoor, router::Router},
    scenarios::{gen_orders, last_run, Wiring},
};

/// Where the schedule's runs read (`input` of terraform/examples/orders/ci/triggers.toml).
const SCHEDULED_INPUT_KEY: &str = "nightly/orders.csv";

/// Puts a small orders CSV at `key`, outside the trigger's prefix: no event.
async fn put_input(r: &Router<'_>, w: &Wiring, key: &str) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let csv = dir.path().join("orders.csv");
    gen_orders(&csv, 200);
    let events = r.put(&w.bucket, key, std::fs::read(&csv).expect("csv")).await;
    assert!(events.is_empty(), "{key} is outside the notification's prefix {:?}: {events:?}", w.prefix);
}

/// POSTs `body` with the webhook headers; returns the status and the JSON answer.
async fn post(url: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{url}/")).body(body);
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.expect("the Function URL answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The headers of a delivery signed with `secret` at `timestamp`.
fn signed(secret: &[u8], timestamp: i64, delivery: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let ts = timestamp.to_string();
    vec![
        (webhook::TIMESTAMP_HEADER, ts.clone()),
        (webhook::DELIVERY_HEADER, delivery.to_owned()),
        (webhook::SIGNATURE_HEADER, webhook::sign(secret, &ts, delivery, body)),
        ("content-type", "application/json".to_owned()),
    ]
}

/// A signed delivery starts one run (and its redelivery answers the same
/// run); a bad signature, a stale timestamp and an oversized body start nothing.
pub async fn signed_webhooks_start_one_run_and_bad_ones_none(r: &mut Router<'_>, w: &Wiring) {
    let key = "webhook/orders.csv";
    put_input(r, w, key).await;
    let trigger = r.function(&w.trigger);
    let parameter = trigger.lock().await.config.environment["BATCHFAN_WEBHOOK_SECRET_PARAMETER"].clone();
    let got = json_api(
        &r.d.moto,
        "ssm",
        "AmazonSSM.GetParameter",
        &json!({"Name": parameter, "WithDecryption": true}),
    );
    let secret = got["Parameter"]["Value"].as_str().expect("the secret").as_bytes().to_vec();
    assert!(secret.len() >= 32, "the module's random secret is long: {} bytes", secret.len());
    let url = r.routes.urls.get(&w.trigger).expect("the trigger has a Function URL").clone();
    let door = FrontDoor::start(trigger, &url).await;
    let body = json!({"input": format!("s3://{}/{key}", w.bucket)}).to_string().into_bytes();
    let now = chrono::Utc::now().timestamp();
    let before = r.runs().await.len();

    let mut bad = signed(&secret, now, "d-bad", &body);
    bad[2].1 = webhook::sign(b"not the secret", &now.to_string(), "d-bad", &body);
    let stale = signed(&secret, now - 600, "d-stale", &body);
    let big = vec![b' '; 300 * 1024];
    let oversized = signed(&secret, now, "d-big", &big);
    for (what, headers, body, status) in [
        ("bad signature", bad, body.clone(), 401),
        ("stale", stale, body.clone(), 401),
        ("oversized", oversized, big, 413),
    ] {
        let (got, answer) = post(&door.url, &headers, body).await;
        assert_eq!(got, status, "{what}: {answer}");
    }
    assert_eq!(r.runs().await.len(), before, "refused deliveries start nothing");

    let good = signed(&secret, now, "d-good", &body);
    let (status, answer) = post(&door.url, &good, body.clone()).await;
    assert_eq!(status, 202, "{answer}");
    let run_id = answer["run_id"].as_str().unwrap_or_else(|| panic!("no run_id in {answer}")).to_owned();
    let (status, again) = post(&door.url, &good, body).await;
    assert_eq!((status, again["run_id"].as_str()), (202, Some(run_id.as_str())), "a redelivery: {again}");
    let run = r.settle(&run_id).await;
    assert_eq!(run.state, RunState::Succeeded, "{:?}", run.failure);
    assert_eq!(r.runs().await.len(), before + 1, "one run");
}

/// The event the deployed schedule sends for the slot at `time` (its
/// target's input with the scheduler's placeholders filled in).
fn tick(r: &Router<'_>, w: &Wiring, time: &str) -> Value {
    let [schedule] = r.routes.schedules.as_slice() else { panic!("one schedule: {:?}", r.routes.schedules) };
    assert_eq!(schedule.target, w.trigger, "the schedule invokes the trigger");
    let input = schedule
        .input
        .replace("<aws.scheduler.scheduled-time>", time)
        .replace("<aws.scheduler.execution-id>", &super::lambda_support::function::request_id())
        .replace("<aws.scheduler.schedule-arn>", &schedule.arn);
    serde_json::from_str(&input).unwrap_or_else(|e| panic!("the schedule's input is not JSON ({e}): {input}"))
}

/// The trigger's answer to the last invocation.
fn last_answer(r: &Router<'_>) -> Value {
    let (_, last) = r.invocations.last().expect("an invocation");
    last.attempts.last().expect("an attempt").response().clone()
}

/// A tick starts a run; the next tick, while it runs, is skipped
/// (`overlap = "skip"`); a tick after it ended starts a run again.
pub async fn a_tick_starts_a_run_and_the_next_is_skipped_while_it_runs(r: &mut Router<'_>, w: &Wiring) {
    put_input(r, w, SCHEDULED_INPUT_KEY).await;
    let before = r.runs().await.len();
    r.invoke(&w.trigger, &tick(r, w, "2026-12-01T01:30:00Z")).await;
    let first = last_run(r);
    r.invoke(&w.trigger, &tick(r, w, "2026-12-02T01:30:00Z")).await;
    let answer = last_answer(r);
    assert_eq!(answer["runs"], json!([]), "the second tick starts nothing while {first} runs: {answer}");
    assert!(answer["reason"].as_str().is_some_and(|s| s.contains(&first)), "{answer}");
    let run = r.settle(&first).await;
    assert_eq!(run.state, RunState::Succeeded, "{:?}", run.failure);
    assert_eq!(r.runs().await.len(), before + 1, "one run for two ticks");

    r.invoke(&w.trigger, &tick(r, w, "2026-12-03T01:30:00Z")).await;
    let third = last_run(r);
    assert_ne!(third, first);
    let run = r.settle(&third).await;
    assert_eq!(run.state, RunState::Succeeded, "{:?}", run.failure);
}

/// Issue 12 item 5: the spec changed to `overlap = "queue"` and applied again
/// (an update in place, as a user changing their spec makes); a tick while a
/// run goes is held in the table, delivered twice it is held once, and the
/// alert function starts it when that run ends — one run for it.
pub async fn with_overlap_queue_a_tick_held_while_a_run_goes_starts_when_it_ends(
    r: &mut Router<'_>,
    w: &Wiring,
) {
    let printed = r.d.update_spec(|spec| spec.replace("overlap = \"skip\"", "overlap = \"queue\""));
    let plan =
        printed.lines().find(|l| l.starts_with("Plan:")).unwrap_or_else(|| panic!("no plan: {printed}"));
    assert!(plan.contains(" 0 to add") && plan.contains(" 0 to destroy"), "changed in place: {plan}");
    r.reload().await;
    let before = r.runs().await;
    r.invoke(&w.trigger, &tick(r, w, "2026-12-08T01:30:00Z")).await;
    let first = last_run(r);
    let held = tick(r, w, "2026-12-09T01:30:00Z");
    for _ in 0..2 {
        r.invoke(&w.trigger, &held).await;
        let answer = last_answer(r);
        assert_eq!(answer["held"], "cron:2026-12-09T01:30:00Z", "held while {first} runs: {answer}");
        assert_eq!(answer["runs"], json!([]), "{answer}");
    }
    let run = r.settle(&first).await;
    assert_eq!(run.state, RunState::Succeeded, "{:?}", run.failure);
    let started: Vec<String> =
        r.runs().await.into_iter().filter(|id| !before.contains(id) && *id != first).collect();
    let [second] = started.as_slice() else {
        panic!("one run for the held slot, started when {first} ended: {started:?}")
    };
    let run = r.settle(second).await;
    assert_eq!(run.state, RunState::Succeeded, "{:?}", run.failure);
    assert_eq!(run.trigger.idempotency_key, "cron:2026-12-09T01:30:00Z");
    let started_by_alert = r.invocations.iter().filter(|(name, i)| {
        let answer = i.attempts.last().map(|a| a.response());
        name.ends_with("-alert") && answer.is_some_and(|a| a["started"]["run_id"] == second.as_str())
    });
    assert_eq!(started_by_alert.count(), 1, "the alert function started {second}, once");
}
