//! The run lifecycle: trigger → planner → submitter → (jobs) → monitor.
//!
//! Each step is a function over [`Ports`], idempotent under at-least-once
//! delivery: the planner claims the trigger's idempotency key, the submitter
//! holds a lease on the run and reconciles by job name before submitting, the
//! monitor claims the run's single alert with a conditional write.

pub mod cancel;
pub mod layout;
pub mod monitor;
pub mod planner;
pub mod record;
pub mod retry;
mod retry_plan;
pub mod submit;
pub mod timings;

use std::sync::Arc;

pub use self::record::{ChildResult, Failure, RunRecord, RunState, RunStore, TriggerEvent, TriggerSource};
pub use crate::logs::{FileLogTail, LogTail};
use crate::{
    batch::Batch, error::PortError, graph::GraphError, objects::Objects, plan::PlanError, table::Table,
    topic::Topic,
};

/// Which backend the ports talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Local,
    Aws,
}

/// Every port a run step needs, built once per process.
#[derive(Clone)]
pub struct Ports {
    pub kind: BackendKind,
    pub batch: Arc<dyn Batch>,
    pub table: Arc<dyn Table>,
    pub objects: Arc<dyn Objects>,
    pub topic: Arc<dyn Topic>,
    pub logs: Arc<dyn LogTail>,
}

/// Errors of the run lifecycle.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A port call failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// Planning failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The job graph breaks an AWS limit.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Another submitter holds the run's lease; the delivery will be retried.
    #[error("run {run_id} is being submitted by {owner} (lease until {until_ms}): retry later")]
    LeaseHeld { run_id: String, owner: String, until_ms: i64 },
    /// The run does not exist.
    #[error("run {0} not found: check the id with `batchfan status`")]
    UnknownRun(String),
    /// The request does not fit the pipeline.
    #[error("{0}")]
    Invalid(String),
}

impl RunError {
    /// Whether the step may succeed if delivered again later.
    pub fn retryable(&self) -> bool {
        match self {
            RunError::Port(e) => e.retryable(),
            RunError::Plan(PlanError::Port(e)) => e.retryable(),
            RunError::LeaseHeld { .. } => true,
            _ => false,
        }
    }
}

/// Name of a pipeline's plan topic.
pub fn plan_topic(pipeline: &str) -> String {
    format!("{pipeline}-plan")
}
