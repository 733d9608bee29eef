//! Issue 11 item 4, issue 13 item 4: the events `batchfan batch-api` sends
//! to EventBridge (moto's, through a rule with an SQS target, as a deployed
//! pipeline routes them) deserialize into `aws_lambda_events`' EventBridge
//! type and into the alert function's input, and have every key and type of
//! AWS's documented sample. The API runs in this process, over the engine.

use crate::batch_queue;
use crate::event_shape;
use crate::moto;

use std::{sync::Arc, time::Duration};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_sdk_batch::types::{ContainerProperties, JobDefinitionType, ResourceRequirement, ResourceType};
use batchfan::{
    batch::JobStatus,
    batchapi::{
        events::{EventOptions, Publisher},
        BatchApi, BatchApiConfig,
    },
    engine::{EngineConfig, LocalEngine, ShutdownMode},
};
use batchfan_dispatchers::alert;
use moto::Moto;
use serde_json::{json, Value};

/// One EventBridge (AWS JSON 1.1) call to moto.
fn events_call(moto: &Moto, op: &str, body: Value) -> Value {
    let target = format!("AWSEvents.{op}");
    // moto routes by the service named in the credential scope.
    let auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/events/aws4_request, SignedHeaders=host, Signature=0";
    let headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", target.as_str()),
        ("Authorization", auth),
    ];
    let (status, text) = moto.request_with("POST", "/", &body.to_string(), &headers).expect(op);
    assert_eq!(status, 200, "{op}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A batch-api on a free port over a fresh engine, publishing to moto's default bus.
async fn start_api(dir: &std::path::Path, moto: &Moto) -> (String, LocalEngine, Publisher) {
    let mut config = EngineConfig::new(dir);
    (config.vcpus, config.memory_mib) = (4.0, 4096);
    let engine = LocalEngine::open(config).await.expect("engine");
    let api = Arc::new(BatchApi::open(engine.clone(), BatchApiConfig::new(dir)).expect("api"));
    let sinks =
        EventOptions { eventbridge: Some((moto.endpoint(), "default".into())), ..EventOptions::default() };
    let publisher = Publisher::start(api.clone(), sinks);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(batchfan::batchapi::serve(listener, api, std::future::pending()));
    (endpoint, engine, publisher)
}

/// Submits job `fails` (exit 4, tagged as a batchfan run) through aws-sdk-batch; returns its id.
async fn submit_failing_job(endpoint: &str) -> String {
    let client =
        aws_sdk_batch::Client::new(&batchfan::aws::static_sdk_config(endpoint, "us-east-1", "t", "t"));
    batch_queue::create_queue(&client, "ce", "q").await;
    let rr = |t, v: &str| ResourceRequirement::builder().r#type(t).value(v).build();
    let container = ContainerProperties::builder()
        .image("busybox")
        .command("sh")
        .command("-c")
        .command("echo failing; exit 4")
        .resource_requirements(rr(ResourceType::Vcpu, "1"))
        .resource_requirements(rr(ResourceType::Memory, "64"))
        .build();
    client
        .register_job_definition()
        .job_definition_name("fails")
        .r#type(JobDefinitionType::Container)
        .container_properties(container)
        .send()
        .await
        .unwrap();
    let job = client
        .submit_job()
        .job_name("p-r1-one-0")
        .job_queue("q")
        .job_definition("fails")
        .tags("batchfan:run", "r1")
        .tags("batchfan:pipeline", "p")
        .send()
        .await
        .unwrap();
    job.job_id().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_on_a_moto_bus_parse_as_lambda_events_and_alert_input_shaped_like_aws() {
    let moto = Moto::start();
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config());
    let url = sqs.create_queue().queue_name("batch-events").send().await.unwrap().queue_url.unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    let pattern = json!({"source": ["aws.batch"], "detail-type": ["Batch Job State Change"]}).to_string();
    events_call(
        &moto,
        "PutRule",
        json!({"Name": "batch", "EventPattern": pattern, "EventBusName": "default"}),
    );
    events_call(&moto, "PutTargets", json!({"Rule": "batch", "Targets": [{"Id": "q", "Arn": arn}]}));

    let dir = tempfile::tempdir().unwrap();
    let (endpoint, engine, publisher) = start_api(dir.path(), &moto).await;
    let id = submit_failing_job(&endpoint).await;

    let mut received: Vec<Value> = Vec::new();
    let start = std::time::Instant::now();
    while !received.iter().any(|e| e["detail"]["status"] == "FAILED") {
        assert!(start.elapsed() < Duration::from_secs(120), "no FAILED event on the queue: {received:#?}");
        let out = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
        for m in out.messages() {
            received.push(serde_json::from_str(m.body().unwrap()).expect("the message is the event"));
            let handle = m.receipt_handle().unwrap();
            sqs.delete_message().queue_url(&url).receipt_handle(handle).send().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    engine.shutdown(ShutdownMode::Abandon).await;
    let delivered = publisher.finish().await;
    assert_eq!(delivered.undelivered, 0, "{delivered:?}");

    let statuses: Vec<&str> = received.iter().map(|e| e["detail"]["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["RUNNABLE", "STARTING", "RUNNING", "FAILED"], "in order, none for SUBMITTED");
    for raw in &received {
        // moto's EventBridge builds the envelope without `account` (AWS's has
        // it; batch-api's own envelope does: tests/batch_events.rs).
        event_shape::assert_event_shaped_like_aws_but(raw, &["account"]);
        let event: EventBridgeEvent<Value> =
            serde_json::from_value(raw.clone()).expect("aws_lambda_events type");
        assert_eq!(serde_json::to_value(&event).unwrap()["detail"], raw["detail"], "round trip");
        let change = alert::state_change(event).expect("the alert function's input");
        assert_eq!(change.job_id, id);
        assert_eq!(change.tags["batchfan:run"], "r1");
    }
    let failed = alert::state_change(serde_json::from_value(received[3].clone()).unwrap()).unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    let attempt = &failed.attempts[0];
    assert_eq!((attempt.exit_code, failed.container.exit_code), (Some(4), Some(4)), "per-attempt exit code");
    let stream = attempt.log_stream_name.as_deref().expect("per-attempt log stream");
    assert!(stream.starts_with("fails/default/"), "{stream}");
    assert_eq!(failed.container.log_stream_name.as_deref(), Some(stream));
}
