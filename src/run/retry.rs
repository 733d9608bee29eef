//! `batchfan retry`: a new attempt of a FAILED or CANCELLED run that reuses
//! every child result stored and runs only what is missing ([`retry_plan`]).
//!
//! Same run id, next attempt number. [`start`] stores each stage's rerun list
//! (`rerun#{run}#{attempt}#{stage}` → position → global index), deletes what
//! the rerun children will write again (their results, outputs and rejects,
//! and the run's output and rejects), then moves the record FAILED|CANCELLED →
//! PLANNED with a conditional write and publishes RunPlanned: the submitter
//! submits the attempt's graph like any other. Events of earlier attempts'
//! jobs are ignored by the monitor (tag `batchfan:attempt`).
//!
//! [`retry_plan`]: super::retry_plan

use std::collections::BTreeSet;

use serde_json::Value;
use tracing::info;

pub use super::retry_plan::{job_prefix, RetryPlan, RetryShard};
use super::{
    layout, plan_topic,
    planner::RunPlanned,
    record::{now_ms, RunRecord, RunState, RunStore},
    retry_plan, Ports, RunError,
};
use crate::{
    spec::PipelineSpec,
    table::{Item, Key, TTL},
};

/// Tag naming the attempt a job belongs to (absent: attempt 1).
pub const TAG_ATTEMPT: &str = "batchfan:attempt";

/// Why a run cannot be retried.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// Only a FAILED or CANCELLED run is retried.
    #[error("run {run_id} is {state}: only a FAILED or CANCELLED run can be retried{hint}")]
    NotRetryable { run_id: String, state: RunState, hint: &'static str },
    /// A port, plan or graph step failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

fn rerun_pk(run_id: &str, attempt: u32, stage: &str) -> String {
    format!("rerun#{run_id}#{attempt}#{stage}")
}

/// Starts the next attempt of `run_id`; returns the record as stored after.
/// Idempotent: a retry of a run already moved on returns it as it is.
pub async fn start(ports: &Ports, spec: &PipelineSpec, run_id: &str) -> Result<RunRecord, RetryError> {
    let store = RunStore::of(ports.table.as_ref(), spec);
    let rec = store
        .get(run_id)
        .await
        .map_err(RunError::from)?
        .ok_or_else(|| RunError::UnknownRun(run_id.into()))?;
    if !matches!(rec.state, RunState::Failed | RunState::Cancelled) {
        let hint = match rec.state {
            RunState::Succeeded => ": its output is complete",
            _ => ": it has not ended; wait for it, or cancel it first (batchfan cancel)",
        };
        return Err(RetryError::NotRetryable { run_id: run_id.into(), state: rec.state, hint });
    }
    let sizing = rec.sizing.ok_or_else(|| {
        RunError::Invalid(format!("run {run_id} has no sizing: it never planned; run it again"))
    })?;
    let kept_ms = i64::from(spec.storage.scratch_days) * 86_400_000;
    if now_ms() - rec.created_at > kept_ms {
        return Err(RunError::Invalid(format!(
            "run {run_id}'s work items and results have expired ([storage] scratch_days = {}): run the pipeline again, or raise scratch_days to retry later runs",
            spec.storage.scratch_days
        ))
        .into());
    }
    let mut done = Vec::with_capacity(spec.stages.len());
    for stage in &spec.stages {
        let results = store.results(run_id, &stage.name).await.map_err(RunError::from)?;
        done.push(results.into_iter().map(|(i, _)| i).collect::<BTreeSet<u64>>());
    }
    let reruns = retry_plan::reruns(spec, sizing.children, &done);
    let attempt = rec.attempt() + 1;
    let plan = retry_plan::plan(spec, run_id, attempt, &reruns);
    retry_plan::graph(spec, run_id, &plan).map_err(RunError::from)?;
    for (stage, list) in spec.stages.iter().zip(&reruns) {
        let pk = rerun_pk(run_id, attempt, &stage.name);
        let items = list
            .iter()
            .enumerate()
            .map(|(pos, i)| {
                Item::new(Key::new(pk.clone(), format!("{pos:010}")))
                    .with("index", *i)
                    .with(TTL, store.scratch_expiry())
            })
            .collect();
        ports.table.put_batch(&spec.storage.table, items).await.map_err(RunError::from)?;
        forget(ports, spec, run_id, &stage.name, list).await?;
    }
    for obj in [
        layout::run_output(&spec.storage.bucket, &spec.name, run_id),
        layout::run_rejects(&spec.storage.bucket, &spec.name, run_id),
    ] {
        ports.objects.delete(&obj).await.map_err(RunError::from)?;
    }
    let from = rec.attempt();
    let rec = store
        .update(run_id, |r| {
            if !matches!(r.state, RunState::Failed | RunState::Cancelled) || r.attempt() != from {
                return false;
            }
            r.attempt = attempt;
            r.state = RunState::Planned;
            if let Some(earlier) = r.retry.take() {
                r.past_retries.push(earlier);
            }
            r.retry = Some(plan.clone());
            r.failure = None;
            r.alerted = false;
            r.cancel = None;
            r.summary = None;
            r.lease = None;
            for t in ["submitted", "finished", "cleanup_waiting"] {
                r.times.remove(t);
            }
            r.times.insert(format!("retry_{attempt}"), now_ms());
            true
        })
        .await
        .map_err(RunError::from)?;
    info!(run_id, attempt, reruns = ?plan.reruns, "retry planned");
    if rec.state == RunState::Planned {
        let msg = RunPlanned { pipeline: spec.name.clone(), run_id: run_id.into() };
        ports.topic.publish(&plan_topic(&spec.name), msg.to_message()).await.map_err(RunError::from)?;
    }
    Ok(rec)
}

/// Deletes what rerun children of `stage` write again: results, outputs, rejects.
async fn forget(
    ports: &Ports,
    spec: &PipelineSpec,
    run_id: &str,
    stage: &str,
    list: &[u64],
) -> Result<(), RunError> {
    let (bucket, pipeline) = (&spec.storage.bucket, &spec.name);
    let keys =
        list.iter().map(|i| Key::new(format!("results#{run_id}#{stage}"), format!("{i:010}"))).collect();
    ports.table.delete_batch(&spec.storage.table, keys).await?;
    for &i in list {
        ports.objects.delete(&layout::child_output(bucket, pipeline, run_id, stage, i)).await?;
        ports.objects.delete(&layout::child_rejects(bucket, pipeline, run_id, stage, i)).await?;
    }
    Ok(())
}

/// The global index that position `position` of `stage`'s rerun list of `attempt` runs.
pub async fn global_index(
    table: &dyn crate::table::Table,
    table_name: &str,
    run_id: &str,
    attempt: u32,
    stage: &str,
    position: u64,
) -> crate::error::PortResult<Option<u64>> {
    let key = Key::new(rerun_pk(run_id, attempt, stage), format!("{position:010}"));
    Ok(table.get(table_name, &key).await?.and_then(|i| match i.attrs.get("index") {
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    }))
}

/// Deletes the rerun lists of every retry attempt of a run (the success cleanup).
pub async fn delete_lists(store: &RunStore<'_>, rec: &RunRecord) -> crate::error::PortResult<u64> {
    let mut n = 0;
    for attempt in 2..=rec.attempt() {
        for stage in &rec.stages {
            let pk = rerun_pk(&rec.run_id, attempt, stage);
            let keys: Vec<Key> =
                store.table.query(store.name, &pk, "").await?.into_iter().map(|i| i.key).collect();
            n += keys.len() as u64;
            store.table.delete_batch(store.name, keys).await?;
        }
    }
    Ok(n)
}
