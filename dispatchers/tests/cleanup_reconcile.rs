//! The failure cleanup that waited forever on AWS (README "Not built yet"):
//! an array parent reported FAILED while children still run makes the
//! cleanup wait for them, and the job state rule delivers no child's success
//! (one alert invocation per run, not one per child). The alert function's
//! reconcile tick submits the cleanup once they have ended.
//!
//! moto answers DynamoDB, S3 and SNS; `batchfan batch-api` (in this process,
//! over the engine) runs the jobs; the parent's early FAILED is what AWS may
//! report ([`ParentFailsEarly`]).

use crate::batch_queue;
use crate::common;
use crate::parent_fails_early;

use std::sync::Arc;

use aws_sdk_batch::types::{ContainerProperties, JobDefinitionType, ResourceRequirement, ResourceType};
use batchfan::{
    aws::{static_sdk_config, AwsClients},
    batch::{Batch, JobDetail, JobQuery, JobStatus},
    batchapi::{BatchApi, BatchApiConfig},
    engine::{EngineConfig, LocalEngine, ShutdownMode},
    run::{monitor::event_of, planner, submit, Ports, RunState, TriggerEvent, TriggerSource},
};
use batchfan_dispatchers::alert::{self, AlertContext};
use common::world::World;
use parent_fails_early::{wait_status, ParentFailsEarly};
use serde_json::{json, Value};

