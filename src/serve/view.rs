//! What the status page and the JSON API show: pipelines, runs, one run's
//! stages as grids of children, failed children with their log tails, alerts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::app::App;
use crate::{
    batch::{JobQuery, JobStatus},
    graph::{self, Role},
    run::{RunRecord, RunState, RunStore},
    spec::{OverlapPolicy, Planner},
};

/// Failed children shown with their reason and log tail.
const MAX_FAILED_SHOWN: usize = 5;
/// Log lines of a failed child.
const LOG_TAIL_LINES: usize = 20;
/// Cell state of a child whose job is not submitted yet.
pub const NOT_SUBMITTED: &str = "NOT_SUBMITTED";

#[derive(Debug, Clone, Serialize)]
pub struct PipelineView {
    pub name: String,
    pub description: String,
    pub manual: bool,
    /// The planner reads an input (`lines`, `objects`): the Run button asks for one.
    pub needs_input: bool,
    pub params: BTreeMap<String, String>,
    pub cron: Option<CronView>,
    pub s3: Option<String>,
    pub webhook: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CronView {
    pub schedule: String,
    pub timezone: String,
    pub overlap: OverlapPolicy,
    pub catch_up: crate::spec::CatchUpPolicy,
    pub next: Option<DateTime<Utc>>,
}

/// One row of the runs list.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub run_id: String,
    pub pipeline: String,
    pub state: RunState,
    pub source: crate::run::TriggerSource,
    pub key: String,
    pub input: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub children: Option<u64>,
}

impl From<&RunRecord> for RunRow {
    fn from(r: &RunRecord) -> Self {
        RunRow {
            run_id: r.run_id.clone(),
            pipeline: r.pipeline.clone(),
            state: r.state,
            source: r.trigger.source,
            key: r.trigger.idempotency_key.clone(),
            input: r.trigger.input.as_ref().map(ToString::to_string),
            created_at: r.created_at,
            updated_at: r.updated_at,
            children: r.sizing.map(|s| s.children),
        }
    }
}

/// One stage (or the aggregation / cleanup): its children's states by global index.
#[derive(Debug, Clone, Serialize)]
pub struct StageView {
    pub name: String,
    /// Child states (`SUCCEEDED`, `RUNNING`, …, or `NOT_SUBMITTED`), by global index.
    pub children: Vec<String>,
    pub counts: BTreeMap<String, u64>,
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
    /// Children that failed themselves (not by a dependency's cascade), the first few.
    pub failed_children: Vec<FailedChild>,
    pub failed_count: u64,
    pub failure: Option<crate::run::Failure>,
    pub params: BTreeMap<String, String>,
}

/// An alert published on a pipeline's alerts topic.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub pipeline: String,
    pub published_at: i64,
    pub subject: Option<String>,
    pub run_id: Option<String>,
    pub body: serde_json::Value,
}

pub fn pipelines(app: &App) -> Vec<PipelineView> {
    app.specs()
        .map(|s| PipelineView {
            name: s.name.clone(),
            description: s.description.clone(),
            manual: s.triggers.manual,
            needs_input: matches!(s.planner, Planner::Lines { .. } | Planner::Objects),
            params: s.params.clone(),
            cron: s.triggers.cron.as_ref().map(|c| CronView {
                schedule: c.schedule.clone(),
                timezone: c.timezone.clone(),
                overlap: c.overlap,
                catch_up: c.catch_up,
                next: app.next_slot(&s.name),
            }),
            s3: s.triggers.s3.as_ref().map(|t| format!("s3://{}/{}*{}", t.bucket, t.prefix, t.suffix)),
            webhook: s.triggers.webhook.as_ref().is_some_and(|w| w.enabled),
        })
        .collect()
}

/// Runs of the served pipelines (of `pipeline` only, if given), newest first.
pub async fn runs(app: &App, pipeline: Option<&str>, limit: usize) -> Vec<RunRow> {
    let mut tables: Vec<&str> = app.specs().map(|s| s.storage.table.as_str()).collect();
    tables.sort_unstable();
    tables.dedup();
    let mut rows = Vec::new();
    for table in tables {
        let store = RunStore::new(&app.service.backend.table, table);
        let ids = store.list_runs(pipeline).await.unwrap_or_default();
        for id in ids {
            if rows.len() >= limit * 4 {
                break;
            }
            if let Ok(Some(rec)) = store.get(&id).await {
                if app.spec(&rec.pipeline).is_some() {
                    rows.push(RunRow::from(&rec));
                }
            }
        }
    }
    rows.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.run_id.cmp(&b.run_id)));
    rows.truncate(limit);
    rows
}

