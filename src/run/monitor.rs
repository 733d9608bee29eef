//! The monitor: job state changes → one alert per failed run, cleanup that
//! runs even on failure, and the run's final state.
//!
//! On AWS it is the alert Lambda behind an EventBridge rule; locally it reads
//! the engine's event stream. Events are at-least-once and may be missed by a
//! process that died, so [`Monitor::reconcile`] rebuilds the same decisions
//! from the jobs' states; [`Monitor::on_event`] is the fast path.
//!
//! It relies only on what the Batch API documents ([`upstream`]): a job
//! failed "by cascade" (and raises no alert of its own) when it has no
//! attempts and a dependency of it is FAILED; a planned cleanup that FAILED
//! without attempts never ran, so the failure cleanup replaces it, and starts
//! once every job *and every array child*
//! of the run has ended — an array parent's FAILED alone does not say that
//! its children have stopped, so the cleanup waits for them (the run record
//! keeps `times.cleanup_waiting` meanwhile, and each later terminal event or
//! reconciliation checks again; on AWS, where not every child's success is
//! delivered, the reconcile tick does: [`Monitor::reconcile_waiting`]).

use std::collections::BTreeMap;

use serde_json::json;
use tracing::{info, warn};

mod attempts;
mod cleanup;
mod upstream;

use self::upstream::Failed;
use super::{
    cancel,
    record::{now_ms, Failure, RunRecord, RunState, RunStore},
    retry::job_prefix,
    submit::for_backend,
    Ports, RunError,
};
use crate::{
    batch::{JobDetail, JobQuery, JobStateChange, JobStatus},
    graph::{self, Role},
    spec::PipelineSpec,
    topic::Message,
};

/// Tag keys batchfan puts on every job.
pub const TAG_RUN: &str = "batchfan:run";
pub const TAG_PIPELINE: &str = "batchfan:pipeline";
pub const TAG_ROLE: &str = "batchfan:role";
pub const TAG_STAGE: &str = "batchfan:stage";
/// Role tag of the cleanup submitted after a failure.
pub const ROLE_FAILURE_CLEANUP: &str = "failure-cleanup";

/// Key in the run record's `times` while the failure cleanup waits for the run's jobs to end.
const CLEANUP_WAITING: &str = "cleanup_waiting";

/// Lines of log in an alert.
const LOG_TAIL_LINES: usize = 20;

/// Watches runs of the given pipelines.
pub struct Monitor {
    ports: Ports,
    specs: BTreeMap<String, PipelineSpec>,
    /// Woken each time this monitor marks a run terminal.
    finished: tokio::sync::Notify,
}

/// A failed job as the alerter sees it (from an event or a describe).
struct FailedJob<'a> {
    job_id: &'a str,
    job_name: &'a str,
    status_reason: Option<&'a str>,
    array_index: Option<u32>,
    exit_code: Option<i32>,
    log_stream: Option<&'a str>,
    stage: String,
}

impl Monitor {
    pub fn new(ports: Ports, specs: impl IntoIterator<Item = PipelineSpec>) -> Self {
        Monitor {
            ports,
            specs: specs.into_iter().map(|s| (s.name.clone(), s)).collect(),
            finished: tokio::sync::Notify::new(),
        }
    }

    /// Notified (`notify_waiters`) each time this monitor marks a run
    /// terminal: whoever waits for a run reads its record again at once
    /// instead of at its next poll.
    pub fn finished(&self) -> &tokio::sync::Notify {
        &self.finished
    }

    fn spec(&self, pipeline: &str) -> Option<&PipelineSpec> {
        self.specs.get(pipeline)
    }

