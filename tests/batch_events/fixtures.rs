//! Every event fixture reads alike through the event type (what the alert
//! function and the local monitor parse) and through the AWS adapter
//! (aws-sdk-batch's DescribeJobs deserializer, then `src/aws/batch`'s
//! conversion): the fixture's `detail` is served, unchanged, as a
//! DescribeJobs answer — AWS documents `detail` as DescribeJobs' JobDetail.

use std::sync::Arc;

use axum::{routing::post, Json, Router};
use batchfan::{
    aws::{static_sdk_config, AwsClients, AwsSettings},
    batch::{event::Envelope, Batch, JobStateChange},
};
use serde_json::{json, Value};

/// Every `*.json` of the fixtures directory (all of them, not a list that could miss one).
fn fixtures() -> Vec<String> {
    let dir = format!("{}/tests/fixtures/batch_events", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures directory")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "the fixtures of {dir}: {names:?}");
    names
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/batch_events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture is JSON")
}

/// Serves `detail` as the one job of every DescribeJobs answer; returns the endpoint.
async fn replay(detail: Value) -> String {
    let detail = Arc::new(detail);
    let app = Router::new().route(
        "/v1/describejobs",
        post(move || {
            let detail = detail.clone();
            async move { Json(json!({ "jobs": [*detail] })) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_reads_alike_through_the_event_and_the_aws_adapter() {
    for name in fixtures() {
        let name = name.as_str();
        let raw = fixture(name);
        let event: Envelope<JobStateChange> = serde_json::from_value(raw.clone()).expect(name);
        let e = event.detail;
        let endpoint = replay(raw["detail"].clone()).await;
        let config = static_sdk_config(&endpoint, "us-east-1", "testing", "testing");
        let adapter = AwsClients::from_sdk_config(&config, AwsSettings::default()).unwrap().batch();
        let d = adapter.describe_jobs(std::slice::from_ref(&e.job_id)).await.expect(name).remove(0);
        assert_eq!((&d.job_id, &d.job_name, d.status), (&e.job_id, &e.job_name, e.status), "{name}");
        assert_eq!(d.job_queue, e.job_queue, "{name}");
        assert_eq!(d.status_reason, e.status_reason, "{name}");
        assert_eq!(d.attempts, e.attempts, "{name}: attempts[].container");
        assert_eq!(Some(d.created_at), e.created_at, "{name}");
        assert_eq!((d.started_at, d.stopped_at), (e.started_at, e.stopped_at), "{name}");
        assert_eq!(d.depends_on, e.depends_on, "{name}");
        assert_eq!(d.array_properties, e.array_properties, "{name}");
        assert_eq!(d.tags, e.tags, "{name}");
        assert_eq!(d.job_definition, e.job_definition, "{name}");
        assert_eq!(Some(d.retry_strategy.attempts), e.retry_strategy.map(|r| r.attempts), "{name}");
        assert_eq!(d.container.command, e.container.command, "{name}");
        assert_eq!(
            Some(d.container.image.as_str()).filter(|i| !i.is_empty()),
            e.container.image.as_deref(),
            "{name}"
        );
    }
}
