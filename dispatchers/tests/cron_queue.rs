//! Issue 12 item 5: cron `overlap = "queue"` on AWS, on a moto server. The
//! trigger holds a slot in DynamoDB while the last scheduled run is going
//! (once, whatever the redeliveries and concurrent ticks), and the alert
//! function starts it when an event ends that run (once, whatever the
//! redeliveries of that event).

use crate::common;

use batchfan::{run::RunState, table::Table, trigger::cron::Held};
use batchfan_dispatchers::{
    alert,
    held::{self, HeldSlots},
    trigger,
};
use common::{fixtures::fixture, world::World};
use serde_json::{json, Value};

const NOW: i64 = 1_795_413_600;

/// A scheduled event for the slot at `time`.
fn slot(time: &str) -> Value {
    let mut v = fixture("scheduler_event", &[("PIPELINE", "orders")]);
    v["time"] = json!(time);
    v
}

/// The world with `overlap = "queue"`, its trigger context, and slot A's run (2026-11-23).
async fn queueing() -> (World, trigger::TriggerContext, String) {
    let w = World::start().await;
    let spec = common::world::spec_text(&w.inbox)
        .replace("schedule = \"0 0 6 * * *\"", "schedule = \"0 0 6 * * *\"\noverlap = \"queue\"");
    w.put(&w.bucket, "spec/orders.toml", spec.as_bytes()).await;
    w.put_csv("in/daily.csv", 4).await;
    let ctx = w.trigger_context().await;
    let a = trigger::handle(&ctx, slot("2026-11-23T06:00:00Z"), "i-1", NOW).await.unwrap();
    let run_a = a["runs"][0]["run_id"].as_str().expect("slot A runs").to_owned();
    (w, ctx, run_a)
}

/// The cleanup's SUCCEEDED event of run `run_id`, as the job state rule delivers it.
fn cleanup_succeeded(w: &World, run_id: &str) -> Value {
    let name = format!("orders-{run_id}-cleanup");
    let fill = [
        ("JOB_ID", "cleanup-job"),
        ("JOB_NAME", name.as_str()),
        ("QUEUE", w.queue.as_str()),
        ("PIPELINE", "orders"),
        ("RUN", run_id),
        ("ROLE", "cleanup"),
    ];
    fixture("batch_succeeded", &fill)
}

