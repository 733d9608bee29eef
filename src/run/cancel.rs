//! `batchfan cancel`: stop a run; it ends `CANCELLED`, cleanup still runs, and
//! one notice (not a failure alert) goes out on the alerts topic.
//!
//! [`request`] records the cancel in the run record with a conditional write
//! (a run that has ended is left as it is). Whoever drives the run's jobs then
//! [`apply`]s it — the `cancel` command itself, the monitor's reconciliation
//! (a `batchfan run` or `serve` that owns the local engine), the submitter for
//! a run not submitted yet — by AWS's rules per job state: `CancelJob` for
//! SUBMITTED, PENDING and RUNNABLE, `TerminateJob` for STARTING and RUNNING
//! (an array's started children one by one, then `CancelJob` on the parent
//! for the rest). The cleanups are never stopped: the planned cleanup fails by
//! cascade, and the monitor's failure cleanup runs as after any failure; when
//! it ends the run is CANCELLED ([`Monitor`]'s finish) and [`publish_notice`]
//! announces it once. Once a cancel is requested, jobs that fail raise no
//! failure alert. Applying twice stops nothing twice (ended jobs are skipped).
//!
//! [`Monitor`]: super::monitor::Monitor

use serde_json::json;
use tracing::info;

use super::{
    record::{now_ms, CancelRequest, RunRecord, RunState, RunStore},
    retry::job_prefix,
    Ports, RunError,
};
use crate::{
    batch::{JobQuery, JobStatus},
    spec::PipelineSpec,
    topic::Message,
};

/// The reason the stopped jobs carry (`statusReason`).
pub const REASON: &str = "cancelled by batchfan cancel";

/// The `kind` attribute of the cancelled notice on the alerts topic (failure alerts: `failure`).
pub const NOTICE_KIND: &str = "cancelled";

/// Records a cancel of `run_id` unless the run has ended; returns the record as stored after.
pub async fn request(store: &RunStore<'_>, run_id: &str, by: &str) -> Result<RunRecord, RunError> {
    let rec = store.update(run_id, |r| {
        if r.state.is_terminal() || r.cancel.is_some() {
            return false;
        }
        r.cancel = Some(CancelRequest { requested_at: now_ms(), by: by.to_owned(), notified: false });
        true
    });
    rec.await.map_err(|e| match e {
        crate::error::PortError::NotFound(_) => RunError::UnknownRun(run_id.to_owned()),
        e => e.into(),
    })
}

/// Stops every job of the run's current attempt that has not ended (its cleanups excepted).
/// Returns how many CancelJob and TerminateJob calls it made.
pub async fn apply(ports: &Ports, spec: &PipelineSpec, run_id: &str) -> Result<(u64, u64), RunError> {
    let store = RunStore::new(ports.table.as_ref(), &spec.storage.table);
    let Some(rec) = store.get(run_id).await? else { return Ok((0, 0)) };
    if rec.cancel.is_none() || rec.state.is_terminal() {
        return Ok((0, 0));
    }
    let prefix = job_prefix(&spec.name, run_id, rec.attempt());
    let cleanups = [format!("{prefix}cleanup"), format!("{prefix}cleanup-onfailure")];
    let pattern = format!("{prefix}*");
    let jobs = ports.batch.list_jobs(&JobQuery::ByName { queue: spec.job_queue.clone(), pattern }).await?;
    let (mut cancelled, mut terminated) = (0, 0);
    for job in jobs.iter().filter(|j| !cleanups.contains(&j.job_name) && !j.status.is_terminal()) {
        let is_array = job.array_properties.as_ref().is_some_and(|a| a.size.is_some());
        if is_array {
            for status in [JobStatus::Starting, JobStatus::Running] {
                let q = JobQuery::ArrayChildren { array_job_id: job.job_id.clone(), status: Some(status) };
                for child in ports.batch.list_jobs(&q).await? {
                    ports.batch.terminate_job(&child.job_id, REASON).await?;
                    terminated += 1;
                }
            }
            ports.batch.cancel_job(&job.job_id, REASON).await?;
            cancelled += 1;
        } else if matches!(job.status, JobStatus::Starting | JobStatus::Running) {
            ports.batch.terminate_job(&job.job_id, REASON).await?;
            terminated += 1;
        } else {
            ports.batch.cancel_job(&job.job_id, REASON).await?;
            cancelled += 1;
        }
    }
    if rec.state == RunState::Submitted && !jobs.iter().any(|j| cleanups.contains(&j.job_name)) {
        // Cancelled before its jobs went out: nothing ran, nothing to clean up.
        finish(ports, spec, run_id).await?;
    }
    info!(run_id, cancelled, terminated, "cancel applied");
    Ok((cancelled, terminated))
}

/// Ends a cancelled run CANCELLED (unless it has ended) and publishes its notice.
pub async fn finish(ports: &Ports, spec: &PipelineSpec, run_id: &str) -> Result<(), RunError> {
    let store = RunStore::new(ports.table.as_ref(), &spec.storage.table);
    let rec = store
        .update(run_id, |r| {
            if r.state.is_terminal() {
                return false;
            }
            r.state = RunState::Cancelled;
            r.times.insert("finished".into(), now_ms());
            true
        })
        .await?;
    publish_notice(ports, spec, &rec).await
}

/// Publishes the cancelled notice of a CANCELLED run, unless it was published.
pub async fn publish_notice(ports: &Ports, spec: &PipelineSpec, rec: &RunRecord) -> Result<(), RunError> {
    let Some(cancel) = &rec.cancel else { return Ok(()) };
    if rec.state != RunState::Cancelled || cancel.notified {
        return Ok(());
    }
    let mut subject = format!("batchfan {}: run {} cancelled", rec.pipeline, rec.run_id);
    subject.truncate(100);
    let body = json!({
        "kind": NOTICE_KIND, "pipeline": rec.pipeline, "run_id": rec.run_id, "attempt": rec.attempt(),
        "requested_by": cancel.by, "requested_at": cancel.requested_at,
        "retry": format!("batchfan retry {}", rec.run_id),
    });
    let msg = Message::new(body.to_string())
        .with_subject(subject)
        .with_attribute("kind", NOTICE_KIND)
        .with_attribute("pipeline", rec.pipeline.as_str())
        .with_attribute("run_id", rec.run_id.as_str())
        .with_attribute("dedup_id", format!("cancelled#{}#{}", rec.run_id, rec.attempt()));
    ports.topic.publish(&spec.alerts.topic, msg).await?;
    info!(run_id = %rec.run_id, "run cancelled: notice published");
    let store = RunStore::new(ports.table.as_ref(), &spec.storage.table);
    store
        .update(&rec.run_id, |r| match &mut r.cancel {
            Some(c) if !c.notified => {
                c.notified = true;
                true
            }
            _ => false,
        })
        .await?;
    Ok(())
}
