//! Every validation rule of SubmitJob and DescribeJobs answers as AWS does:
//! `ClientException`, HTTP 400, a message naming the field at fault.

use aws_sdk_batch::{
    error::SdkError,
    operation::submit_job::builders::SubmitJobFluentBuilder,
    types::{ArrayProperties, EvaluateOnExit, JobDependency, JobTimeout, RetryAction, RetryStrategy},
    Client,
};

use super::batch_api_support::{register_sh, Server, QUEUE};

fn base(client: &Client) -> SubmitJobFluentBuilder {
    client.submit_job().job_name("ok").job_queue(QUEUE).job_definition("noop")
}

fn retry(attempts: i32, rules: usize, code: &str) -> RetryStrategy {
    let rule = EvaluateOnExit::builder().on_exit_code(code).action(RetryAction::Retry).build();
    RetryStrategy::builder().attempts(attempts).set_evaluate_on_exit(Some(vec![rule; rules])).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invalid_submission_is_a_client_exception_naming_the_field() {
    let server = Server::start();
    let client = server.client();
    server.setup(&client).await;
    register_sh(&client, "noop", "true", &server.out()).await;
    let dep = |id: &str| JobDependency::builder().job_id(id).build();
    let cases: Vec<(&str, SubmitJobFluentBuilder)> = vec![
        (
            "arrayProperties.size 1",
            base(&client).array_properties(ArrayProperties::builder().size(1).build()),
        ),
        (
            "arrayProperties.size 10001",
            base(&client).array_properties(ArrayProperties::builder().size(10_001).build()),
        ),
        (
            "dependsOn has 21",
            base(&client).set_depends_on(Some((0..21).map(|i| dep(&format!("j{i}"))).collect())),
        ),
        ("jobName \"bad name\"", base(&client).job_name("bad name")),
        ("jobName \"", base(&client).job_name("x".repeat(129))),
        ("retryStrategy.attempts 11", base(&client).retry_strategy(retry(11, 0, "1"))),
        ("retryStrategy.attempts 0", base(&client).retry_strategy(retry(0, 0, "1"))),
        ("retryStrategy.evaluateOnExit has 6", base(&client).retry_strategy(retry(2, 6, "1"))),
        ("onExitCode \"7x\"", base(&client).retry_strategy(retry(2, 1, "7x"))),
        (
            "timeout.attemptDurationSeconds 59",
            base(&client).timeout(JobTimeout::builder().attempt_duration_seconds(59).build()),
        ),
        ("request is", base(&client).parameters("big", "x".repeat(31 * 1024))),
        ("jobQueue \"nope\"", base(&client).job_queue("nope")),
        ("jobDefinition \"missing\"", base(&client).job_definition("missing")),
        ("dependency job id \"j0\"", base(&client).depends_on(dep("j0"))),
    ];
    for (field, request) in cases {
        match request.send().await {
            Ok(out) => panic!("{field}: accepted as job {:?}", out.job_id()),
            Err(SdkError::ServiceError(e)) => {
                assert_eq!(e.raw().status().as_u16(), 400, "{field}");
                assert!(e.err().is_client_exception(), "{field}: {:?}", e.err());
                let message = e.err().meta().message().unwrap_or_default().to_string();
                assert!(message.contains(field), "{field}: message {message:?}");
            }
            Err(other) => panic!("{field}: not a service error: {other:?}"),
        }
    }
    let many: Vec<String> = (0..101).map(|i| format!("j{i}")).collect();
    match client.describe_jobs().set_jobs(Some(many)).send().await {
        Err(SdkError::ServiceError(e)) => {
            assert!(e.err().is_client_exception());
            assert!(e.err().meta().message().unwrap_or_default().contains("jobs has 101"));
        }
        other => panic!("101 ids: {other:?}"),
    }
}