/// One run with its grids; `None` if no served pipeline has it.
pub async fn run(app: &App, run_id: &str) -> Option<RunView> {
    let rec = app.find_run(run_id).await?;
    let spec = app.spec(&rec.pipeline)?;
    let batch = &app.service.backend.ports.batch;
    let mut stages: Vec<StageView> = spec
        .stages
        .iter()
        .map(|s| StageView {
            name: s.name.clone(),
            children: vec![NOT_SUBMITTED.to_owned(); rec.sizing.map_or(0, |z| z.children) as usize],
            counts: BTreeMap::new(),
        })
        .collect();
    let mut finish = Vec::new();
    let mut failed: Vec<(String, u64, String)> = Vec::new();
    let graph = rec.sizing.and_then(|s| graph::build(spec, &rec.run_id, &s).ok());
    for node in graph.iter().flat_map(|g| g.nodes.iter()) {
        let job_id = rec.jobs.get(&node.name);
        match &node.role {
            Role::Stage { stage, first_child, children, .. } => {
                let (Some(view), Some(id)) = (stages.get_mut(*stage), job_id) else { continue };
                let cells = child_states(batch.as_ref(), id, node.array_size.is_some(), *children).await;
                for (i, cell) in cells.into_iter().enumerate() {
                    let g = first_child + i as u64;
                    if let Some(slot) = view.children.get_mut(g as usize) {
                        if cell.ran && cell.state == JobStatus::Failed.as_str() {
                            failed.push((view.name.clone(), g, cell.job_id));
                        }
                        *slot = cell.state;
                    }
                }
            }
            Role::Aggregation | Role::Cleanup => {
                let mut name = if node.role == Role::Aggregation { "aggregation" } else { "cleanup" };
                let mut job_id = job_id;
                if node.role == Role::Cleanup {
                    // After a failure the planned cleanup fails by cascade; this one runs instead.
                    let after = graph::job_name(&rec.pipeline, &rec.run_id, "cleanup-onfailure");
                    if let Some(id) = rec.jobs.get(&after) {
                        (name, job_id) = ("cleanup after failure", Some(id));
                    }
                }
                let cell = match job_id {
                    Some(id) => child_states(batch.as_ref(), id, false, 1).await.pop(),
                    None => None,
                };
                let cell =
                    cell.unwrap_or(Cell { state: NOT_SUBMITTED.into(), job_id: String::new(), ran: false });
                if cell.ran && cell.state == JobStatus::Failed.as_str() {
                    failed.push((name.into(), 0, cell.job_id.clone()));
                }
                finish.push(StageView {
                    name: name.into(),
                    children: vec![cell.state],
                    counts: BTreeMap::new(),
                });
            }
            Role::Barrier { .. } => {}
        }
    }
    for v in stages.iter_mut().chain(finish.iter_mut()) {
        for c in &v.children {
            *v.counts.entry(c.clone()).or_default() += 1;
        }
    }
    let failed_count = failed.len() as u64;
    let mut failed_children = Vec::new();
    for (stage, index, job_id) in failed.into_iter().take(MAX_FAILED_SHOWN) {
        failed_children.push(failed_child(app, stage, index, job_id).await);
    }
    Some(RunView {
        row: RunRow::from(&rec),
        output: rec.output.to_string(),
        items: rec.summary.as_ref().map(|s| s.items),
        failed_items: rec.summary.as_ref().map(|s| s.failed),
        stages,
        finish,
        failed_children,
        failed_count,
        failure: rec.failure.clone(),
        params: rec.trigger.params.clone(),
    })
}

/// One child as the grid sees it.
#[derive(Debug, Clone)]
struct Cell {
    state: String,
    job_id: String,
    /// It started (a failure of its own, not a dependency's cascade).
    ran: bool,
}

/// Each child of an array job, by array index; or the one plain job.
async fn child_states(batch: &dyn crate::batch::Batch, job_id: &str, array: bool, n: u64) -> Vec<Cell> {
    let mut out =
        vec![Cell { state: NOT_SUBMITTED.to_owned(), job_id: String::new(), ran: false }; n as usize];
    if array {
        let q = JobQuery::ArrayChildren { array_job_id: job_id.to_owned(), status: None };
        for c in batch.list_jobs(&q).await.unwrap_or_default() {
            let Some(i) = c.array_properties.as_ref().and_then(|a| a.index) else { continue };
            if let Some(slot) = out.get_mut(i as usize) {
                *slot = Cell {
                    state: c.status.as_str().to_owned(),
                    ran: c.started_at.is_some() || c.exit_code.is_some(),
                    job_id: c.job_id,
                };
            }
        }
    } else if let Some(d) = batch.describe_jobs(&[job_id.to_owned()]).await.unwrap_or_default().pop() {
        if let Some(slot) = out.first_mut() {
            *slot =
                Cell { state: d.status.as_str().to_owned(), ran: !d.attempts.is_empty(), job_id: d.job_id };
        }
    }
    out
}

async fn failed_child(app: &App, stage: String, index: u64, job_id: String) -> FailedChild {
    let ports = &app.service.backend.ports;
    let detail =
        ports.batch.describe_jobs(std::slice::from_ref(&job_id)).await.ok().and_then(|mut d| d.pop());
    let last = detail.as_ref().and_then(|d| d.attempts.last());
    let log_tail = match last.and_then(|a| a.log_stream_name.as_deref()) {
        Some(stream) => ports.logs.tail(stream, LOG_TAIL_LINES).await.unwrap_or_default(),
        None => String::new(),
    };
    FailedChild {
        stage,
        index,
        exit_code: last.and_then(|a| a.exit_code),
        status_reason: detail
            .as_ref()
            .and_then(|d| d.status_reason.clone())
            .or_else(|| last.and_then(|a| a.status_reason.clone())),
        job_id,
        log_tail,
    }
}

/// Alerts of the served pipelines, newest first.
pub async fn alerts(app: &App, limit: usize) -> Vec<AlertView> {
    let topics: std::collections::BTreeSet<&str> = app.specs().map(|s| s.alerts.topic.as_str()).collect();
    let mut out = Vec::new();
    for topic in topics {
        for m in app.service.backend.bus.messages(topic).await.unwrap_or_default() {
            out.push(AlertView {
                pipeline: m.message.attributes.get("pipeline").cloned().unwrap_or_default(),
                published_at: m.published_at,
                subject: m.message.subject.clone(),
                run_id: m.message.attributes.get("run_id").cloned(),
                body: serde_json::from_str(&m.message.body)
                    .unwrap_or_else(|_| serde_json::Value::String(m.message.body.clone())),
            });
        }
    }
    out.sort_by_key(|a| std::cmp::Reverse(a.published_at));
    out.truncate(limit);
    out
}
