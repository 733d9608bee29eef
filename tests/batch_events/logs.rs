//! Issue 11 item 4: `--logs-url` sends each attempt's output to CloudWatch
//! Logs (moto) under the stream DescribeJobs names.

use aws_sdk_batch::types::RetryStrategy;
use serde_json::{json, Value};

use super::{
    batch_api_support::{register_sh, wait_done, Server, QUEUE},
    moto::Moto,
};

/// The messages of `stream` in `/aws/batch/job` (GetLogEvents from the start).
fn log_messages(moto: &Moto, stream: &str) -> Vec<String> {
    let body = json!({ "logGroupName": "/aws/batch/job", "logStreamName": stream, "startFromHead": true });
    // moto routes by the service named in the credential scope.
    let auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/logs/aws4_request, SignedHeaders=host, Signature=0";
    let headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "Logs_20140328.GetLogEvents"),
        ("Authorization", auth),
    ];
    let (status, text) = moto.request_with("POST", "/", &body.to_string(), &headers).expect("GetLogEvents");
    if status != 200 {
        return Vec::new(); // not created yet
    }
    let v: Value = serde_json::from_str(&text).expect("JSON answer");
    v["events"].as_array().into_iter().flatten().map(|e| e["message"].as_str().unwrap().to_owned()).collect()
}

/// Polls until `stream` holds `count` messages; panics after the deadline.
async fn wait_messages(moto: &Moto, stream: &str, count: usize) -> Vec<String> {
    let start = std::time::Instant::now();
    loop {
        let got = log_messages(moto, stream);
        if got.len() >= count {
            return got;
        }
        assert!(start.elapsed() < super::DEADLINE, "stream {stream} has {got:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_url_sends_each_attempts_output_to_the_stream_describe_jobs_names() {
    let moto = Moto::start();
    let server = Server::start_with(&["--logs-url", &moto.endpoint()]);
    let client = server.client();
    server.setup(&client).await;
    let script =
        "echo attempt $AWS_BATCH_JOB_ATTEMPT; [ $AWS_BATCH_JOB_ATTEMPT = 1 ] && exit 75; echo done >&2";
    register_sh(&client, "talker", script, &server.out()).await;
    let job = client
        .submit_job()
        .job_name("talk")
        .job_queue(QUEUE)
        .job_definition("talker")
        .retry_strategy(RetryStrategy::builder().attempts(2).build())
        .send()
        .await
        .unwrap();
    let done = wait_done(&client, job.job_id().unwrap()).await;
    let streams: Vec<&str> =
        done.attempts().iter().map(|a| a.container().unwrap().log_stream_name().unwrap()).collect();
    assert_eq!(streams.len(), 2, "one stream per attempt");
    assert_ne!(streams[0], streams[1]);
    assert!(streams.iter().all(|s| s.starts_with("talker/default/")), "{streams:?}");
    assert_eq!(done.container().unwrap().log_stream_name(), Some(streams[1]), "container repeats the last");
    assert!(done.attempts()[1]
        .container()
        .unwrap()
        .task_arn()
        .is_some_and(|t| t.starts_with("arn:aws:ecs:")));
    assert_eq!(wait_messages(&moto, streams[0], 1).await, ["attempt 1"]);
    assert_eq!(wait_messages(&moto, streams[1], 2).await, ["attempt 2", "done"]);
}
