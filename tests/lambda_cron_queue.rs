//! Issue 12 item 5 in the Lambda harness (tests/lambda_support): cron
//! `overlap = "queue"` with the deployed trigger, submit and alert functions.
//! A schedule tick starts run A; the next tick while A runs is held in the
//! table; A's jobs run in `batchfan batch-api`, and the event of A's cleanup
//! succeeding, given to the alert function (twice: events are at-least-once),
//! ends A and starts the held slot's run, once.

use crate::lambda_support;

use std::time::Duration;

use aws_sdk_batch::types::JobStatus;
use batchfan::{aws::AwsClients, run::RunStore};
use lambda_support::{
    batch_api::wait_done,
    function::{request_id, Function},
    world::{spec_text, World, PIPELINE},
};
use serde_json::{json, Value};

/// A recorded payload of dispatchers/tests/fixtures with its placeholders filled.
fn fixture(name: &str, fill: &[(&str, &str)]) -> Value {
    let path = format!("{}/dispatchers/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let text = fill.iter().fold(text, |t, (from, to)| t.replace(from, to));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The scheduled event of the slot at `time`, as the module's schedule sends it.
fn tick(time: &str) -> Value {
    let mut v = fixture("scheduler_event", &[("PIPELINE", PIPELINE)]);
    v["time"] = json!(time);
    v
}

/// Submits every run planned on the plan topic since the last call, through the submit function.
async fn submit_planned(world: &World, submit: &mut Function) -> Vec<String> {
    let mut runs = Vec::new();
    for d in world.fx.receive(&world.plan_probe, Duration::from_secs(5)).await {
        let answer = submit.invoke(&request_id(), &world.sns_event(&d.message_id, &d.message)).await;
        let run = answer.response()["runs"][0]["run_id"].as_str().expect("the run submitted").to_owned();
        if !runs.contains(&run) {
            runs.push(run);
        }
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_held_while_the_last_run_goes_starts_when_the_alert_function_sees_it_end() {
    let world = World::start().await;
    // Every job runs `true` (the harness's jobs cannot reach moto), so A's cleanup succeeds.
    let spec = format!(
        "{}[aggregation]\ncommand = [\"true\"]\n[cleanup]\ncommand = [\"true\"]\n\
         [triggers.cron]\nschedule = \"0 0 6 * * *\"\noverlap = \"queue\"\ninput = \"s3://{}/in/orders.csv\"\n",
        spec_text(&world.inbox),
        world.inbox
    );
    world.put(&world.bucket, &world.spec_key(), spec.as_bytes()).await;
    world.put(&world.inbox, "in/orders.csv", b"id,amount\n1,10\n2,20\n3,30\n4,40\n").await;
    for f in ["trigger", "submit", "alert"] {
        world.deploy(f).await;
    }
    let (mut trigger, mut submit, mut alert) = (
        world.function("trigger", &[]).await,
        world.function("submit", &[]).await,
        world.function("alert", &[]).await,
    );

    let a = trigger.invoke(&request_id(), &tick("2026-11-23T06:00:00Z")).await;
    let run_a = a.response()["runs"][0]["run_id"].as_str().expect("slot A starts a run").to_owned();
    let b = trigger.invoke(&request_id(), &tick("2026-11-24T06:00:00Z")).await;
    assert_eq!(b.response()["held"], "cron:2026-11-24T06:00:00Z", "{:?}\n{}", b.outcome, trigger.logs());
    assert_eq!(b.response()["runs"], json!([]));

    // A runs in batch-api to its cleanup.
    assert_eq!(submit_planned(&world, &mut submit).await, std::slice::from_ref(&run_a));
    let clients =
        AwsClients::from_sdk_config(&world.moto.sdk_config(), world.moto.settings()).expect("clients");
    let table = clients.table();
    let store = RunStore::new(&table, &world.table);
    let record = store.get(&run_a).await.expect("get A").expect("run A");
    let (cleanup_name, cleanup_id) =
        record.jobs.iter().find(|(n, _)| n.ends_with("-cleanup")).expect("A's cleanup job");
    let done = wait_done(&world.batch.client(), cleanup_id).await;
    assert_eq!(done.status(), Some(&JobStatus::Succeeded), "{done:?}");

    // The cleanup's SUCCEEDED event, delivered twice: A ends, B starts once.
    let event = fixture(
        "batch_succeeded",
        &[
            ("JOB_ID", cleanup_id.as_str()),
            ("JOB_NAME", cleanup_name.as_str()),
            ("QUEUE", lambda_support::batch_api::QUEUE),
            ("PIPELINE", PIPELINE),
            ("RUN", &run_a),
            ("ROLE", "cleanup"),
        ],
    );
    let first = alert.invoke(&request_id(), &event).await;
    let started = first.response()["started"].clone();
    assert_eq!(started["idempotency_key"], "cron:2026-11-24T06:00:00Z", "{started}\n{}", alert.logs());
    let run_b = started["run_id"].as_str().expect("B's run").to_owned();
    let again = alert.invoke(&request_id(), &event).await;
    assert!(
        again.response().get("started").is_none(),
        "a redelivered end starts nothing: {:?}",
        again.outcome
    );
    assert_eq!(store.get(&run_a).await.unwrap().unwrap().state.as_str(), "SUCCEEDED");
    let b_record = store.get(&run_b).await.unwrap().expect("run B");
    assert_eq!(b_record.trigger.idempotency_key, "cron:2026-11-24T06:00:00Z");
    assert_eq!(store.list_runs(Some(PIPELINE)).await.unwrap().len(), 2, "A and B, nothing else");

    // B was planned by the alert function: its RunPlanned reaches the submit function.
    assert_eq!(submit_planned(&world, &mut submit).await, [run_b]);
    for f in [&mut trigger, &mut submit, &mut alert] {
        f.shutdown().await;
    }
}
