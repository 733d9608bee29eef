//! batchfan: batch pipelines on AWS Batch with SNS fan-out, and the very same
//! pipelines on one machine.
//!
//! A trigger starts a **planner** that sizes the work and stores one
//! [`plan::WorkItem`] per array child; a **submitter** turns the plan into a
//! [`graph::JobGraph`] of array jobs chained N_TO_N, an aggregation job and a
//! cleanup job; failures raise one alert per run. Pure logic (spec, plan,
//! graph, state machine) never does I/O; I/O sits behind the ports
//! [`batch::Batch`], [`table::Table`], [`objects::Objects`] and [`topic::Topic`],
//! implemented locally by [`engine`] and SQLite/directory/bus adapters.

pub mod aws;
pub mod backend;
pub mod backoff;
pub mod batch;
#[cfg(feature = "local")]
pub mod batchapi;
#[cfg(feature = "local")]
pub mod cli;
#[cfg(feature = "local")]
pub mod cost;
pub mod deploy;
#[cfg(feature = "local")]
pub mod engine;
pub mod env;
pub mod error;
pub mod graph;
pub mod ids;
#[cfg(feature = "local")]
pub mod inputs;
pub mod logs;
pub mod objects;
pub mod plan;
pub mod run;
#[cfg(feature = "local")]
pub mod runtime;
#[cfg(feature = "local")]
pub mod serve;
#[cfg(feature = "local")]
pub mod service;
pub mod spec;
#[cfg(feature = "local")]
pub(crate) mod sqlite;
pub mod table;
pub mod tfvars;
pub mod topic;
pub mod trigger;
