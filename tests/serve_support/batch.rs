//! The `--batch-api` door of a running `batchfan serve`, driven with
//! aws-sdk-batch: its URL from `serve.json`, a compute environment and queue,
//! `sh -c` job definitions, and waits on DescribeJobs.

use crate::batch_queue;

use std::time::Instant;

use aws_sdk_batch::{
    types::{
        ContainerProperties, JobDefinitionType, JobDetail, JobStatus, ResourceRequirement, ResourceType,
    },
    Client,
};

use super::{Serve, DEADLINE};

/// The queue [`setup`] creates.
pub const QUEUE: &str = "q1";

impl Serve {
    /// `batch_api_url` of `serve.json`: where `--batch-api` listens.
    pub fn batch_api_url(&self) -> String {
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.state.join("serve.json")).expect("serve.json"))
                .expect("serve.json is JSON");
        info["batch_api_url"]
            .as_str()
            .unwrap_or_else(|| panic!("serve.json has no batch_api_url: {info}"))
            .to_owned()
    }

    /// An aws-sdk-batch client for `--batch-api` (any credentials: SigV4 is not checked).
    pub fn batch_client(&self) -> Client {
        Client::new(&batchfan::aws::static_sdk_config(&self.batch_api_url(), "us-east-1", "x", "x"))
    }
}

/// Creates compute environment `ce1` and queue [`QUEUE`] on it.
pub async fn setup(client: &Client) {
    batch_queue::create_queue(client, "ce1", QUEUE).await;
}

/// Registers definition `name` running `sh -c SCRIPT` with `vcpus` vCPUs and 64 MiB.
pub async fn register_sh(client: &Client, name: &str, script: &str, vcpus: u32) {
    let rr = |t, v: &str| ResourceRequirement::builder().r#type(t).value(v).build();
    client
        .register_job_definition()
        .job_definition_name(name)
        .r#type(JobDefinitionType::Container)
        .container_properties(
            ContainerProperties::builder()
                .image("public.ecr.aws/docker/library/busybox:latest")
                .command("sh")
                .command("-c")
                .command(script)
                .resource_requirements(rr(ResourceType::Vcpu, &vcpus.to_string()))
                .resource_requirements(rr(ResourceType::Memory, "64"))
                .build(),
        )
        .send()
        .await
        .expect("register job definition");
}

/// Submits `definition` to [`QUEUE`] (an array of `size` children when given); returns the job id.
pub async fn submit(client: &Client, name: &str, definition: &str, size: Option<i32>) -> String {
    let mut req = client.submit_job().job_name(name).job_queue(QUEUE).job_definition(definition);
    if let Some(size) = size {
        req = req.array_properties(aws_sdk_batch::types::ArrayProperties::builder().size(size).build());
    }
    req.send().await.expect("submit job").job_id().expect("job id").to_owned()
}

/// DescribeJobs of one id.
pub async fn describe(client: &Client, id: &str) -> JobDetail {
    let out = client.describe_jobs().jobs(id).send().await.expect("describe job");
    out.jobs().first().cloned().unwrap_or_else(|| panic!("job {id} is not described"))
}

/// Polls DescribeJobs until `id` is SUCCEEDED or FAILED.
pub async fn wait_done(client: &Client, id: &str) -> JobDetail {
    let start = Instant::now();
    loop {
        let job = describe(client, id).await;
        if matches!(job.status(), Some(JobStatus::Succeeded | JobStatus::Failed)) {
            return job;
        }
        assert!(start.elapsed() < DEADLINE, "job {id} still {:?} after {DEADLINE:?}", job.status());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
