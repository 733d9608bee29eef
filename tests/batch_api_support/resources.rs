//! Job definitions, compute environments, job queues and tags through
//! aws-sdk-batch: revisions, deregistering, AWS's delete rules, tag round trips.

use aws_sdk_batch::{
    error::SdkError,
    types::{CeState, JqState},
};

use super::batch_api_support::{register_sh, Server, QUEUE};

fn client_error<E: aws_sdk_batch::error::ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    result: Result<R, SdkError<E, aws_smithy_runtime_api::http::Response>>,
) -> String {
    match result {
        Err(SdkError::ServiceError(e)) => {
            assert_eq!(e.raw().status().as_u16(), 400);
            assert_eq!(e.err().code(), Some("ClientException"));
            e.err().message().unwrap_or_default().to_string()
        }
        other => panic!("expected a ClientException, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_environments_queues_and_tags_follow_aws_rules() {
    let server = Server::start();
    let client = server.client();
    server.setup(&client).await;

    // Revisions count up; deregistering one makes it INACTIVE and a name submission takes the latest ACTIVE one.
    let first = register_sh(&client, "d", "true", &server.out()).await;
    let second = register_sh(&client, "d", "true", &server.out()).await;
    assert!(
        first.ends_with(":job-definition/d:1") && second.ends_with(":job-definition/d:2"),
        "{first} {second}"
    );
    client.deregister_job_definition().job_definition(&second).send().await.expect("deregister");
    let all = client.describe_job_definitions().job_definition_name("d").send().await.unwrap();
    let states: Vec<_> =
        all.job_definitions().iter().map(|d| (d.revision(), d.status().map(str::to_string))).collect();
    assert_eq!(states, [(Some(1), Some("ACTIVE".into())), (Some(2), Some("INACTIVE".into()))]);
    let job = client.submit_job().job_name("j").job_queue(QUEUE).job_definition("d").send().await.unwrap();
    let detail = client.describe_jobs().jobs(job.job_id().unwrap()).send().await.unwrap();
    assert_eq!(detail.jobs()[0].job_definition(), Some(first.as_str()));
    let message =
        client_error(client.submit_job().job_name("j").job_queue(QUEUE).job_definition("d:2").send().await);
    assert!(message.contains("jobDefinition \"d:2\""), "{message}");

    // Queues and compute environments: VALID once created, deleted only once DISABLED (and a CE once no queue uses it).
    let queues = client.describe_job_queues().job_queues(QUEUE).send().await.unwrap();
    let q = &queues.job_queues()[0];
    assert_eq!((q.status().map(|s| s.as_str()), q.state()), (Some("VALID"), Some(&JqState::Enabled)));
    let queue_arn = q.job_queue_arn().unwrap().to_string();
    assert!(q.compute_environment_order()[0]
        .compute_environment()
        .unwrap()
        .ends_with(":compute-environment/ce1"));
    let message = client_error(client.delete_job_queue().job_queue(QUEUE).send().await);
    assert!(message.contains("DISABLED"), "{message}");
    client
        .update_compute_environment()
        .compute_environment("ce1")
        .state(CeState::Disabled)
        .send()
        .await
        .unwrap();
    let message = client_error(client.delete_compute_environment().compute_environment("ce1").send().await);
    assert!(message.contains("used by job queue"), "{message}");

    // Tags on a queue ARN: add, list, remove.
    client
        .tag_resource()
        .resource_arn(&queue_arn)
        .tags("team", "data")
        .tags("env", "dev")
        .send()
        .await
        .unwrap();
    client.untag_resource().resource_arn(&queue_arn).tag_keys("env").send().await.unwrap();
    let tags = client.list_tags_for_resource().resource_arn(&queue_arn).send().await.unwrap();
    let tags: Vec<_> = tags.tags().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(tags, [("team".to_string(), "data".to_string())]);
    let missing = format!("{}-nope", queue_arn);
    assert!(client_error(client.list_tags_for_resource().resource_arn(&missing).send().await)
        .contains("resourceArn"));

    client.update_job_queue().job_queue(QUEUE).state(JqState::Disabled).send().await.unwrap();
    let message =
        client_error(client.submit_job().job_name("late").job_queue(QUEUE).job_definition("d").send().await);
    assert!(message.contains("DISABLED"), "{message}");
    client.delete_job_queue().job_queue(&queue_arn).send().await.expect("delete queue");
    client.delete_compute_environment().compute_environment("ce1").send().await.expect("delete ce");
    // DELETING for a moment, as on AWS, then gone.
    super::batch_api_support::wait_resources(&client, |ces, queues| ces.is_empty() && queues.is_empty())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_restarts_with_its_definitions_queues_and_jobs() {
    let server = Server::start();
    let client = server.client();
    server.setup(&client).await;
    register_sh(&client, "d", "true", &server.out()).await;
    let job =
        client.submit_job().job_name("before").job_queue(QUEUE).job_definition("d").parameters("k", "v");
    let job = job.send().await.expect("submit").job_id().unwrap().to_string();
    super::batch_api_support::wait_done(&client, &job).await;

    let server = server.restart();
    let client = server.client();
    let defs = client.describe_job_definitions().job_definition_name("d").send().await.unwrap();
    assert_eq!(defs.job_definitions().len(), 1);
    let queues = client.describe_job_queues().send().await.unwrap();
    assert_eq!(queues.job_queues()[0].job_queue_name(), Some(QUEUE));
    let before = super::batch_api_support::describe(&client, &job).await;
    assert_eq!(before.status(), Some(&aws_sdk_batch::types::JobStatus::Succeeded));
    assert_eq!(before.parameters().unwrap()["k"], "v");
    let after =
        client.submit_job().job_name("after").job_queue(QUEUE).job_definition("d").send().await.unwrap();
    let after = super::batch_api_support::wait_done(&client, after.job_id().unwrap()).await;
    assert_eq!(after.status(), Some(&aws_sdk_batch::types::JobStatus::Succeeded));
}
