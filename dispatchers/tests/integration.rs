//! Every integration test of this crate, in one test binary: each file
//! under `tests/` is a module, and the shared support modules are declared
//! once here. One binary links the AWS SDK once instead of once per file,
//! which is most of the test build's time. Run one file's tests with
//! `cargo nextest run -E 'binary(integration) & test(/^FILE::/)'`.

#[path = "../../tests/support/batch_queue.rs"]
mod batch_queue;
mod common;
#[path = "../../tests/support/event_shape.rs"]
mod event_shape;
#[path = "../../tests/support/moto.rs"]
mod moto;
#[path = "../../tests/support/parent_fails_early.rs"]
mod parent_fails_early;

mod batch_events;
mod cleanup_reconcile;
mod cron_queue;
mod e2e_moto;
mod events;
mod handlers;
mod ssm;
