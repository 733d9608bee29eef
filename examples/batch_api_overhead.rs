//! The cost of a SubmitJob through `batchfan batch-api` (aws-sdk-batch over
//! HTTP on 127.0.0.1, JSON, the definition lookup, the API's SQLite row)
//! against the same submission in-process through the [`Batch`] port.
//!
//! Both submit N plain jobs (default 500) that wait on a blocker job, so
//! nothing runs while submitting: what is timed is the submission alone. It
//! prints the mean, median and p99 latency of each door, and the difference.
//!
//! ```text
//! cargo run --release --example batch_api_overhead [-- N]
//! ```

use std::{sync::Arc, time::Instant};

use anyhow::Context;
use aws_sdk_batch::types::{
    CeType, ComputeEnvironmentOrder, ContainerProperties, JobDefinitionType, JobDependency,
    ResourceRequirement, ResourceType,
};
use batchfan::{
    batch::{Batch, ContainerSpec, JobDependency as Dep, RetryStrategy, SubmitJob},
    batchapi::{self, BatchApi, BatchApiConfig},
    engine::{EngineConfig, LocalEngine, ShutdownMode},
};

fn stats(name: &str, mut micros: Vec<f64>) -> f64 {
    micros.sort_by(f64::total_cmp);
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q) as usize];
    println!("{name:<22} mean {mean:>8.0} µs   p50 {:>8.0} µs   p99 {:>8.0} µs", at(0.5), at(0.99));
    mean
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map_or(Ok(500), |a| a.parse()).context("N must be a number")?;
    let dir = tempfile::tempdir()?;
    let mut config = EngineConfig::new(dir.path());
    (config.vcpus, config.memory_mib) = (2.0, 2048);
    let engine = LocalEngine::open(config).await?;
    let api = Arc::new(BatchApi::open(engine.clone(), BatchApiConfig::new(dir.path()))?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    tokio::spawn(batchapi::serve(listener, api, std::future::pending()));
    let client =
        aws_sdk_batch::Client::new(&batchfan::aws::static_sdk_config(&endpoint, "us-east-1", "x", "x"));
    client
        .create_compute_environment()
        .compute_environment_name("ce")
        .r#type(CeType::Unmanaged)
        .send()
        .await?;
    // CREATING for a moment, as on AWS: a queue needs a VALID compute environment.
    while client.describe_compute_environments().send().await?.compute_environments()[0].status()
        != Some(&aws_sdk_batch::types::CeStatus::Valid)
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let order = ComputeEnvironmentOrder::builder().order(1).compute_environment("ce").build();
    client.create_job_queue().job_queue_name("q").priority(1).compute_environment_order(order).send().await?;
    let rr = |t, v: &str| ResourceRequirement::builder().r#type(t).value(v).build();
    let props = ContainerProperties::builder()
        .image("busybox")
        .command("true")
        .resource_requirements(rr(ResourceType::Vcpu, "1"))
        .resource_requirements(rr(ResourceType::Memory, "64"))
        .build();
    client
        .register_job_definition()
        .job_definition_name("d")
        .r#type(JobDefinitionType::Container)
        .container_properties(props)
        .send()
        .await?;
    let job = |name: String, deps: Vec<Dep>| SubmitJob {
        job_name: name,
        job_queue: "q".into(),
        job_definition: "d".into(),
        array_size: None,
        depends_on: deps,
        container: ContainerSpec {
            image: "busybox".into(),
            command: vec!["true".into()],
            environment: Default::default(),
            vcpus: 1.0,
            memory_mib: 64,
        },
        retry_strategy: RetryStrategy::default(),
        timeout_seconds: None,
        tags: Default::default(),
    };
    // A job that stays RUNNING until terminated, so the others stay PENDING.
    let mut sleeper = job("blocker".into(), vec![]);
    sleeper.container.command = vec!["sleep".into(), "600".into()];
    let blocker = engine.submit_job(sleeper).await?.job_id;
    let mut in_process = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        engine.submit_job(job(format!("local-{i}"), vec![Dep::on(&blocker)])).await?;
        in_process.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let mut through_api = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        client
            .submit_job()
            .job_name(format!("api-{i}"))
            .job_queue("q")
            .job_definition("d")
            .depends_on(JobDependency::builder().job_id(&blocker).build())
            .send()
            .await?;
        through_api.push(started.elapsed().as_secs_f64() * 1e6);
    }
    println!("{n} SubmitJob calls per door (jobs wait on a blocker: submission only)");
    let local = stats("in-process (Batch port)", in_process);
    let api = stats("batch-api (aws-sdk-batch)", through_api);
    println!("overhead of the API door: {:.0} µs per SubmitJob", api - local);
    engine.terminate_job(&blocker, "benchmark done").await?;
    engine.shutdown(ShutdownMode::Abandon).await;
    Ok(())
}
