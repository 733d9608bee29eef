//! Every validation rule of SubmitJob, DescribeJobs, ListJobs and CancelJob
//! answers as AWS does: `ClientException`, HTTP 400, a message naming the
//! field at fault (the same cases as scenarios.py's).

use aws_sdk_batch::{
    error::{ProvideErrorMetadata, SdkError},
    operation::submit_job::builders::SubmitJobFluentBuilder,
    types::{
        ArrayProperties, EksPropertiesOverride, EvaluateOnExit, JobDependency, JobTimeout, KeyValuesPair,
        NodeOverrides, RetryAction, RetryStrategy,
    },
    Client,
};
use aws_smithy_runtime_api::http::Response as HttpResponse;

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
        (
            "dependsOn[0].type \"ALL\"",
            base(&client).depends_on(JobDependency::builder().job_id("j0").r#type("ALL".into()).build()),
        ),
        ("schedulingPriorityOverride 10000", base(&client).scheduling_priority_override(10_000)),
        (
            "tags has 51",
            base(&client).set_tags(Some((0..51).map(|i| (format!("k{i}"), "v".to_string())).collect())),
        ),
        ("nodeOverrides", base(&client).node_overrides(NodeOverrides::builder().num_nodes(2).build())),
        (
            "eksPropertiesOverride",
            base(&client).eks_properties_override(EksPropertiesOverride::builder().build()),
        ),
    ];
    for (field, request) in cases {
        client_exception(field, request.send().await);
    }
    let many: Vec<String> = (0..101).map(|i| format!("j{i}")).collect();
    client_exception("jobs has 101", client.describe_jobs().set_jobs(Some(many)).send().await);
    let list = || client.list_jobs().job_queue(QUEUE);
    client_exception("jobQueue and arrayJobId", list().array_job_id("a").send().await);
    let by_name = KeyValuesPair::builder().name("JOB_NAME").values("a").build();
    client_exception("filters has 2", list().filters(by_name.clone()).filters(by_name).send().await);
    client_exception("maxResults 0", list().max_results(0).send().await);
    client_exception("multiNodeJobId", client.list_jobs().multi_node_job_id("m").send().await);
    client_exception("jobId \"nope\"", client.cancel_job().job_id("nope").reason("r").send().await);
}

/// Asserts `result` is a ClientException, HTTP 400, whose message contains `field`.
fn client_exception<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    field: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
) {
    match result {
        Ok(out) => panic!("{field}: accepted: {out:?}"),
        Err(SdkError::ServiceError(e)) => {
            assert_eq!(e.raw().status().as_u16(), 400, "{field}");
            assert_eq!(e.err().code(), Some("ClientException"), "{field}: {:?}", e.err());
            let message = e.err().message().unwrap_or_default();
            assert!(message.contains(field), "{field}: message {message:?}");
        }
        Err(other) => panic!("{field}: not a service error: {other:?}"),
    }
}
