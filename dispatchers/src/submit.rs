//! The `submit` function: RunPlanned from the plan topic (SNS) → the run's
//! job graph, submitted exactly once ([`batchfan::run::submit::submit`]: a lease
//! on the run, reconciliation by job name before any SubmitJob).
//!
//! The lease owner is the Lambda invocation id. Lambda retries a failed or
//! timed-out invocation with the same id, so a retry takes over its own lease
//! at once and submits only the jobs that are missing; a duplicate SNS
//! delivery is another invocation, finds the lease held, and fails retryably
//! (by its retry the run is SUBMITTED and there is nothing left to do).

use aws_lambda_events::sns::{SnsEvent, SnsRecord};
use batchfan::run::{planner::RunPlanned, submit, RunRecord};
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::{error::fold_records, DispatchError, Dispatcher};

/// The RunPlanned an SNS record carries, checked against this deployment's pipeline.
pub fn run_planned(d: &Dispatcher, record: &SnsRecord) -> Result<RunPlanned, DispatchError> {
    let msg = &record.sns;
    let planned: RunPlanned = serde_json::from_str(&msg.message).map_err(|e| {
        DispatchError::BadEvent(format!(
            "SNS message {} on {} is not RunPlanned JSON ({e}): only the trigger function publishes on the plan topic",
            msg.message_id, msg.topic_arn
        ))
    })?;
    if planned.pipeline != d.spec.name {
        return Err(DispatchError::BadEvent(format!(
            "RunPlanned for pipeline {:?} reached pipeline {:?}'s submitter: subscribe each pipeline's submitter to its own plan topic",
            planned.pipeline, d.spec.name
        )));
    }
    Ok(planned)
}

/// Submits the run of every record; `invocation_id` owns the runs' leases.
pub async fn handle(d: &Dispatcher, event: SnsEvent, invocation_id: &str) -> Result<Value, DispatchError> {
    let total = event.records.len();
    let mut runs = Vec::new();
    let mut errors = Vec::new();
    for record in &event.records {
        let outcome = match run_planned(d, record) {
            Ok(planned) => submit_run(d, &planned, invocation_id).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(r) => runs.push(json!({ "run_id": r.run_id, "state": r.state, "jobs": r.jobs.len() })),
            Err(e) => {
                warn!(message_id = %record.sns.message_id, error = %e, retryable = e.retryable(), "plan message not submitted");
                errors.push(e);
            }
        }
    }
    if total == 1 {
        if let Some(e) = errors.pop() {
            return Err(e);
        }
    }
    fold_records(total, errors)?;
    Ok(json!({ "runs": runs }))
}

/// Submits one run's graph (idempotent).
pub async fn submit_run(
    d: &Dispatcher,
    planned: &RunPlanned,
    owner: &str,
) -> Result<RunRecord, DispatchError> {
    let record = submit::submit(&d.ports, &d.spec, &planned.run_id, owner).await?;
    info!(run_id = %record.run_id, state = %record.state, jobs = record.jobs.len(), "run submitted");
    Ok(record)
}
