//! The Batch port's contract scenarios — the same as `contract_batch_local.rs`
//! and `contract_batch_aws.rs` — against the aws-sdk-batch adapter
//! (`src/aws/batch.rs`) pointed at `batchfan batch-api` with `endpoint_url`:
//! the production adapter through the real API, on the local engine.

#[path = "batch_api_support/mod.rs"]
mod batch_api_support;
#[path = "contract/batch.rs"]
mod contract;

use batch_api_support::{register_sh, Server, QUEUE};
use batchfan::aws::{static_sdk_config, AwsClients, AwsSettings};

/// One `#[tokio::test]` per scenario, each on its own server.
macro_rules! api_batch_contract {
    ($($scenario:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $scenario() {
            let server = Server::start();
            let client = server.client();
            server.setup(&client).await;
            register_sh(&client, "contract", "true", &server.out()).await;
            let config = static_sdk_config(&server.endpoint, "us-east-1", "testing", "testing");
            let clients = AwsClients::from_sdk_config(&config, AwsSettings::default()).expect("clients");
            contract::$scenario(&clients.batch(), &contract::Fixture::new(QUEUE, "contract")).await;
        }
    )*};
}

api_batch_contract!(
    submit_plain_and_describe,
    submit_array_and_describe_parent_and_child,
    describe_omits_unknown_ids,
    list_by_name_with_trailing_star,
    list_array_children,
    depends_on_is_recorded,
    cancel_a_waiting_job,
    limits_are_rejected,
    dependency_failure_cascades,
    exit_75_is_retried,
);
