//! The Batch port's contract scenarios — the same as `contract_batch_local.rs`
//! and `contract_batch_aws.rs` — against the aws-sdk-batch adapter
//! (`src/aws/batch.rs`) pointed at `batchfan batch-api` with `endpoint_url`:
//! the production adapter through the real API, on the local engine.

use crate::batch_api_support;
use crate::contract_batch as contract;

use batch_api_support::{register_sh, Server, QUEUE};
use batchfan::aws::{static_sdk_config, AwsClients, AwsSettings};

/// One `#[tokio::test]` per scenario, each on its own server.
macro_rules! api_batch_contract {
    ($($scenario:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $scenario() {
            // Timeouts (60 s at least, as on AWS) pass in 0.6 s.
            let server = Server::start_with(&["--time-scale", "0.01"]);
            let client = server.client();
            server.setup(&client).await;
            register_sh(&client, "contract", "true", &server.out()).await;
            let config = static_sdk_config(&server.endpoint, "us-east-1", "testing", "testing");
            let clients = AwsClients::from_sdk_config(&config, AwsSettings::default()).expect("clients");
            contract::$scenario(&clients.batch(), &contract::Fixture::new(QUEUE, "contract")).await;
        }
    )*};
}

batch_scenarios!(api_batch_contract);
batch_scenarios_that_run_jobs!(api_batch_contract);
