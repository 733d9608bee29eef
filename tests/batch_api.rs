//! `batchfan batch-api` driven by aws-sdk-batch (the client our AWS adapter
//! uses): jobs run on the local engine with AWS Batch's semantics, through
//! the real API. Every test starts its own server (tests/batch_api_support).
//!
//! The conformance scenarios ([`clients::SCENARIOS`]) are tests here, and run
//! through boto3 and the AWS CLI too (`batch_api_support/scenarios.py`).

use crate::batch_api_support;
#[path = "batch_api_support/capacity.rs"]
mod capacity;
#[path = "batch_api_support/clients.rs"]
mod clients;
#[path = "batch_api_support/errors.rs"]
mod errors;
#[path = "batch_api_support/listing.rs"]
mod listing;
#[path = "batch_api_support/resources.rs"]
mod resources;
#[path = "batch_api_support/service_model.rs"]
mod service_model;
#[path = "batch_api_support/terraform.rs"]
mod terraform;

use aws_sdk_batch::types::{
    ArrayJobDependency, ArrayProperties, EvaluateOnExit, JobDependency, JobStatus, RetryAction, RetryStrategy,
};
use batch_api_support::{describe, register_sh, summary, wait_done, wait_for, Server, QUEUE};

fn array(n: i32) -> ArrayProperties {
    ArrayProperties::builder().size(n).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn array_children_run_with_their_index_and_size() {
    let server = Server::start();
    let client = server.client();
    server.setup(&client).await;
    let script = "echo $AWS_BATCH_JOB_ARRAY_INDEX $AWS_BATCH_JOB_ARRAY_SIZE > Ref::dir/child-$AWS_BATCH_JOB_ARRAY_INDEX";
    let def = register_sh(&client, "indexed", script, &server.out()).await;
    let job = client
        .submit_job()
        .job_name("fan")
        .job_queue(QUEUE)
        .job_definition("indexed")
        .array_properties(array(5))
        .send()
        .await
        .expect("submit");
    let id = job.job_id().unwrap();
    assert!(job.job_arn().unwrap().ends_with(&format!(":job/{id}")));
    let parent = wait_done(&client, id).await;
    assert_eq!(parent.status(), Some(&JobStatus::Succeeded));
    assert_eq!(summary(&parent), [("SUCCEEDED".to_string(), 5)]);
    assert_eq!(parent.array_properties().unwrap().size(), Some(5));
    assert_eq!(parent.job_definition(), Some(def.as_str()));
    assert!(parent.job_queue().unwrap().ends_with(":job-queue/q1"), "{:?}", parent.job_queue());
    for i in 0..5 {
        let written = std::fs::read_to_string(server.out().join(format!("child-{i}"))).expect("child wrote");
        assert_eq!(written.trim(), format!("{i} 5"));
    }
    let child = describe(&client, &format!("{id}:3")).await;
    assert_eq!(child.array_properties().unwrap().index(), Some(3));
    assert_eq!(child.status(), Some(&JobStatus::Succeeded));
    let attempt = &child.attempts()[0];
    assert_eq!(attempt.container().unwrap().exit_code(), Some(0));
    let log = attempt.container().unwrap().log_stream_name().expect("log stream");
    assert!(!log.is_empty());
    let created = child.created_at().unwrap();
    assert!(created > 0 && child.started_at().unwrap() >= created && child.stopped_at().unwrap() >= created);
    // The command the child ran, after Ref:: substitution.
    let command = child.container().unwrap().command();
    assert!(command[2].contains(&server.out().display().to_string()), "{command:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_to_n_failure_fails_only_the_matching_dependent() {
    let server = Server::start();
    let client = server.client();
    server.setup(&client).await;
    register_sh(&client, "first", "[ $AWS_BATCH_JOB_ARRAY_INDEX != 1 ] || exit 3", &server.out()).await;
    register_sh(&client, "second", "touch Ref::dir/b-$AWS_BATCH_JOB_ARRAY_INDEX", &server.out()).await;
    let a =
        client.submit_job().job_name("a").job_queue(QUEUE).job_definition("first").array_properties(array(3));
    let a = a.send().await.expect("submit a").job_id().unwrap().to_string();
    let b = client
        .submit_job()
        .job_name("b")
        .job_queue(QUEUE)
        .job_definition("second")
        .array_properties(array(3))
        .depends_on(JobDependency::builder().job_id(&a).r#type(ArrayJobDependency::NToN).build())
        .send()
        .await
        .expect("submit b");
    let b = b.job_id().unwrap().to_string();
    let a_done = wait_done(&client, &a).await;
    let b_done = wait_done(&client, &b).await;
    assert_eq!(a_done.status(), Some(&JobStatus::Failed));
    assert_eq!(summary(&a_done), [("FAILED".to_string(), 1), ("SUCCEEDED".to_string(), 2)]);
    assert_eq!(b_done.status(), Some(&JobStatus::Failed));
    assert_eq!(summary(&b_done), [("FAILED".to_string(), 1), ("SUCCEEDED".to_string(), 2)]);
    let b1 = describe(&client, &format!("{b}:1")).await;
    assert_eq!(b1.status(), Some(&JobStatus::Failed));
    assert!(b1.attempts().is_empty(), "a child whose dependency failed never runs");
    assert!(b1.status_reason().is_some_and(|r| r.contains("Dependent")), "{:?}", b1.status_reason());
    assert!(!server.out().join("b-1").exists());
    assert!(server.out().join("b-0").exists() && server.out().join("b-2").exists());
    assert_eq!(
        describe(&client, &format!("{a}:1")).await.attempts()[0].container().unwrap().exit_code(),
        Some(3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_children_run_in_index_order() {
    let server = Server::start();
    let client = server.client();
    server.setup(&client).await;
    register_sh(&client, "append", "echo $AWS_BATCH_JOB_ARRAY_INDEX >> Ref::dir/order", &server.out()).await;
    let job = client
        .submit_job()
        .job_name("seq")
        .job_queue(QUEUE)
        .job_definition("append")
        .array_properties(array(4))
        .depends_on(JobDependency::builder().r#type(ArrayJobDependency::Sequential).build())
        .send()
        .await
        .expect("submit");
    let done = wait_done(&client, job.job_id().unwrap()).await;
    assert_eq!(done.status(), Some(&JobStatus::Succeeded));
    assert_eq!(std::fs::read_to_string(server.out().join("order")).unwrap(), "0\n1\n2\n3\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_75_is_retried_then_succeeds_with_two_attempts() {
    let server = Server::start();
    let client = server.client();
    server.setup(&client).await;
    let script = "if [ -e Ref::dir/once ]; then exit 0; fi; touch Ref::dir/once; exit 75";
    register_sh(&client, "flaky", script, &server.out()).await;
    let rule = |code: &str, action| EvaluateOnExit::builder().on_exit_code(code).action(action).build();
    let job = client
        .submit_job()
        .job_name("flaky")
        .job_queue(QUEUE)
        .job_definition("flaky")
        .retry_strategy(
            RetryStrategy::builder()
                .attempts(2)
                .evaluate_on_exit(rule("75", RetryAction::Retry))
                .evaluate_on_exit(rule("*", RetryAction::Exit))
                .build(),
        )
        .send()
        .await
        .expect("submit");
    let done = wait_done(&client, job.job_id().unwrap()).await;
    assert_eq!(done.status(), Some(&JobStatus::Succeeded));
    let codes: Vec<_> = done.attempts().iter().map(|a| a.container().unwrap().exit_code()).collect();
    assert_eq!(codes, [Some(75), Some(0)]);
    assert_eq!(done.retry_strategy().unwrap().attempts(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_stops_a_running_child_and_cancel_a_pending_job() {
    let server = Server::start();
    let client = server.client();
    server.setup(&client).await;
    register_sh(&client, "long", "exec sleep 600", &server.out()).await;
    let arr = client
        .submit_job()
        .job_name("long")
        .job_queue(QUEUE)
        .job_definition("long")
        .array_properties(array(2));
    let arr = arr.send().await.expect("submit array").job_id().unwrap().to_string();
    let pending = client
        .submit_job()
        .job_name("after")
        .job_queue(QUEUE)
        .job_definition("long")
        .depends_on(JobDependency::builder().job_id(&arr).build())
        .send()
        .await
        .expect("submit dependent");
    let pending = pending.job_id().unwrap().to_string();
    let child = format!("{arr}:0");
    wait_for(&client, &child, |s| *s == JobStatus::Running).await;
    assert_eq!(describe(&client, &pending).await.status(), Some(&JobStatus::Pending));

    // CancelJob leaves a RUNNING job alone (AWS's rule), and fails a PENDING one.
    client.cancel_job().job_id(&child).reason("not started?").send().await.expect("cancel running");
    assert_eq!(describe(&client, &child).await.status(), Some(&JobStatus::Running));
    client.cancel_job().job_id(&pending).reason("no longer needed").send().await.expect("cancel pending");
    let cancelled = describe(&client, &pending).await;
    assert_eq!(cancelled.status(), Some(&JobStatus::Failed));
    assert_eq!(cancelled.status_reason(), Some("no longer needed"));
    assert!(cancelled.attempts().is_empty());

    client.terminate_job().job_id(&child).reason("stop it").send().await.expect("terminate child");
    let stopped = wait_done(&client, &child).await;
    assert_eq!(stopped.status(), Some(&JobStatus::Failed));
    assert_eq!(stopped.status_reason(), Some("stop it"));
    let other = describe(&client, &format!("{arr}:1")).await;
    assert_ne!(other.status(), Some(&JobStatus::Failed), "terminating one child leaves its sibling");
    client.terminate_job().job_id(&arr).reason("cleanup").send().await.expect("terminate array");
    assert_eq!(wait_done(&client, &arr).await.status(), Some(&JobStatus::Failed));
    let unknown = client.terminate_job().job_id("nope").reason("x").send().await.unwrap_err();
    let unknown = unknown.into_service_error();
    assert!(unknown.is_client_exception(), "{unknown:?}");
    assert!(unknown.meta().message().unwrap_or_default().contains("jobId \"nope\""), "{unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_of_the_request_override_the_definition_defaults() {
    let server = Server::start();
    let client = server.client();
    server.setup(&client).await;
    let def = register_sh(&client, "word", "echo Ref::word > Ref::dir/word-Ref::word", &server.out()).await;
    // A second revision adds a default for `word`; submitting by name takes the latest.
    let rev2 = client
        .register_job_definition()
        .job_definition_name("word")
        .r#type(aws_sdk_batch::types::JobDefinitionType::Container)
        .parameters("dir", server.out().display().to_string())
        .parameters("word", "fromdefinition")
        .container_properties(
            client.describe_job_definitions().job_definitions(&def).send().await.unwrap().job_definitions()
                [0]
            .container_properties()
            .unwrap()
            .clone(),
        )
        .send()
        .await
        .expect("register revision 2");
    assert_eq!(rev2.revision(), Some(2));
    let by_default =
        client.submit_job().job_name("d").job_queue(QUEUE).job_definition("word").send().await.unwrap();
    let overridden = client
        .submit_job()
        .job_name("o")
        .job_queue(QUEUE)
        .job_definition("word:2")
        .parameters("word", "fromrequest")
        .send()
        .await
        .unwrap();
    let d = wait_done(&client, by_default.job_id().unwrap()).await;
    let o = wait_done(&client, overridden.job_id().unwrap()).await;
    assert!(d.job_definition().unwrap().ends_with(":job-definition/word:2"));
    assert_eq!((d.status(), o.status()), (Some(&JobStatus::Succeeded), Some(&JobStatus::Succeeded)));
    assert_eq!(
        std::fs::read_to_string(server.out().join("word-fromdefinition")).unwrap(),
        "fromdefinition\n"
    );
    assert_eq!(std::fs::read_to_string(server.out().join("word-fromrequest")).unwrap(), "fromrequest\n");
    assert_eq!(o.parameters().unwrap()["word"], "fromrequest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_over_its_timeout_is_killed_and_fails() {
    // --time-scale 0.01: the 60 s timeout (AWS's minimum) passes in 0.6 s.
    let server = Server::start_with(&["--time-scale", "0.01"]);
    let client = server.client();
    server.setup(&client).await;
    register_sh(&client, "long", "exec sleep 600", &server.out()).await;
    let job = client
        .submit_job()
        .job_name("slow")
        .job_queue(QUEUE)
        .job_definition("long")
        .timeout(aws_sdk_batch::types::JobTimeout::builder().attempt_duration_seconds(60).build())
        .send()
        .await
        .expect("submit");
    let done = wait_done(&client, job.job_id().unwrap()).await;
    assert_eq!(done.status(), Some(&JobStatus::Failed));
    assert_eq!(done.timeout().and_then(|t| t.attempt_duration_seconds()), Some(60));
    let attempt = &done.attempts()[0];
    let reason = attempt.status_reason().unwrap_or_default();
    assert!(reason.contains("timeout"), "status reason {reason:?}");
}
