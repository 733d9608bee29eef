//! Every integration test of this crate, in one test binary: each file
//! under `tests/` is a module, and the shared support modules are declared
//! once here. One binary links the AWS SDK once instead of once per file,
//! which is most of the test build's time. Run one file's tests with
//! `cargo nextest run -E 'binary(integration) & test(/^FILE::/)'`.

#[path = "../../tests/support/aws_fixtures.rs"]
mod aws_fixtures;
mod common;
#[path = "../../tests/support/moto.rs"]
mod moto;

mod e2e_aws;
mod e2e_cli;
mod e2e_failures;
mod e2e_orders;
