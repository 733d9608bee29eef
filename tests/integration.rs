//! Every integration test of this crate, in one test binary: each file
//! under `tests/` is a module, and the shared support modules are declared
//! once here. One binary links the AWS SDK once instead of once per file,
//! which is most of the test build's time. Run one file's tests with
//! `cargo nextest run -E 'binary(integration) & test(/^FILE::/)'`.

#[path = "support/aws_fixtures.rs"]
mod aws_fixtures;
#[path = "batch_api_support/mod.rs"]
mod batch_api_support;
#[path = "support/batch_queue.rs"]
mod batch_queue;
mod contract;
#[macro_use]
#[path = "contract/batch.rs"]
mod contract_batch;
mod engine_support;
#[path = "support/event_shape.rs"]
mod event_shape;
mod lambda_support;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/parent_fails_early.rs"]
mod parent_fails_early;
mod serve_support;

mod aws_adapters;
mod batch_api;
mod batch_events;
mod cli_aws;
mod cli_local;
mod cli_terminal;
mod contract_aws;
mod contract_batch_api;
mod contract_batch_aws;
mod contract_batch_local;
mod contract_local;
mod deployed;
mod engine_api;
mod engine_deps;
mod engine_isolation;
mod engine_restart;
mod engine_run;
mod graph_build;
mod lambda_cron_queue;
mod lambda_runtime;
mod layering;
mod local_bus;
mod local_objects;
mod local_table;
mod run_lifecycle;
mod run_ops;
mod run_ops_browser;
mod serve_aws;
mod serve_browser;
mod serve_cli;
mod serve_triggers;
mod spec_errors;
mod spec_load;
mod terraform_contract;