    /// Handles one job state change.
    pub async fn on_event(&self, ev: &JobStateChange) -> Result<(), RunError> {
        let (Some(run_id), Some(pipeline)) = (ev.tags.get(TAG_RUN), ev.tags.get(TAG_PIPELINE)) else {
            return Ok(());
        };
        let Some(spec) = self.spec(pipeline) else { return Ok(()) };
        let role = ev.tags.get(TAG_ROLE).map(String::as_str).unwrap_or("");
        let is_parent = ev.array_properties.as_ref().is_some_and(|a| a.index.is_none() && a.size.is_some());
        if ev.status.is_terminal() && self.of_earlier_attempt(spec, run_id, ev).await? {
            return Ok(());
        }
        match (ev.status, role) {
            (JobStatus::Failed, ROLE_FAILURE_CLEANUP) | (JobStatus::Succeeded, ROLE_FAILURE_CLEANUP) => {
                self.finish(spec, run_id, RunState::Failed).await?;
            }
            (JobStatus::Succeeded, "cleanup") => {
                let state = self.store(spec).get(run_id).await?.map_or(RunState::Succeeded, |r| {
                    if r.failure.is_some() {
                        RunState::Failed
                    } else {
                        RunState::Succeeded
                    }
                });
                self.finish(spec, run_id, state).await?;
            }
            (JobStatus::Failed, "cleanup") => {
                if ev.attempts.is_empty() {
                    // It never ran (a dependency failed, or it was cancelled): run
                    // the failure cleanup once everything upstream has ended.
                    self.cleanup_after_failure(spec, run_id).await?;
                } else {
                    self.alert(spec, run_id, failed_from_event(ev, role)).await?;
                    self.finish(spec, run_id, RunState::Failed).await?;
                }
            }
            (status, _) if status.is_terminal() => {
                if status == JobStatus::Failed && !is_parent {
                    self.alert_unless_cascade(spec, run_id, ev, role).await?;
                }
                self.resume_waiting_cleanup(spec, run_id).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Alerts a failed job unless the run already has its failure or the job
    /// only failed because a dependency did (its root failure alerts).
    async fn alert_unless_cascade(
        &self,
        spec: &PipelineSpec,
        run_id: &str,
        ev: &JobStateChange,
        role: &str,
    ) -> Result<(), RunError> {
        let Some(record) = self.store(spec).get(run_id).await? else { return Ok(()) };
        if record.failure.is_some() {
            return self.publish_pending_alert(spec, &record).await;
        }
        if record.cancel.is_some() || self.is_cascade(failed_job(ev)).await? {
            return Ok(());
        }
        self.alert(spec, run_id, failed_from_event(ev, role)).await
    }

    pub(super) fn store<'s>(&'s self, spec: &'s PipelineSpec) -> RunStore<'s> {
        RunStore::new(self.ports.table.as_ref(), &spec.storage.table)
    }

    /// Records the run's first failure and publishes its one alert.
    async fn alert(&self, spec: &PipelineSpec, run_id: &str, job: FailedJob<'_>) -> Result<(), RunError> {
        let store = self.store(spec);
        let Some(record) = store.get(run_id).await? else { return Ok(()) };
        if record.failure.is_some() {
            return self.publish_pending_alert(spec, &record).await;
        }
        if record.cancel.is_some() {
            // Cancelled: the jobs it stopped are no failure; the cancelled notice says it.
            return Ok(());
        }
        let log_tail = match job.log_stream {
            Some(stream) => self.ports.logs.tail(stream, LOG_TAIL_LINES).await.unwrap_or_default(),
            None => String::new(),
        };
        let index = match self.retry_index(spec, &record, job.job_name, job.array_index).await? {
            Some(i) => Some(i),
            None => job.array_index.map(|i| child_offset(spec, &record, job.job_name) + u64::from(i)),
        };
        let failure = Failure {
            job_name: job.job_name.to_owned(),
            job_id: job.job_id.to_owned(),
            stage: job.stage,
            index,
            exit_code: job.exit_code,
            status_reason: job.status_reason.map(str::to_owned),
            log_tail,
        };
        let record = store
            .update(run_id, |r| {
                if r.failure.is_some() {
                    return false;
                }
                r.failure = Some(failure.clone());
                true
            })
            .await?;
        self.publish_pending_alert(spec, &record).await
    }

    /// Publishes the alert of a run whose failure is recorded but not yet announced.
    async fn publish_pending_alert(&self, spec: &PipelineSpec, record: &RunRecord) -> Result<(), RunError> {
        let (Some(f), false) = (&record.failure, record.alerted) else { return Ok(()) };
        let at = f.at();
        let exit = f.exit();
        let mut subject =
            format!("batchfan {}: run {} failed at {at} ({exit})", record.pipeline, record.run_id);
        subject.truncate(100);
        let body = json!({
            "pipeline": record.pipeline, "run_id": record.run_id, "stage": f.stage, "index": f.index,
            "exit_code": f.exit_code, "status_reason": f.status_reason, "job_name": f.job_name,
            "job_id": f.job_id, "log_tail": f.log_tail,
            "logs_command": f.logs_command(&record.run_id, self.ports.kind, &spec.storage.table),
        });
        let msg = Message::new(body.to_string())
            .with_subject(subject)
            .with_attribute("kind", "failure")
            .with_attribute("pipeline", record.pipeline.as_str())
            .with_attribute("run_id", record.run_id.as_str())
            .with_attribute("dedup_id", format!("alert#{}#{}", record.run_id, record.attempt()));
        self.ports.topic.publish(&spec.alerts.topic, msg).await?;
        warn!(run_id = %record.run_id, at = %at, exit = %exit, "run failed: alert published");
        self.store(spec)
            .update(&record.run_id, |r| {
                let first = !r.alerted;
                r.alerted = true;
                first
            })
            .await?;
        Ok(())
    }

    /// Marks the run terminal (once).
    /// A run failed after a cancel was requested ends CANCELLED, with its notice.
    async fn finish(&self, spec: &PipelineSpec, run_id: &str, state: RunState) -> Result<(), RunError> {
        let record = self
            .store(spec)
            .update(run_id, |r| {
                if r.state.is_terminal() {
                    return false;
                }
                r.state =
                    if state == RunState::Failed && r.cancel.is_some() { RunState::Cancelled } else { state };
                r.times.insert("finished".into(), now_ms());
                true
            })
            .await?;
        info!(run_id, state = %record.state, "run finished");
        self.finished.notify_waiters();
        cancel::publish_notice(&self.ports, spec, &record).await
    }

    /// Brings a run's record in line with its jobs: alerts a failure whose
    /// event was missed, submits a missing failure cleanup, sets the final state.
    pub async fn reconcile(&self, pipeline: &str, run_id: &str) -> Result<Option<RunRecord>, RunError> {
        let Some(spec) = self.spec(pipeline) else { return Ok(None) };
        let store = self.store(spec);
        let Some(record) = store.get(run_id).await? else { return Ok(None) };
        cancel::publish_notice(&self.ports, spec, &record).await?;
        if record.state != RunState::Submitted {
            return Ok(Some(record));
        }
        if record.cancel.is_some() {
            cancel::apply(&self.ports, spec, run_id).await?;
        }
        let pattern = format!("{}*", job_prefix(&spec.name, run_id, record.attempt()));
        let jobs =
            self.ports.batch.list_jobs(&JobQuery::ByName { queue: spec.job_queue.clone(), pattern }).await?;
        let ids: Vec<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
        let details = self.ports.batch.describe_jobs(&ids).await?;
        if record.failure.is_none() {
            if let Some(root) = self.find_root_failure(&details).await? {
                self.alert_detail(spec, run_id, &root).await?;
            }
        } else {
            self.publish_pending_alert(spec, &record).await?;
        }
        for d in &details {
            let role = d.tags.get(TAG_ROLE).map(String::as_str).unwrap_or("");
            let ev = event_of(d);
            if d.status.is_terminal() && matches!(role, "cleanup" | ROLE_FAILURE_CLEANUP) {
                self.on_event(&ev).await?;
            }
        }
        self.resume_waiting_cleanup(spec, run_id).await?;
        Ok(store.get(run_id).await?)
    }

    /// The first failed job that is a root failure (not a dependency cascade).
    async fn find_root_failure(&self, details: &[JobDetail]) -> Result<Option<JobDetail>, RunError> {
        for d in details.iter().filter(|d| d.status == JobStatus::Failed) {
            let is_parent = d.array_properties.as_ref().is_some_and(|a| a.size.is_some());
            let candidates = if is_parent {
                let q = JobQuery::ArrayChildren {
                    array_job_id: d.job_id.clone(),
                    status: Some(JobStatus::Failed),
                };
                let children: Vec<String> =
                    self.ports.batch.list_jobs(&q).await?.into_iter().map(|c| c.job_id).collect();
                self.ports.batch.describe_jobs(&children).await?
            } else {
                vec![d.clone()]
            };
            for c in candidates {
                if !self.is_cascade(failed_detail(&c)).await? {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    async fn alert_detail(&self, spec: &PipelineSpec, run_id: &str, d: &JobDetail) -> Result<(), RunError> {
        let ev = event_of(d);
        let role = d.tags.get(TAG_ROLE).map(String::as_str).unwrap_or("");
        self.alert(spec, run_id, failed_from_event(&ev, role)).await
    }
}

/// The cascade check's view of an event.
fn failed_job(ev: &JobStateChange) -> Failed<'_> {
    Failed {
        job_id: &ev.job_id,
        index: ev.array_properties.as_ref().and_then(|a| a.index),
        depends_on: &ev.depends_on,
        ran: !ev.attempts.is_empty(),
    }
}

/// The cascade check's view of a describe.
fn failed_detail(d: &JobDetail) -> Failed<'_> {
    Failed {
        job_id: &d.job_id,
        index: d.array_properties.as_ref().and_then(|a| a.index),
        depends_on: &d.depends_on,
        ran: !d.attempts.is_empty(),
    }
}

fn failed_from_event<'a>(ev: &'a JobStateChange, role: &str) -> FailedJob<'a> {
    let last = ev.attempts.last();
    FailedJob {
        job_id: &ev.job_id,
        job_name: &ev.job_name,
        status_reason: ev.status_reason.as_deref(),
        array_index: ev.array_properties.as_ref().and_then(|a| a.index),
        exit_code: ev.container.exit_code.or_else(|| last.and_then(|a| a.exit_code)),
        log_stream: last
            .and_then(|a| a.log_stream_name.as_deref())
            .or(ev.container.log_stream_name.as_deref()),
        stage: match role {
            "stage" => ev.tags.get(TAG_STAGE).cloned().unwrap_or_else(|| "stage".into()),
            "" => "unknown".into(),
            other => other.to_owned(),
        },
    }
}

/// The event a describe implies (for reconciliation, and for tests that
/// deliver what AWS would send).
pub fn event_of(d: &JobDetail) -> JobStateChange {
    let last = d.attempts.last();
    JobStateChange {
        job_arn: d.job_id.clone(),
        job_name: d.job_name.clone(),
        job_id: d.job_id.clone(),
        job_queue: d.job_queue.clone(),
        status: d.status,
        status_reason: d.status_reason.clone(),
        attempts: d.attempts.clone(),
        created_at: Some(d.created_at),
        started_at: d.started_at,
        stopped_at: d.stopped_at,
        retry_strategy: Some(d.retry_strategy.clone()),
        depends_on: d.depends_on.clone(),
        job_definition: d.job_definition.clone(),
        container: crate::batch::event::ContainerDetail {
            image: Some(d.container.image.clone()),
            command: d.container.command.clone(),
            exit_code: last.and_then(|a| a.exit_code),
            reason: last.and_then(|a| a.reason.clone()),
            log_stream_name: last.and_then(|a| a.log_stream_name.clone()),
        },
        array_properties: d.array_properties.clone(),
        tags: d.tags.clone(),
        ..JobStateChange::default()
    }
}

/// Global index of child 0 of the job named `job_name` (its shard's offset).
fn child_offset(spec: &PipelineSpec, record: &RunRecord, job_name: &str) -> u64 {
    let parent_name = job_name;
    record
        .sizing
        .and_then(|s| graph::build(spec, &record.run_id, &s).ok())
        .and_then(|g| {
            g.node(parent_name).and_then(|n| match n.role {
                Role::Stage { first_child, .. } => Some(first_child),
                _ => None,
            })
        })
        .unwrap_or(0)
}
