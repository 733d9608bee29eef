//! What a run's page and `/api/runs/{id}` show: each stage's children as a
//! grid and as spans on a timeline, the stages' timings, the failed children
//! (paged) with their log tails, the alert.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    source::Source,
    view::{RunRow, ViewError},
};
use crate::{
    batch::JobStatus,
    run::{
        record::now_ms,
        timings::{self, ChildTime, RunJob, StageTimings},
        RunRecord,
    },
};

/// Failed children shown on the run's page; the rest are on `/runs/{id}/failed` pages.
pub const FAILED_ON_RUN_PAGE: usize = 5;
/// Failed children per page of `/runs/{id}/failed`.
pub const FAILED_PER_PAGE: usize = 10;
/// Log lines of a failed child.
const LOG_TAIL_LINES: usize = 20;
/// Cell state of a child whose job is not submitted yet.
pub const NOT_SUBMITTED: &str = "NOT_SUBMITTED";

/// When one child ran (for the timeline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Global child index.
    pub index: u64,
    pub status: JobStatus,
    pub started_at: i64,
    /// `None` while it runs.
    pub stopped_at: Option<i64>,
}

/// One stage (or the aggregation / cleanup): its children's states by global index.
#[derive(Debug, Clone, Serialize)]
pub struct StageView {
    pub name: String,
    /// Child states (`SUCCEEDED`, `RUNNING`, …, or `NOT_SUBMITTED`), by global index.
    pub children: Vec<String>,
    pub counts: BTreeMap<String, u64>,
    /// The children that started, for the timeline.
    #[serde(skip)]
    pub spans: Vec<Span>,
}

impl StageView {
    fn new(name: &str, children: u64) -> StageView {
        StageView {
            name: name.to_owned(),
            children: vec![NOT_SUBMITTED.to_owned(); children as usize],
            counts: BTreeMap::new(),
            spans: Vec::new(),
        }
    }
}

/// A child that failed itself (not by a dependency's cascade).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedRef {
    pub stage: String,
    pub index: u64,
    pub job_id: String,
}

/// A failed child, with why.
#[derive(Debug, Clone, Serialize)]
pub struct FailedChild {
    pub stage: String,
    pub index: u64,
    pub job_id: String,
    pub exit_code: Option<i32>,
    pub status_reason: Option<String>,
    pub log_tail: String,
}

/// One run, in full.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    #[serde(flatten)]
    pub row: RunRow,
    pub output: String,
    pub items: Option<u64>,
    pub failed_items: Option<u64>,
    pub stages: Vec<StageView>,
    /// The aggregation and cleanup jobs.
    pub finish: Vec<StageView>,
    /// Children that failed themselves, the first few with their log tails.
    pub failed_children: Vec<FailedChild>,
    pub failed_count: u64,
    /// Every child that failed itself (the pages of `/runs/{id}/failed`).
    #[serde(skip)]
    pub failed: Vec<FailedRef>,
    pub failure: Option<crate::run::Failure>,
    pub params: BTreeMap<String, String>,
    /// Per stage: duration, queue wait, slowest children.
    pub timings: Vec<StageTimings>,
    /// When this view was made (ms), the timeline's right edge while the run goes on.
    pub now: i64,
    /// The attempt shown (from 1): its jobs, over what earlier attempts ran
    /// for the children it did not rerun.
    pub attempt: u32,
    /// The run's attempts so far (its current one).
    pub attempts: u32,
    /// Per attempt shown, the children it reran per stage (empty for attempt 1).
    pub reruns: Vec<u64>,
}

/// One run with its grids, as of `attempt` (default: its current one);
/// `Ok(None)` if no served pipeline has it.
pub async fn run(source: &Source, run_id: &str, attempt: Option<u32>) -> Result<Option<RunView>, ViewError> {
    let Some(rec) = super::view::find_run(source, run_id).await? else { return Ok(None) };
    let attempt = attempt.unwrap_or(rec.attempt()).clamp(1, rec.attempt());
    let jobs = timings::jobs_through(&rec, attempt);
    let times = timings::collect(source.batch.as_ref(), &jobs)
        .await
        .map_err(|source| ViewError::Batch { run_id: rec.run_id.clone(), source })?;
    let now = now_ms();
    let mut view = assemble(&rec, &jobs, &times, now, attempt);
    for f in view.failed.iter().take(FAILED_ON_RUN_PAGE) {
        view.failed_children.push(failed_child(source, f).await);
    }
    Ok(Some(view))
}