async fn held(w: &World) -> Vec<String> {
    let table = w.clients.table();
    HeldSlots::new(&table, &w.table, "orders").list().await.expect("list held slots").0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_held_while_a_run_goes_starts_once_when_the_run_ends() {
    let (w, ctx, run_a) = queueing().await;

    // B and C come while A goes: held, in order, each once (B delivered three
    // times, twice at once; C before a late B).
    let c = trigger::handle(&ctx, slot("2026-11-25T06:00:00Z"), "i-2", NOW).await.unwrap();
    assert_eq!(
        (c["runs"].clone(), c["held"].clone()),
        (json!([]), json!("cron:2026-11-25T06:00:00Z")),
        "{c}"
    );
    assert!(c["reason"].as_str().unwrap().contains(&run_a), "{c}");
    let (b1, b2) = tokio::join!(
        trigger::handle(&ctx, slot("2026-11-24T06:00:00Z"), "i-3", NOW),
        trigger::handle(&ctx, slot("2026-11-24T06:00:00Z"), "i-4", NOW),
    );
    for b in [b1.unwrap(), b2.unwrap()] {
        assert_eq!(b["held"], "cron:2026-11-24T06:00:00Z", "{b}");
    }
    trigger::handle(&ctx, slot("2026-11-24T06:00:00Z"), "i-3", NOW).await.unwrap();
    assert_eq!(held(&w).await, ["cron:2026-11-24T06:00:00Z", "cron:2026-11-25T06:00:00Z"]);
    assert_eq!(w.runs().await.len(), 1, "nothing but A runs");

    // A's cleanup succeeds: the alert function ends A and starts B; the same
    // event delivered again starts nothing more (B is going; C waits for it).
    let alert_ctx = w.alert_context().await;
    let done = cleanup_succeeded(&w, &run_a);
    let first = alert::handle_payload(&alert_ctx, done.clone()).await.unwrap();
    assert_eq!(first["started"]["idempotency_key"], "cron:2026-11-24T06:00:00Z", "{first}");
    let run_b = first["started"]["run_id"].as_str().unwrap().to_owned();
    let again = alert::handle_payload(&alert_ctx, done).await.unwrap();
    assert!(again.get("started").is_none(), "a redelivered end starts nothing: {again}");
    assert_eq!(w.run(&run_a).await.state, RunState::Succeeded);
    let b = w.run(&run_b).await;
    assert_eq!(
        (b.state, b.trigger.idempotency_key.as_str()),
        (RunState::Planned, "cron:2026-11-24T06:00:00Z")
    );
    assert_eq!(held(&w).await, ["cron:2026-11-25T06:00:00Z"]);
    assert_eq!(w.runs().await.len(), 2);
    let planned = w.delivered(&w.plan_probe, 2).await;
    assert!(planned.iter().any(|m| m.message.attributes.get("run_id") == Some(&run_b)), "RunPlanned for B");

    // B delivered late, after it started: its own run, not held again.
    let late = trigger::handle(&ctx, slot("2026-11-24T06:00:00Z"), "i-5", NOW).await.unwrap();
    assert_eq!(late["runs"][0]["run_id"], run_b.as_str(), "{late}");
    assert_eq!(held(&w).await, ["cron:2026-11-25T06:00:00Z"]);

    // B ends: C starts, through the reconcile tick this time (as if B's end event was lost).
    w.set_state(&run_b, RunState::Succeeded).await;
    let tick = alert::handle_payload(&alert_ctx, json!({"batchfan": "reconcile"})).await.unwrap();
    let run_c = tick["started"].as_str().expect("the tick starts C").to_owned();
    assert_eq!(w.run(&run_c).await.trigger.idempotency_key, "cron:2026-11-25T06:00:00Z");
    assert!(held(&w).await.is_empty());
    let idle = alert::handle_payload(&alert_ctx, json!({"batchfan": "reconcile"})).await.unwrap();
    assert_eq!(idle["started"], Value::Null, "{idle}");
    assert_eq!(w.runs().await.len(), 3, "A, B, C: one run per slot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_held_as_the_run_ends_starts_at_once_and_a_full_queue_skips() {
    let (w, ctx, run_a) = queueing().await;

    // The race: the trigger read A as going and held B, but A ended (and its
    // end event found nothing held) before B was written. So the trigger,
    // right after holding, starts what is held if the last run has ended.
    let table = w.clients.table();
    let slots = HeldSlots::new(&table, &w.table, "orders");
    assert_eq!(slots.hold("cron:2026-11-24T06:00:00Z").await.unwrap(), Held::Now);
    assert_eq!(slots.hold("cron:2026-11-24T06:00:00Z").await.unwrap(), Held::Already);
    w.set_state(&run_a, RunState::Failed).await;
    let b = held::start_held(&ctx.dispatcher).await.unwrap().expect("B starts once A has ended");
    assert_eq!(b.trigger.idempotency_key, "cron:2026-11-24T06:00:00Z");
    assert!(held(&w).await.is_empty());
    let d = trigger::handle(&ctx, slot("2026-11-24T06:00:00Z"), "i-2", NOW).await.unwrap();
    assert_eq!(d["runs"][0]["run_id"], b.run_id.as_str(), "B delivered again is B's run: {d}");

    // A queue at its bound: the next slot is skipped (recorded, so a redelivery is too).
    let full: Vec<String> = (0..batchfan::trigger::cron::MAX_QUEUED)
        .map(|i| format!("cron:2027-01-01T00:00:00Z#{i:04}"))
        .collect();
    let item = batchfan::table::Item::new(batchfan::table::Key::new("cron#orders", "held"))
        .with("slots", json!(full))
        .with("version", 7u64);
    table.put(&w.table, item, batchfan::table::Condition::None).await.unwrap();
    for i in ["i-3", "i-4"] {
        let e = trigger::handle(&ctx, slot("2026-11-25T06:00:00Z"), i, NOW).await.unwrap();
        assert_eq!(e["skipped"], "cron:2026-11-25T06:00:00Z", "{e}");
        assert!(e["reason"].as_str().unwrap().contains("1000 slots already wait"), "{e}");
    }
    assert_eq!(held(&w).await.len(), batchfan::trigger::cron::MAX_QUEUED);
    assert_eq!(w.runs().await.len(), 2);
}
