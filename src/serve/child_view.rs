//! What a child's page (`/runs/{id}/children/{stage}/{index}`) shows: its
//! status and times, every attempt (exit code, reasons, duration, log stream)
//! with the tail of its log, and on request one attempt's whole log.
//!
//! Logs are read where the [`Source`] keeps them ([`super::source::JobLogs`]):
//! locally a whole log from the copy under `STATE/logs/` only (nothing
//! outside it is ever read), on AWS from CloudWatch Logs; up to
//! [`FULL_LOG_LIMIT`] bytes.

use serde::Serialize;

pub use super::source::{FullLog, FULL_LOG_LIMIT};
use super::{
    jobs::AttemptView,
    source::Source,
    view::{find_run, ViewError},
};
use crate::{
    batch::JobStatus,
    run::timings::{self, RunJob},
};

/// Lines of each attempt's log shown on the page.
const TAIL_LINES: usize = 50;

/// A child's page.
#[derive(Debug, Clone, Serialize)]
pub struct ChildView {
    pub run_id: String,
    pub pipeline: String,
    pub run_state: String,
    pub stage: String,
    /// Global child index.
    pub index: u64,
    pub job_id: String,
    pub status: JobStatus,
    pub status_reason: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub attempts: Vec<AttemptView>,
    pub full_log: Option<FullLog>,
    /// The attempt whose whole log was asked for (`?log=N`).
    pub log_asked: Option<usize>,
    /// Where a whole log comes from when it cannot be shown here.
    pub log_note: Option<String>,
}

/// The job of `stage[index]` in a run: `parent:i` for an array child.
pub fn child_job(jobs: &[RunJob], stage: &str, index: u64) -> Option<String> {
    // The last attempt that ran the child.
    let (job, i) =
        jobs.iter().rev().filter(|j| j.stage == stage).find_map(|j| Some((j, j.position(index)?)))?;
    Some(if job.is_array() { format!("{}:{}", job.job_id, i) } else { job.job_id.clone() })
}

/// The page of `stage[index]` of a run; `Ok(None)` when there is no such run or child (yet).
pub async fn child(
    source: &Source,
    run_id: &str,
    stage: &str,
    index: u64,
    full_log: Option<usize>,
) -> Result<Option<ChildView>, ViewError> {
    let Some(rec) = find_run(source, run_id).await? else { return Ok(None) };
    let Some(job_id) = child_job(&timings::jobs_through(&rec, rec.attempt()), stage, index) else {
        return Ok(None);
    };
    let described = source
        .batch
        .describe_jobs(std::slice::from_ref(&job_id))
        .await
        .map_err(|source| ViewError::Batch { run_id: rec.run_id.clone(), source })?;
    let Some(d) = described.into_iter().next() else { return Ok(None) };
    let mut attempts = Vec::new();
    for (i, a) in d.attempts.iter().enumerate() {
        let log_tail = match a.log_stream_name.as_deref() {
            Some(s) => source
                .logs
                .tail(&d.job_definition, s, TAIL_LINES)
                .await
                .unwrap_or_else(|e| format!("(log unreadable: {e})")),
            None => String::new(),
        };
        attempts.push(AttemptView {
            number: i + 1,
            exit_code: a.exit_code,
            reason: a.reason.clone(),
            status_reason: a.status_reason.clone(),
            started_at: a.started_at,
            stopped_at: a.stopped_at,
            log_stream_name: a.log_stream_name.clone(),
            log_tail,
        });
    }
    let (mut full, mut log_note) = (None, None);
    if let Some(n) = full_log {
        let stream = attempts.iter().find(|a| a.number == n).and_then(|a| a.log_stream_name.clone());
        full = match stream {
            Some(s) => source.logs.whole(&d.job_definition, &s, n).await,
            None => None,
        };
        if full.is_none() {
            log_note = Some(source.logs.missing(&rec.run_id, stage, index, n));
        }
    }
    Ok(Some(ChildView {
        run_id: rec.run_id.clone(),
        pipeline: rec.pipeline.clone(),
        run_state: rec.state.as_str().to_owned(),
        stage: stage.to_owned(),
        index,
        job_id,
        status: d.status,
        status_reason: d.status_reason.clone(),
        created_at: d.created_at,
        started_at: d.started_at,
        stopped_at: d.stopped_at,
        attempts,
        full_log: full,
        log_asked: full_log,
        log_note,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_global_index_maps_to_its_shard_and_array_index() {
        let jobs = [
            RunJob {
                stage: "a".into(),
                job_id: "A0".into(),
                first_child: 0,
                children: 3,
                ..Default::default()
            },
            RunJob {
                stage: "a".into(),
                job_id: "A1".into(),
                first_child: 3,
                children: 1,
                ..Default::default()
            },
            RunJob {
                stage: "aggregation".into(),
                job_id: "G".into(),
                first_child: 0,
                children: 1,
                ..Default::default()
            },
        ];
        assert_eq!(child_job(&jobs, "a", 2).as_deref(), Some("A0:2"));
        assert_eq!(child_job(&jobs, "a", 3).as_deref(), Some("A1"), "a one-child shard is a plain job");
        assert_eq!(child_job(&jobs, "aggregation", 0).as_deref(), Some("G"));
        assert_eq!(child_job(&jobs, "a", 4), None);
        assert_eq!(child_job(&jobs, "b", 0), None);
    }
}
