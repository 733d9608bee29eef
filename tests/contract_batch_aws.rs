//! The Batch port's contract scenarios — the same as `contract_batch_local.rs`
//! — against the aws-sdk-batch adapter on a moto server, with a compute
//! environment, queue and job definition created through the SDK.
//!
//! moto runs no containers (Docker is off): every job is SUCCEEDED moments
//! after it is submitted and no state-change events are emitted. So these
//! scenarios cover what the adapter sends and reads back — submit, describe
//! (parents, children, unknown ids), list by name / array children,
//! `dependsOn` round trips, cancel, and the limits refused before any call.
//! What depends on jobs really running — retries and evaluateOnExit,
//! timeouts, the dependency-failure cascade, array status summaries while
//! running, state-change events — is covered by the local engine's tests
//! (`engine_*`), which implement AWS's rules, and cannot be observed on moto.

use crate::aws_fixtures;
use crate::contract_batch as contract;
use crate::moto;

use aws_fixtures::Fixtures;
use batchfan::aws::AwsClients;
use moto::Moto;

/// One `#[tokio::test]` per scenario, each on its own server.
macro_rules! aws_batch_contract {
    ($($scenario:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $scenario() {
            let moto = Moto::start();
            let clients = AwsClients::from_sdk_config(&moto.sdk_config(), moto.settings()).expect("clients");
            let (queue, definition) = Fixtures::new(&moto.sdk_config()).batch_queue(&moto).await;
            contract::$scenario(&clients.batch(), &contract::Fixture::new(&queue, &definition)).await;
        }
    )*};
}

batch_scenarios!(aws_batch_contract);