/// Batch API of a fresh engine on a free port, with queue `q`: the adapters' clients and an SDK client.
async fn batch_api(dir: &std::path::Path) -> (AwsClients, aws_sdk_batch::Client, LocalEngine) {
    let mut config = EngineConfig::new(dir);
    (config.vcpus, config.memory_mib) = (4.0, 4096);
    let engine = LocalEngine::open(config).await.expect("engine");
    let api = Arc::new(BatchApi::open(engine.clone(), BatchApiConfig::new(dir)).expect("api"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(batchfan::batchapi::serve(listener, api, std::future::pending()));
    let sdk = static_sdk_config(&endpoint, "us-east-1", "t", "t");
    let client = aws_sdk_batch::Client::new(&sdk);
    batch_queue::create_queue(&client, "ce", "q").await;
    (AwsClients::from_sdk_config(&sdk, Default::default()).expect("clients"), client, engine)
}

/// Registers the pipeline's job definitions in batch-api (the stages' commands come with each job).
async fn register(client: &aws_sdk_batch::Client, prefix: &str) {
    let rr = |t, v: &str| ResourceRequirement::builder().r#type(t).value(v).build();
    let needs = vec![rr(ResourceType::Vcpu, "1"), rr(ResourceType::Memory, "64")];
    let container = ContainerProperties::builder().image("busybox").command("true");
    let container = container.set_resource_requirements(Some(needs)).build();
    for what in ["parse", "aggregation", "cleanup", "barrier"] {
        client
            .register_job_definition()
            .job_definition_name(batchfan::deploy::job_definition_name(prefix, what))
            .r#type(JobDefinitionType::Container)
            .container_properties(container.clone())
            .send()
            .await
            .expect("register a job definition");
    }
}

/// Three children: child 0 fails at once, 1 and 2 wait for the gate file.
fn spec_text(gate: &std::path::Path) -> String {
    let script = format!(
        "[ \"$AWS_BATCH_JOB_ARRAY_INDEX\" = 0 ] && exit 1; while [ ! -e {} ]; do sleep 0.05; done",
        gate.display()
    );
    format!(
        "name = \"orders\"\n[triggers]\nmanual = true\n[planner]\nstrategy = \"range\"\ncount = 3\n\
         [[stages]]\nname = \"parse\"\ncommand = [\"sh\", \"-c\", {script:?}]\n\
         [aggregation]\ncommand = [\"true\"]\n[cleanup]\ncommand = [\"true\"]\n[storage]\nbucket = \"ignored\"\n"
    )
}

/// The EventBridge event AWS would deliver for `d`.
fn delivered(d: &JobDetail) -> Value {
    let envelope =
        event_of(d).into_envelope(format!("ev-{}-{}", d.job_id, d.status), "2026-12-02T00:00:00Z".into());
    serde_json::to_value(envelope).expect("an event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_waiting_for_children_whose_successes_are_not_delivered_runs_at_the_next_tick() {
    let w = World::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let gate = dir.path().join("gate");
    let (batch_clients, client, engine) = batch_api(&dir.path().join("engine")).await;
    register(&client, &w.prefix).await;
    w.put(&w.bucket, "spec/orders.toml", spec_text(&gate).as_bytes()).await;
    let early = Arc::new(ParentFailsEarly::new(Arc::new(batch_clients.batch())));
    let mut config = w.config.clone();
    config.target.job_queue = Some("q".into());
    let ports = Ports { batch: early.clone(), ..w.ports() };
    let d = batchfan_dispatchers::Dispatcher::load(config, ports).await.expect("dispatcher");
    let ports = d.ports.clone();
    let trigger = TriggerEvent {
        pipeline: "orders".into(),
        source: TriggerSource::Manual,
        idempotency_key: "request:r1".into(),
        input: None,
        params: Default::default(),
    };
    let run_id = planner::plan(&ports, &d.spec, trigger).await.expect("planned").run_id;
    let rec = submit::submit(&ports, &d.spec, &run_id, "s1").await.expect("submitted");
    let id_of = |suffix: &str| rec.jobs.iter().find(|(n, _)| n.ends_with(suffix)).map(|(_, id)| id.clone());
    let (stage, agg, cleanup) = (
        id_of("-parse-0").expect("stage"),
        id_of("-aggregate").expect("aggregation"),
        id_of("-cleanup").expect("cleanup"),
    );
    let ctx = AlertContext::new(d);

    // Child 0 fails (delivered: a FAILED); AWS reports the parent and its cascade FAILED while 1 and 2 run.
    let child0 = wait_status(early.as_ref(), &format!("{stage}:0"), JobStatus::Failed).await;
    wait_status(early.as_ref(), &format!("{stage}:1"), JobStatus::Running).await;
    early.fail([stage.clone(), agg.clone(), cleanup.clone()]);
    alert::handle_payload(&ctx, delivered(&child0)).await.expect("child 0's failure");
    let cascade = early.describe_jobs(std::slice::from_ref(&cleanup)).await.unwrap().remove(0);
    alert::handle_payload(&ctx, delivered(&cascade)).await.expect("the cleanup's cascade");
    assert!(w.run(&run_id).await.times.contains_key("cleanup_waiting"));
    let onfailure = JobQuery::ByName {
        queue: "q".into(),
        pattern: batchfan::graph::job_name("orders", &run_id, "cleanup-onfailure"),
    };
    let tick = alert::handle_payload(&ctx, json!({"batchfan": "reconcile"})).await.unwrap();
    assert_eq!(tick["waiting"], 1, "{tick}");
    assert!(ports.batch.list_jobs(&onfailure).await.unwrap().is_empty(), "no cleanup while children run");

    // The children succeed: the rule delivers none of it. The next tick submits the cleanup, once.
    std::fs::write(&gate, "").unwrap();
    for i in [1, 2] {
        wait_status(early.as_ref(), &format!("{stage}:{i}"), JobStatus::Succeeded).await;
    }
    for _ in 0..2 {
        alert::handle_payload(&ctx, json!({"batchfan": "reconcile"})).await.expect("tick");
    }
    let submitted = ports.batch.list_jobs(&onfailure).await.unwrap();
    assert_eq!(submitted.len(), 1, "one failure cleanup: {submitted:?}");
    assert!(!w.run(&run_id).await.times.contains_key("cleanup_waiting"));
    let idle = alert::handle_payload(&ctx, json!({"batchfan": "reconcile"})).await.unwrap();
    assert_eq!(idle["waiting"], 0, "the run left the waiting list: {idle}");

    // The failure cleanup succeeds (delivered: the cleanup definition's success), twice: the run ends FAILED.
    let done = wait_status(early.as_ref(), &submitted[0].job_id, JobStatus::Succeeded).await;
    for _ in 0..2 {
        alert::handle_payload(&ctx, delivered(&done)).await.expect("the cleanup's success");
    }
    assert_eq!(w.run(&run_id).await.state, RunState::Failed);
    let alerts = w.delivered(&w.alerts_probe, 1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].message.body.contains("\"index\":0"), "{}", alerts[0].message.body);
    assert!(w.quiet(&w.alerts_probe).await, "one alert for the run");
    engine.shutdown(ShutdownMode::Abandon).await;
}
