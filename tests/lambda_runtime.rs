//! The dispatchers as Lambda runs them: each zip from
//! `scripts/package-lambdas.sh` deployed in moto as the Terraform module
//! deploys it, unpacked, and its `bootstrap` started under a Lambda Runtime
//! API with exactly the deployed function's environment (read back from
//! moto) plus the endpoints of moto and `batchfan batch-api`
//! (tests/lambda_support). Cold starts, warm invocations, handler errors,
//! init errors, timeouts, and the async invoker's retries ending in the
//! dead-letter queue behave as on Lambda.

use crate::lambda_support;

use std::{collections::BTreeMap, time::Duration};

use batchfan::{aws::AwsClients, run::RunStore};
use lambda_support::{
    deploy,
    function::request_id,
    invoker::invoke_async,
    world::{environ_of, gone, World, MEMORY_MB, PIPELINE, TIMEOUT_SECONDS},
    BlackHole,
};
use serde_json::{json, Value};

/// A recorded payload of dispatchers/tests/fixtures with its placeholders filled.
fn fixture(name: &str, fill: &[(&str, &str)]) -> Value {
    let path = format!("{}/dispatchers/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (from, to) in fill {
        text = text.replace(from, to);
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn manual_run(world: &World, request: &str) -> Value {
    json!({"pipeline": PIPELINE, "request_id": request, "input": format!("s3://{}/in/orders.csv", world.inbox)})
}

async fn put_csv(world: &World, rows: usize) {
    let mut text = String::from("id,amount\n");
    for i in 0..rows {
        text.push_str(&format!("{i},{}\n", i * 10));
    }
    world.put(&world.inbox, "in/orders.csv", text.as_bytes()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_submit_function_runs_with_exactly_its_deployed_environment() {
    let world = World::start().await;
    world.deploy("submit").await;
    let mut submit = world.function("submit", &[]).await;
    let c = submit.config.clone();
    assert_eq!(c.environment, world.module_env("submit"), "moto holds the environment lambdas.tf sets");
    assert_eq!((c.runtime.as_str(), c.handler.as_str()), ("provided.al2023", "submit"));
    assert_eq!(c.architectures, [deploy::architecture()]);
    assert_eq!((c.memory_mb, c.timeout), (MEMORY_MB, Duration::from_secs(TIMEOUT_SECONDS.into())));
    assert_eq!(c.dead_letter_target, Some(deploy::queue_arn(&format!("{PIPELINE}-submit-dlq"))));
    assert_eq!(c.max_retry_attempts, 2);

    // A plan message that is not RunPlanned: the handler's error, the process kept.
    let mut bad = world.sns_event("m-1", &batchfan::topic::Message::new("not json"));
    bad["Records"][0]["Sns"]["Subject"] = json!("RunPlanned");
    let first = submit.invoke(&request_id(), &bad).await;
    assert!(first.cold_start);
    let (kind, message) = first.error();
    assert_eq!(kind, "BadEvent", "{message}\n{}", submit.logs());
    assert!(message.contains("not RunPlanned JSON"), "{message}");

    let env = environ_of(first.pid);
    let deployed: BTreeMap<_, _> =
        env.iter().filter(|(k, _)| k.starts_with("BATCHFAN_")).map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(deployed, c.environment, "the process has the function's variables and no others");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], c.name);
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], MEMORY_MB.to_string());
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], format!("/aws/lambda/{}", c.name));
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["_HANDLER"], "submit", "the handler names the dispatcher the one binary runs");
    assert_eq!(env["AWS_ENDPOINT_URL"], world.moto.endpoint());
    assert_eq!(env["AWS_ENDPOINT_URL_BATCH"], world.batch.endpoint);
    assert!(env["AWS_LAMBDA_RUNTIME_API"].starts_with("127.0.0.1:"));
    for host in ["HOME", "CARGO", "CARGO_MANIFEST_DIR", "BATCHFAN_MOTO_SERVER", "RUST_LOG"] {
        assert!(!env.contains_key(host), "{host} leaked from the host into the function");
    }

    let second = submit.invoke(&request_id(), &bad).await;
    assert!(!second.cold_start, "a handler error keeps the execution environment");
    assert_eq!(second.pid, first.pid);
    assert_eq!(submit.cold_starts, 1);
    submit.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_run_is_planned_by_the_trigger_and_submitted_by_the_submit_function() {
    let world = World::start().await;
    world.deploy("trigger").await;
    world.deploy("submit").await;
    put_csv(&world, 6).await;
    let mut trigger = world.function("trigger", &[]).await;
    let first = trigger.invoke(&request_id(), &manual_run(&world, "req-1")).await;
    assert!(first.cold_start);
    let run = first.response()["runs"][0].clone();
    assert_eq!(run["pipeline"], PIPELINE, "{run}\n{}", trigger.logs());
    assert_eq!(run["children"], 3, "6 lines, 2 per child: {run}");
    let run_id = run["run_id"].as_str().expect("a run id").to_owned();

    // Warm, and idempotent: the same request is the same run.
    let again = trigger.invoke(&request_id(), &manual_run(&world, "req-1")).await;
    assert!(!again.cold_start);
    assert_eq!(again.response()["runs"][0]["run_id"], run_id.as_str());

    // The planner publishes RunPlanned again for the same run (at-least-once):
    // the submitter gets each delivery and submits the jobs once.
    let delivered = world.fx.receive(&world.plan_probe, Duration::from_secs(5)).await;
    assert!(!delivered.is_empty(), "RunPlanned on the plan topic");
    for d in &delivered {
        assert_eq!(d.message.attributes["run_id"], run_id, "{d:?}");
    }
    let mut submit = world.function("submit", &[]).await;
    let mut jobs = Vec::new();
    for d in &delivered {
        let event = world.sns_event(&d.message_id, &d.message);
        let submitted = invoke_async(&mut submit, &world.fx, &event).await;
        assert_eq!(submitted.attempts.len(), 1, "{:?}\n{}", submitted.attempts, submit.logs());
        let answer = submitted.attempts[0].response();
        assert_eq!(answer["runs"][0]["run_id"], run_id.as_str(), "{answer}");
        assert_eq!(answer["runs"][0]["state"], "SUBMITTED", "{answer}");
        jobs.push(answer["runs"][0]["jobs"].clone());
    }
    assert!(jobs.iter().all(|n| *n == jobs[0]), "every delivery answers the same jobs: {jobs:?}");

    // The jobs are in batch-api, under the ids the run records.
    let clients =
        AwsClients::from_sdk_config(&world.moto.sdk_config(), world.moto.settings()).expect("clients");
    let table = clients.table();
    let record = RunStore::new(&table, &world.table).get(&run_id).await.expect("get run").expect("the run");
    assert!(record.jobs.len() >= 3, "two stages, aggregation and cleanup: {:?}", record.jobs);
    let ids: Vec<String> = record.jobs.values().cloned().collect();
    let found =
        world.batch.client().describe_jobs().set_jobs(Some(ids.clone())).send().await.expect("describe jobs");
    assert_eq!(found.jobs().len(), ids.len(), "every job the run records is in batch-api");
    trigger.shutdown().await;
    submit.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_alert_function_cannot_handle_is_retried_twice_then_dead_lettered() {
    let world = World::start().await;
    world.deploy("alert").await;
    let mut alert = world.function("alert", &[]).await;
    let event = fixture("scheduled_event", &[("PIPELINE", PIPELINE)]);
    let done = invoke_async(&mut alert, &world.fx, &event).await;
    assert_eq!(done.attempts.len(), 3, "one attempt and two retries: {:?}", done.attempts);
    for (i, attempt) in done.attempts.iter().enumerate() {
        assert_eq!(attempt.request_id, done.request_id, "retries keep the request id");
        assert_eq!(attempt.cold_start, i == 0, "a handler error keeps the process");
        assert_eq!(attempt.pid, done.attempts[0].pid);
        let (kind, message) = attempt.error();
        assert_eq!(kind, "BadEvent", "{message}\n{}", alert.logs());
        assert!(message.contains("not a Batch job state change"), "{message}");
    }
    let sent = done.dead_letter.clone().expect("a dead letter");

    let url = world
        .fx
        .sqs
        .get_queue_url()
        .queue_name(format!("{PIPELINE}-alert-dlq"))
        .send()
        .await
        .expect("the DLQ")
        .queue_url;
    let got = world
        .fx
        .sqs
        .receive_message()
        .set_queue_url(url)
        .message_attribute_names("All")
        .max_number_of_messages(10)
        .wait_time_seconds(5)
        .send()
        .await
        .expect("receive the dead letters");
    let messages = got.messages();
    assert_eq!(messages.len(), 1, "one dead letter: {messages:?}");
    let m = &messages[0];
    assert_eq!(m.message_id(), Some(sent.as_str()));
    let body: Value = serde_json::from_str(m.body().expect("a body")).expect("the event as JSON");
    assert_eq!(body, event, "the dead letter is the event");
    let attr = |k: &str| {
        m.message_attributes()
            .and_then(|a| a.get(k))
            .and_then(|v| v.string_value())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(attr("RequestID"), done.request_id);
    assert_eq!(attr("ErrorCode"), "200");
    assert!(attr("ErrorMessage").contains("not a Batch job state change"), "{}", attr("ErrorMessage"));
    alert.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_that_cannot_load_the_spec_is_an_init_error_and_the_next_invocation_starts_again() {
    let world = World::start().await;
    world.deploy("alert").await;
    let mut alert = world.function("alert", &[]).await;
    world
        .fx
        .s3
        .delete_object()
        .bucket(&world.bucket)
        .key(world.spec_key())
        .send()
        .await
        .expect("delete the spec");
    let event = fixture("scheduled_event", &[("PIPELINE", PIPELINE)]);
    let failed = alert.invoke(&request_id(), &event).await;
    let (kind, message) = failed.error();
    assert_eq!(kind, "Runtime.InitError", "{message}\n{}", alert.logs());
    assert!(message.starts_with("Misconfigured: "), "the runtime's error type is kept: {message}");
    assert!(message.contains(&world.spec_key()), "the message names the spec: {message}");
    assert!(gone(failed.pid), "the failed environment's process is gone");

    world
        .put(&world.bucket, &world.spec_key(), lambda_support::world::spec_text(&world.inbox).as_bytes())
        .await;
    let next = alert.invoke(&request_id(), &event).await;
    assert!(next.cold_start, "an init error leaves no environment: the next invocation starts one");
    assert_ne!(next.pid, failed.pid);
    assert_eq!(next.error().0, "BadEvent", "the handler ran: {:?}", next.outcome);
    assert_eq!(alert.cold_starts, 2);
    alert.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_the_binary_does_not_serve_is_an_init_error_naming_it() {
    let world = World::start().await;
    // The handler a zip of one binary per function had: `bootstrap`.
    world.deploy_with_handler("alert", "bootstrap").await;
    let mut alert = world.function("alert", &[]).await;
    assert_eq!(alert.config.handler, "bootstrap");
    let event = fixture("scheduled_event", &[("PIPELINE", PIPELINE)]);
    let failed = alert.invoke(&request_id(), &event).await;
    let (kind, message) = failed.error();
    assert_eq!(kind, "Runtime.InitError", "{message}\n{}", alert.logs());
    assert!(message.starts_with("Misconfigured: "), "{message}");
    assert!(
        message.contains("handler is \"bootstrap\"") && message.contains("trigger, submit, alert"),
        "{message}"
    );
    assert!(gone(failed.pid), "the process exited");
    alert.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_past_the_timeout_is_killed_and_the_next_one_is_a_cold_start() {
    let world = World::start().await;
    world.deploy("trigger").await;
    deploy::set_timeout(&world.moto, &World::function_name("trigger"), 3);
    put_csv(&world, 4).await;
    // DynamoDB stops answering: planning waits on it forever.
    let hole = BlackHole::start().await;
    let mut trigger = world.function("trigger", &[("AWS_ENDPOINT_URL_DYNAMODB", &hole.endpoint)]).await;
    assert_eq!(trigger.config.timeout, Duration::from_secs(3), "the timeout is read back from moto");
    let stuck = trigger.invoke(&request_id(), &manual_run(&world, "req-slow")).await;
    let (kind, message) = stuck.error();
    assert_eq!(kind, "Sandbox.Timedout", "{message}\n{}", trigger.logs());
    assert!(message.ends_with("Task timed out after 3.00 seconds"), "{message}");
    assert!(gone(stuck.pid), "a timed-out invocation's process is killed");

    let test_event = fixture("s3_test_event", &[("INBOX", &world.inbox)]);
    let next = trigger.invoke(&request_id(), &test_event).await;
    assert!(next.cold_start, "the next invocation starts a new process");
    assert_ne!(next.pid, stuck.pid);
    assert_eq!(next.response()["ignored"], "s3:TestEvent");
    assert_eq!(trigger.cold_starts, 2);
    trigger.shutdown().await;
}
