//! What the status page and the JSON API show: pipelines, runs, alerts, and
//! the errors met reading them; one run is [`super::run_view`], a child
//! [`super::child_view`], the history grid [`super::history`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::source::Source;
use crate::{
    error::PortError,
    run::{RunRecord, RunState, RunStore},
    spec::{OverlapPolicy, PipelineSpec, Planner},
};

/// Why a page cannot show what the store holds (shown on the page, never as "No runs yet").
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The run records cannot be read.
    #[error("cannot read the run records in table {table}: {source}")]
    Store {
        table: String,
        #[source]
        source: PortError,
    },
    /// The run's jobs cannot be read from Batch.
    #[error("cannot read the jobs of run {run_id} from Batch: {source}")]
    Batch {
        run_id: String,
        #[source]
        source: PortError,
    },
}

/// Runs listed, and the records that could not be read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunsListing {
    pub runs: Vec<RunRow>,
    /// One line per table or record that could not be read.
    pub errors: Vec<String>,
}

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
    /// The S3-put trigger's watcher (embedded serve only): its polls so far
    /// and the objects it waits on to settle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_watch: Option<S3WatchView>,
    pub webhook: bool,
}

/// What the S3-put trigger's watcher has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct S3WatchView {
    /// Listings of the bucket/prefix so far.
    pub polls: u64,
    /// Keys seen changing or too recent: started once unchanged for `settle_seconds`.
    pub settling: Vec<String>,
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

/// An alert published on a pipeline's alerts topic.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub pipeline: String,
    pub published_at: i64,
    pub subject: Option<String>,
    pub run_id: Option<String>,
    pub body: serde_json::Value,
}

/// The served pipelines, `next` giving a cron pipeline's next slot.
pub fn pipelines<'a>(
    specs: impl Iterator<Item = &'a PipelineSpec>,
    next: impl Fn(&str) -> Option<DateTime<Utc>>,
) -> Vec<PipelineView> {
    specs
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
                next: next(&s.name),
            }),
            s3: s.triggers.s3.as_ref().map(|t| format!("s3://{}/{}*{}", t.bucket, t.prefix, t.suffix)),
            s3_watch: None,
            webhook: s.triggers.webhook.as_ref().is_some_and(|w| w.enabled),
        })
        .collect()
}

/// Runs of the served pipelines (of `pipeline` only, if given), newest first,
/// with what could not be read.
pub async fn runs(source: &Source, pipeline: Option<&str>, limit: usize) -> RunsListing {
    let mut out = RunsListing::default();
    for table in source.tables() {
        let store = RunStore::new(source.table.as_ref(), table);
        let ids = match store.list_runs(pipeline).await {
            Ok(ids) => ids,
            Err(source) => {
                out.errors.push(ViewError::Store { table: table.to_owned(), source }.to_string());
                continue;
            }
        };
        for id in ids.into_iter().take(limit * 4) {
            match store.get(&id).await {
                Ok(Some(rec)) if source.spec(&rec.pipeline).is_some() => out.runs.push(RunRow::from(&rec)),
                Ok(_) => {}
                Err(e) => out.errors.push(format!("run {id} in table {table} cannot be read: {e}")),
            }
        }
    }
    out.runs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.run_id.cmp(&b.run_id)));
    out.runs.truncate(limit);
    out
}

/// A run record by id, whichever served pipeline it belongs to.
pub async fn find_run(source: &Source, run_id: &str) -> Result<Option<RunRecord>, ViewError> {
    for table in source.tables() {
        let store = RunStore::new(source.table.as_ref(), table);
        match store.get(run_id).await {
            Ok(Some(rec)) if source.spec(&rec.pipeline).is_some() => return Ok(Some(rec)),
            Ok(_) => {}
            Err(source) => return Err(ViewError::Store { table: table.to_owned(), source }),
        }
    }
    Ok(None)
}

/// Alerts of the served pipelines, newest first (none where the topic keeps no messages: SNS).
pub async fn alerts(source: &Source, limit: usize) -> Vec<AlertView> {
    let Some(bus) = &source.alerts else { return Vec::new() };
    let topics: std::collections::BTreeSet<&str> = source.specs().map(|s| s.alerts.topic.as_str()).collect();
    let mut out = Vec::new();
    for topic in topics {
        for m in bus.messages(topic).await.unwrap_or_default() {
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
