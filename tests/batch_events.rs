//! Job state change events and attempt logs as AWS Batch sends them, from
//! `batchfan batch-api` (`--events-file`, `--logs-url`), and the event
//! fixtures (`tests/fixtures/batch_events/`) read alike by the event type and
//! by the AWS adapter.

use crate::batch_api_support;
use crate::event_shape;
#[path = "batch_events/fixtures.rs"]
mod fixtures;
#[path = "batch_events/logs.rs"]
mod logs;
use crate::moto;

use std::{collections::BTreeMap, path::Path, time::Instant};

use aws_sdk_batch::types::{ArrayJobDependency, ArrayProperties, JobDependency};
use batch_api_support::{describe, register_sh, wait_done, Server, DEADLINE, QUEUE};
use batchfan::{
    aws::{static_sdk_config, AwsClients, AwsSettings},
    batch::{event::Envelope, Batch, JobStateChange},
};
use serde_json::Value;

/// The envelopes in `file` once `done` holds for them; panics after [`DEADLINE`].
async fn read_events(file: &Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let events: Vec<Value> =
            text.lines().map(|l| serde_json::from_str(l).expect("each line is one JSON envelope")).collect();
        if done(&events) {
            return events;
        }
        assert!(start.elapsed() < DEADLINE, "events never complete: {events:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Each job's statuses, in the order its events came.
fn sequences(events: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events {
        let d = &e["detail"];
        out.entry(d["jobId"].as_str().unwrap().to_owned())
            .or_default()
            .push(d["status"].as_str().unwrap().to_owned());
    }
    out
}

fn last_of<'a>(events: &'a [Value], id: &str) -> &'a Value {
    events.iter().rev().find(|e| e["detail"]["jobId"] == id).unwrap_or_else(|| panic!("no event of {id}"))
}

/// Issue 11 item 4, issue 13 item 4: an array job with one failing child and
/// an N_TO_N dependent: each job's events in order, AWS's shape, no SUBMITTED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_file_gets_each_jobs_changes_in_order_and_none_for_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let server = Server::start_with(&["--events-file", file.to_str().unwrap()]);
    let client = server.client();
    server.setup(&client).await;
    let script =
        "echo child $AWS_BATCH_JOB_ARRAY_INDEX; [ $AWS_BATCH_JOB_ARRAY_INDEX = 1 ] && exit 3; exit 0";
    register_sh(&client, "arr", script, &server.out()).await;
    let submit = |name: &'static str| {
        client
            .submit_job()
            .job_name(name)
            .job_queue(QUEUE)
            .job_definition("arr")
            .array_properties(ArrayProperties::builder().size(3).build())
    };
    let a = submit("a").tags("team", "data").send().await.unwrap().job_id().unwrap().to_owned();
    let n2n = JobDependency::builder().job_id(&a).r#type(ArrayJobDependency::NToN).build();
    let b = submit("b").depends_on(n2n).send().await.unwrap().job_id().unwrap().to_owned();
    wait_done(&client, &b).await;
    let events = read_events(&file, |ev| {
        [&a, &b]
            .iter()
            .all(|id| ev.iter().any(|e| e["detail"]["jobId"] == **id && e["detail"]["status"] == "FAILED"))
    })
    .await;

    let seq = sequences(&events);
    let path = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(events.iter().all(|e| e["detail"]["status"] != "SUBMITTED"), "AWS sends no SUBMITTED event");
    assert_eq!(seq[&format!("{a}:0")], path(&["RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]));
    assert_eq!(seq[&format!("{a}:1")], path(&["RUNNABLE", "STARTING", "RUNNING", "FAILED"]));
    // B's children wait on A's (PENDING) unless A's child had ended by B's submission.
    let b1 = &seq[&format!("{b}:1")];
    assert!(b1.last().unwrap() == "FAILED" && !b1.contains(&"RUNNING".to_string()), "never ran: {b1:?}");
    let b0 = &seq[&format!("{b}:0")];
    assert!(b0.ends_with(&path(&["RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"])), "{b0:?}");
    for id in [&a, &b] {
        assert_eq!(seq[id].last().map(String::as_str), Some("FAILED"), "{id}: {:?}", seq[id]);
        assert!(seq[id].windows(2).all(|w| w[0] != w[1]), "{id} repeats a status: {:?}", seq[id]);
    }
    for e in &events {
        event_shape::assert_event_shaped_like_aws(e);
        assert_eq!(e["resources"][0], e["detail"]["jobArn"]);
    }

    // The failed child: its attempt under `attempts[].container`, repeated in `container`.
    let failed = last_of(&events, &format!("{a}:1"));
    let d = &failed["detail"];
    assert_eq!(d["attempts"][0]["container"]["exitCode"], 3);
    let stream = d["attempts"][0]["container"]["logStreamName"].as_str().unwrap();
    assert!(stream.starts_with("arr/default/"), "{stream}");
    assert_eq!(d["container"]["logStreamName"], stream);
    assert_eq!(d["arrayProperties"]["index"], 1);
    assert_eq!(d["tags"]["team"], "data");
    let described = describe(&client, &format!("{a}:1")).await;
    assert_eq!(described.attempts()[0].container().unwrap().log_stream_name(), Some(stream));
    let running = events
        .iter()
        .find(|e| e["detail"]["jobId"] == format!("{a}:0") && e["detail"]["status"] == "RUNNING");
    assert!(running.unwrap()["detail"]["container"]["logStreamName"].is_string(), "RUNNING names its stream");
    let parent = &last_of(&events, &a)["detail"];
    assert_eq!(parent["arrayProperties"]["size"], 3);
    assert_eq!(
        (
            parent["arrayProperties"]["statusSummary"]["FAILED"].as_i64(),
            parent["arrayProperties"]["statusSummary"]["SUCCEEDED"].as_i64()
        ),
        (Some(1), Some(2))
    );

    // The local engine's event and the AWS adapter's DescribeJobs agree.
    let event: Envelope<JobStateChange> = serde_json::from_value(failed.clone()).unwrap();
    let config = static_sdk_config(&server.endpoint, "us-east-1", "testing", "testing");
    let adapter = AwsClients::from_sdk_config(&config, AwsSettings::default()).unwrap().batch();
    let detail = adapter.describe_jobs(&[format!("{a}:1")]).await.unwrap().remove(0);
    assert_eq!(event.detail.attempts, detail.attempts);
    assert_eq!((event.detail.status, &event.detail.status_reason), (detail.status, &detail.status_reason));
    assert_eq!(
        event.detail.array_properties.and_then(|p| p.index),
        detail.array_properties.and_then(|p| p.index)
    );
}

/// An event no sink can take is not dropped: it is kept in `STATE/events-undelivered.jsonl`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_an_unreachable_bus_cannot_take_are_kept() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead); // nothing listens there now
    let server = Server::start_with(&["--events-url", &url, "--events-bus", "default"]);
    let client = server.client();
    server.setup(&client).await;
    register_sh(&client, "quick", "exit 0", &server.out()).await;
    let job =
        client.submit_job().job_name("q").job_queue(QUEUE).job_definition("quick").send().await.unwrap();
    let id = job.job_id().unwrap().to_owned();
    wait_done(&client, &id).await;
    let kept = server.dir.path().join("state").join("events-undelivered.jsonl");
    let events = read_events(&kept, |ev| ev.iter().any(|e| e["detail"]["status"] == "SUCCEEDED")).await;
    let statuses: Vec<&str> = events.iter().map(|e| e["detail"]["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"], "every event kept, in order");
    assert!(events.iter().all(|e| e["detail"]["jobId"] == id.as_str()));
}