/// The grids, spans and failed children of a run as of `attempt` from the
/// jobs of its attempts up to that one, oldest first, and their child times
/// (pure): a child a later attempt reran shows how it ran there.
pub fn assemble(
    rec: &RunRecord,
    jobs: &[RunJob],
    times: &BTreeMap<String, Vec<ChildTime>>,
    now: i64,
    attempt: u32,
) -> RunView {
    let children = rec.sizing.map_or(0, |z| z.children);
    let mut stages: Vec<StageView> = rec.stages.iter().map(|s| StageView::new(s, children)).collect();
    let mut finish = Vec::new();
    if rec.sizing.is_some() {
        finish.push(StageView::new("aggregation", 1));
        finish.push(StageView::new("cleanup", 1));
    }
    let mut failed: Vec<FailedRef> = Vec::new();
    for job in jobs {
        // The aggregation and cleanup rows are the shown attempt's own.
        if job.attempt != attempt && !stages.iter().any(|s| s.name == job.stage) {
            continue;
        }
        let view = match stages.iter().position(|s| s.name == job.stage) {
            Some(i) => &mut stages[i],
            None => {
                // The cleanup after a failure takes the planned cleanup's row (that one fails by cascade).
                let row = if job.stage == "aggregation" { 0 } else { 1 };
                match finish.get_mut(row) {
                    Some(v) => {
                        v.name.clone_from(&job.stage);
                        v
                    }
                    None => continue,
                }
            }
        };
        for c in times.get(&job.job_id).into_iter().flatten() {
            let g = job.global(u64::from(c.index));
            let Some(slot) = view.children.get_mut(g as usize) else { continue };
            *slot = c.status.as_str().to_owned();
            if job.attempt > 1 {
                failed.retain(|f| !(f.index == g && f.stage == job.stage));
                view.spans.retain(|s| s.index != g);
            }
            if c.ran() && c.status == JobStatus::Failed {
                failed.push(FailedRef { stage: job.stage.clone(), index: g, job_id: c.job_id.clone() });
            }
            if let Some(started_at) = c.started_at {
                view.spans.push(Span { index: g, status: c.status, started_at, stopped_at: c.stopped_at });
            }
        }
    }
    // Timings are the shown attempt's own.
    let shown: Vec<RunJob> = jobs.iter().filter(|j| j.attempt == attempt).cloned().collect();
    for v in stages.iter_mut().chain(finish.iter_mut()) {
        for c in &v.children {
            *v.counts.entry(c.clone()).or_default() += 1;
        }
    }
    RunView {
        row: RunRow::from(rec),
        output: rec.output.to_string(),
        items: rec.summary.as_ref().map(|s| s.items),
        failed_items: rec.summary.as_ref().map(|s| s.failed),
        stages,
        finish,
        failed_children: Vec::new(),
        failed_count: failed.len() as u64,
        failed,
        failure: rec.failure.clone(),
        params: rec.trigger.params.clone(),
        timings: timings::stage_timings(&shown, times, now),
        now,
        attempt,
        attempts: rec.attempt(),
        reruns: rec
            .retry
            .iter()
            .chain(&rec.past_retries)
            .find(|p| p.attempt == attempt)
            .map(|p| p.reruns.clone())
            .unwrap_or_default(),
    }
}

/// Page `page` (from 0) of a run's failed children, with their log tails.
pub async fn failed_page(source: &Source, view: &RunView, page: usize) -> Vec<FailedChild> {
    let mut out = Vec::new();
    for f in view.failed.iter().skip(page * FAILED_PER_PAGE).take(FAILED_PER_PAGE) {
        out.push(failed_child(source, f).await);
    }
    out
}

async fn failed_child(source: &Source, f: &FailedRef) -> FailedChild {
    let detail =
        source.batch.describe_jobs(std::slice::from_ref(&f.job_id)).await.ok().and_then(|mut d| d.pop());
    let last = detail.as_ref().and_then(|d| d.attempts.last());
    let log_tail = match (&detail, last.and_then(|a| a.log_stream_name.as_deref())) {
        (Some(d), Some(stream)) => {
            source.logs.tail(&d.job_definition, stream, LOG_TAIL_LINES).await.unwrap_or_default()
        }
        _ => String::new(),
    };
    FailedChild {
        stage: f.stage.clone(),
        index: f.index,
        exit_code: last.and_then(|a| a.exit_code),
        status_reason: detail
            .as_ref()
            .and_then(|d| d.status_reason.clone())
            .or_else(|| last.and_then(|a| a.status_reason.clone())),
        job_id: f.job_id.clone(),
        log_tail,
    }
}
