//! A `batchfan batch-api` server for tests: the real binary on 127.0.0.1 and
//! a free port (`--listen 127.0.0.1:0`, the address read from its stdout),
//! with its own state directory; killed on drop, and its jobs with it (they
//! die with the engine: parent-death signal). Plus aws-sdk-batch helpers.

#![allow(dead_code)]

use crate::batch_queue;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use aws_sdk_batch::{
    types::{
        ContainerProperties, JobDefinitionType, JobDetail, JobStatus, ResourceRequirement, ResourceType,
    },
    Client,
};

/// How long a job may take to finish on a loaded 2-core machine before a test gives up.
pub const DEADLINE: Duration = Duration::from_secs(120);
/// The queue [`Server::setup`] creates.
pub const QUEUE: &str = "q1";

/// A running `batchfan batch-api`.
pub struct Server {
    child: Child,
    pub endpoint: String,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server with 4 vCPUs and 4 GiB, and waits until it listens.
    pub fn start() -> Server {
        Server::start_in(tempfile::tempdir().expect("temp dir"), &[])
    }

    /// Starts the server with extra options (e.g. `--time-scale 0.01`).
    pub fn start_with(args: &[&str]) -> Server {
        Server::start_in(tempfile::tempdir().expect("temp dir"), args)
    }

    /// Starts the server with extra options and these variables added to its
    /// environment (what `--pass-env NAME` hands on to the jobs).
    pub fn start_with_env(args: &[&str], vars: &[(&str, &str)]) -> Server {
        Server::start_env(tempfile::tempdir().expect("temp dir"), args, vars)
    }

    /// Kills the server (as `kill -9` would) and starts a new one on the same state directory.
    pub fn restart(mut self) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("temp dir");
        let old = std::mem::replace(&mut self.dir, dir);
        drop(self);
        Server::start_in(old, &[])
    }

    fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        Server::start_env(dir, extra, &[])
    }

    fn start_env(dir: tempfile::TempDir, extra: &[&str], vars: &[(&str, &str)]) -> Server {
        let state = dir.path().join("state");
        let stderr = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_batchfan"))
            .args(["batch-api", "--listen", "127.0.0.1:0", "--vcpus", "4", "--memory", "4096", "--state"])
            .arg(&state)
            .args(extra)
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start batchfan batch-api");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
        let Some(addr) = line.strip_prefix("listening on ").and_then(|r| r.split_whitespace().next()) else {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            panic!("batch-api did not start: stdout {line:?}, stderr:\n{log}");
        };
        Server { endpoint: addr.to_string(), child, dir }
    }

    /// An aws-sdk-batch client for this server (any credentials, us-east-1).
    pub fn client(&self) -> Client {
        Client::new(&batchfan::aws::static_sdk_config(&self.endpoint, "us-east-1", "testing", "testing"))
    }

    /// A directory jobs can write to.
    pub fn out(&self) -> PathBuf {
        let out = self.dir.path().join("out");
        std::fs::create_dir_all(&out).expect("out dir");
        out
    }

    /// Creates compute environment `ce1` and queue [`QUEUE`] on it.
    pub async fn setup(&self, client: &Client) {
        batch_queue::create_queue(client, "ce1", QUEUE).await;
    }
}

/// Polls DescribeComputeEnvironments and DescribeJobQueues until `done`
/// holds for their (name, status) lists; panics after [`DEADLINE`].
pub async fn wait_resources(
    client: &Client,
    done: impl Fn(&[(String, String)], &[(String, String)]) -> bool,
) {
    let start = Instant::now();
    loop {
        let ces = client.describe_compute_environments().send().await.expect("describe compute environments");
        let ces: Vec<_> = ces
            .compute_environments()
            .iter()
            .map(|c| {
                let status = c.status().map(|s| s.as_str().to_string()).unwrap_or_default();
                (c.compute_environment_name().unwrap_or_default().to_string(), status)
            })
            .collect();
        let queues = client.describe_job_queues().send().await.expect("describe job queues");
        let queues: Vec<_> = queues
            .job_queues()
            .iter()
            .map(|q| {
                let status = q.status().map(|s| s.as_str().to_string()).unwrap_or_default();
                (q.job_queue_name().unwrap_or_default().to_string(), status)
            })
            .collect();
        if done(&ces, &queues) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "compute environments {ces:?} and queues {queues:?} after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Registers definition `name` running `sh -c SCRIPT` (1 vCPU, 64 MiB) with
/// default parameter `dir` = `dir`; returns its ARN.
pub async fn register_sh(client: &Client, name: &str, script: &str, dir: &Path) -> String {
    let rr = |t, v: &str| ResourceRequirement::builder().r#type(t).value(v).build();
    let out = client
        .register_job_definition()
        .job_definition_name(name)
        .r#type(JobDefinitionType::Container)
        .parameters("dir", dir.display().to_string())
        .container_properties(
            ContainerProperties::builder()
                .image("public.ecr.aws/docker/library/busybox:latest")
                .command("sh")
                .command("-c")
                .command(script)
                .resource_requirements(rr(ResourceType::Vcpu, "1"))
                .resource_requirements(rr(ResourceType::Memory, "64"))
                .build(),
        )
        .send()
        .await
        .expect("register job definition");
    out.job_definition_arn().expect("definition arn").to_string()
}

/// DescribeJobs of one id.
pub async fn describe(client: &Client, id: &str) -> JobDetail {
    let out = client.describe_jobs().jobs(id).send().await.expect("describe job");
    out.jobs().first().cloned().unwrap_or_else(|| panic!("job {id} is not described"))
}

/// Polls DescribeJobs until `id` is in a status `done` accepts; panics after [`DEADLINE`].
pub async fn wait_for(client: &Client, id: &str, done: impl Fn(&JobStatus) -> bool) -> JobDetail {
    let start = Instant::now();
    loop {
        let job = describe(client, id).await;
        if job.status().is_some_and(&done) {
            return job;
        }
        assert!(start.elapsed() < DEADLINE, "job {id} still {:?} after {DEADLINE:?}", job.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `id` is SUCCEEDED or FAILED.
pub async fn wait_done(client: &Client, id: &str) -> JobDetail {
    wait_for(client, id, |s| matches!(s, JobStatus::Succeeded | JobStatus::Failed)).await
}

/// The status summary of an array parent, as (status, count) with zero counts left out.
pub fn summary(job: &JobDetail) -> Vec<(String, i32)> {
    let mut s: Vec<(String, i32)> = job
        .array_properties()
        .and_then(|a| a.status_summary())
        .map(|m| m.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (k.clone(), *n)).collect())
        .unwrap_or_default();
    s.sort();
    s
}
