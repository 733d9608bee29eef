//! Per-queue capacity through aws-sdk-batch: a queue's jobs run only on its
//! compute environments, within their `maxvCpus` (a shared environment is one
//! pool for every queue on it), and a DISABLED environment places nothing.
//! Jobs hold their vCPU until the test lets them go (a `go-JOBID` file), so
//! every check is about who holds capacity, never about timing.

use aws_sdk_batch::{
    types::{CeState, CeType, ComputeEnvironmentOrder, ComputeResource, CrType, JobStatus},
    Client,
};

use super::batch_api_support::{describe, register_sh, wait_done, wait_for, wait_resources, Server};

async fn environment(client: &Client, name: &str) {
    let resources = ComputeResource::builder()
        .r#type(CrType::Ec2)
        .maxv_cpus(1)
        .subnets("subnet-1")
        .instance_types("optimal")
        .instance_role("ecsInstanceRole")
        .build();
    client
        .create_compute_environment()
        .compute_environment_name(name)
        .r#type(CeType::Managed)
        .compute_resources(resources)
        .send()
        .await
        .expect("create compute environment");
}

async fn queue(client: &Client, name: &str, env: &str) {
    let order = ComputeEnvironmentOrder::builder().order(1).compute_environment(env).build();
    client
        .create_job_queue()
        .job_queue_name(name)
        .priority(1)
        .compute_environment_order(order)
        .send()
        .await
        .expect("create job queue");
}

async fn submit(client: &Client, name: &str, definition: &str, queue: &str) -> String {
    let job = client.submit_job().job_name(name).job_queue(queue).job_definition(definition).send().await;
    job.expect("submit").job_id().expect("job id").to_string()
}

async fn status(client: &Client, id: &str) -> JobStatus {
    describe(client, id).await.status().cloned().expect("status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_queue_use_only_its_compute_environments() {
    let server = Server::start();
    let client = server.client();
    for name in ["ce-a", "ce-b", "ce-shared"] {
        environment(&client, name).await;
    }
    // A queue takes only VALID compute environments, as on AWS.
    wait_resources(&client, |ces, _| ces.iter().all(|(_, status)| status == "VALID")).await;
    for (name, env) in [("qa", "ce-a"), ("qb", "ce-b"), ("qs1", "ce-shared"), ("qs2", "ce-shared")] {
        queue(&client, name, env).await;
    }
    let gate = "echo $AWS_BATCH_JQ_NAME $AWS_BATCH_CE_NAME > Ref::dir/env-$AWS_BATCH_JOB_ID; \
                until [ -e Ref::dir/go-$AWS_BATCH_JOB_ID ]; do sleep 0.1; done";
    register_sh(&client, "gate", gate, &server.out()).await;
    register_sh(&client, "quick", "true", &server.out()).await;
    let go = |id: &str| std::fs::write(server.out().join(format!("go-{id}")), "").expect("go file");
    let running = |s: &JobStatus| *s == JobStatus::Running;

    // Separate environments of 1 vCPU: one job of qa runs, and qb's job runs beside it.
    let a1 = submit(&client, "a1", "gate", "qa").await;
    let a2 = submit(&client, "a2", "gate", "qa").await;
    let b1 = submit(&client, "b1", "gate", "qb").await;
    wait_for(&client, &b1, running).await;
    wait_for(&client, &a1, running).await;
    assert_eq!(status(&client, &a2).await, JobStatus::Runnable, "qa's environment has 1 vCPU, held by a1");
    // One environment shared by two queues: one job of the two runs.
    let s1 = submit(&client, "s1", "gate", "qs1").await;
    let s2 = submit(&client, "s2", "gate", "qs2").await;
    wait_for(&client, &s1, running).await;
    go(&b1);
    wait_done(&client, &b1).await;
    let probe = submit(&client, "probe", "quick", "qb").await;
    assert_eq!(wait_done(&client, &probe).await.status(), Some(&JobStatus::Succeeded));
    assert_eq!(status(&client, &s2).await, JobStatus::Runnable, "qs1 and qs2 share 1 vCPU, held by s1");
    // A DISABLED environment places nothing; enabled again, its job starts.
    let ce_b = |state| client.update_compute_environment().compute_environment("ce-b").state(state).send();
    ce_b(CeState::Disabled).await.expect("disable ce-b");
    let b2 = submit(&client, "b2", "quick", "qb").await;
    go(&a1);
    wait_for(&client, &a2, running).await;
    assert_eq!(status(&client, &b2).await, JobStatus::Runnable, "ce-b is DISABLED");
    ce_b(CeState::Enabled).await.expect("enable ce-b");
    assert_eq!(wait_done(&client, &b2).await.status(), Some(&JobStatus::Succeeded));
    for id in [&a2, &s1, &s2] {
        go(id);
    }
    for id in [&a1, &a2, &s1, &s2] {
        assert_eq!(wait_done(&client, id).await.status(), Some(&JobStatus::Succeeded), "{id}");
    }
    // The job sees its queue and the compute environment it was placed on.
    let env = |id: &str| std::fs::read_to_string(server.out().join(format!("env-{id}"))).expect("env file");
    assert_eq!((env(&a1), env(&s2)), ("qa ce-a\n".to_string(), "qs2 ce-shared\n".to_string()));
}
