//! An UNMANAGED compute environment and a queue on it, made through
//! aws-sdk-batch against `batchfan batch-api` as AWS requires: a new compute
//! environment is CREATING until it is VALID, and only a VALID one may back a
//! queue. Shared by every test that submits through the API.

use std::time::{Duration, Instant};

use aws_sdk_batch::{
    types::{CeType, ComputeEnvironmentOrder},
    Client,
};

/// Creates compute environment `ce` and queue `queue` on it; returns once both are VALID.
pub async fn create_queue(client: &Client, ce: &str, queue: &str) {
    client
        .create_compute_environment()
        .compute_environment_name(ce)
        .r#type(CeType::Unmanaged)
        .send()
        .await
        .expect("create compute environment");
    wait_valid(client, ce, false).await;
    client
        .create_job_queue()
        .job_queue_name(queue)
        .priority(1)
        .compute_environment_order(
            ComputeEnvironmentOrder::builder().order(1).compute_environment(ce).build(),
        )
        .send()
        .await
        .expect("create job queue");
    wait_valid(client, queue, true).await;
}

/// Polls the compute environment (or queue) `name` until it is VALID; panics after 60 s.
async fn wait_valid(client: &Client, name: &str, queue: bool) {
    let start = Instant::now();
    loop {
        let status = if queue {
            let d = client.describe_job_queues().job_queues(name).send().await.expect("describe job queues");
            d.job_queues().first().and_then(|q| q.status()).map(|s| s.as_str().to_owned())
        } else {
            let d = client
                .describe_compute_environments()
                .compute_environments(name)
                .send()
                .await
                .expect("describe compute environments");
            d.compute_environments().first().and_then(|c| c.status()).map(|s| s.as_str().to_owned())
        };
        if status.as_deref() == Some("VALID") {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{name} is {status:?}, not VALID, after 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
