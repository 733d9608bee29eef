//! The cleanup after a failure: when the planned cleanup FAILED without
//! running, a failure cleanup with a deterministic name replaces it, once
//! every job and array child of the run has ended ([`Monitor::upstream_ended`]);
//! until then the run record holds `times.cleanup_waiting`, and the run is
//! listed under `waiting#{pipeline}` / `{run}` in the table.
//!
//! On AWS the alert function's rule delivers failures and the cleanups'
//! successes only (one invocation per run, not one per child), so the
//! success of the last child a cleanup waits for may be the run's last event:
//! a reconcile tick (a schedule rule invoking the alert function) calls
//! [`Monitor::reconcile_waiting`], which re-checks every listed run.

use tracing::{info, warn};

use super::{for_backend, Monitor, CLEANUP_WAITING, ROLE_FAILURE_CLEANUP, TAG_ROLE};
use crate::{
    batch::JobQuery,
    env,
    graph::{self, Role},
    run::{record::now_ms, retry, RunError},
    spec::PipelineSpec,
    table::{Condition, Item, Key},
};

/// The key listing run `run_id` of `spec` as waiting for its failure cleanup.
fn waiting_key(spec: &PipelineSpec, run_id: &str) -> Key {
    Key::new(waiting_pk(&spec.name), run_id)
}

fn waiting_pk(pipeline: &str) -> String {
    format!("waiting#{pipeline}")
}

impl Monitor {
    /// The planned cleanup failed without running: submits the failure cleanup now
    /// if every job and child of the run has ended, else marks the run as
    /// waiting for it ([`Monitor::resume_waiting_cleanup`] submits it later).
    pub(super) async fn cleanup_after_failure(
        &self,
        spec: &PipelineSpec,
        run_id: &str,
    ) -> Result<(), RunError> {
        if self.failure_cleanup_exists(spec, run_id).await? || self.upstream_ended(spec, run_id).await? {
            return self.submit_failure_cleanup(spec, run_id).await;
        }
        info!(run_id, "cleanup waits: jobs of the run are still active");
        let listed = Item::new(waiting_key(spec, run_id)).with("since", now_ms());
        self.ports.table.put(&spec.storage.table, listed, Condition::None).await?;
        self.store(spec)
            .update(run_id, |r| r.times.insert(CLEANUP_WAITING.into(), now_ms()).is_none())
            .await?;
        Ok(())
    }

    /// Submits a waiting failure cleanup once everything upstream has ended.
    pub(super) async fn resume_waiting_cleanup(
        &self,
        spec: &PipelineSpec,
        run_id: &str,
    ) -> Result<(), RunError> {
        let Some(record) = self.store(spec).get(run_id).await? else { return Ok(()) };
        if !record.times.contains_key(CLEANUP_WAITING) || !self.upstream_ended(spec, run_id).await? {
            return Ok(());
        }
        self.submit_failure_cleanup(spec, run_id).await
    }

    /// Submits the cleanup that runs after a failure (the planned cleanup never ran).
    pub(super) async fn submit_failure_cleanup(
        &self,
        spec: &PipelineSpec,
        run_id: &str,
    ) -> Result<(), RunError> {
        let Some(record) = self.store(spec).get(run_id).await? else { return Ok(()) };
        let Some(sizing) = record.sizing else { return Ok(()) };
        let name = failure_cleanup_name(spec, run_id, record.attempt());
        if self.failure_cleanup_exists(spec, run_id).await? {
            self.store(spec).update(run_id, |r| r.times.remove(CLEANUP_WAITING).is_some()).await?;
            return self.unlist_waiting(spec, run_id).await;
        }
        let graph = graph::build(spec, run_id, &sizing)?;
        let Some(node) = graph.nodes.iter().find(|n| n.role == Role::Cleanup) else { return Ok(()) };
        let mut node = node.clone();
        node.depends_on.clear();
        let mut request = node.to_submit(spec, |_| None)?;
        request.job_name = name;
        request.tags.insert(TAG_ROLE.into(), ROLE_FAILURE_CLEANUP.into());
        // The job keeps what a retry reuses (`runtime::builtin::cleanup`).
        request.container.environment.insert(env::ROLE.into(), ROLE_FAILURE_CLEANUP.into());
        if record.attempt() > 1 {
            request.tags.insert(retry::TAG_ATTEMPT.into(), record.attempt().to_string());
        }
        for_backend(self.ports.kind, spec, &mut request);
        let job = self.ports.batch.submit_job(request).await?;
        self.store(spec)
            .update(run_id, |r| {
                r.times.remove(CLEANUP_WAITING);
                r.jobs.insert(job.job_name.clone(), job.job_id.clone());
                true
            })
            .await?;
        info!(run_id, job = %job.job_name, "cleanup submitted after failure");
        self.unlist_waiting(spec, run_id).await
    }

    async fn unlist_waiting(&self, spec: &PipelineSpec, run_id: &str) -> Result<(), RunError> {
        Ok(self.ports.table.delete(&spec.storage.table, &waiting_key(spec, run_id)).await?)
    }

    /// Re-checks every run of `pipeline` whose failure cleanup waits
    /// ([`Monitor::reconcile`]: the cleanup is submitted once the run's jobs
    /// have all ended); returns how many runs were listed. A run that no
    /// longer waits leaves the list.
    pub async fn reconcile_waiting(&self, pipeline: &str) -> Result<usize, RunError> {
        let Some(spec) = self.spec(pipeline) else { return Ok(0) };
        let listed = self.ports.table.query(&spec.storage.table, &waiting_pk(pipeline), "").await?;
        for item in &listed {
            let run_id = item.key.sk.as_str();
            match self.reconcile(pipeline, run_id).await? {
                Some(r) if r.times.contains_key(CLEANUP_WAITING) && !r.state.is_terminal() => {
                    info!(run_id, "cleanup still waits: jobs of the run are still active");
                }
                Some(_) => self.unlist_waiting(spec, run_id).await?,
                None => {
                    warn!(run_id, "a run listed as waiting for its cleanup has no record: unlisted");
                    self.unlist_waiting(spec, run_id).await?;
                }
            }
        }
        Ok(listed.len())
    }

    /// Whether the run's failure cleanup was submitted already (found by its name).
    pub(super) async fn failure_cleanup_exists(
        &self,
        spec: &PipelineSpec,
        run_id: &str,
    ) -> Result<bool, RunError> {
        let attempt = self.store(spec).get(run_id).await?.map_or(1, |r| r.attempt());
        let pattern = failure_cleanup_name(spec, run_id, attempt);
        let q = JobQuery::ByName { queue: spec.job_queue.clone(), pattern };
        Ok(!self.ports.batch.list_jobs(&q).await?.is_empty())
    }
}

/// The failure cleanup's name in `attempt` of a run.
pub(super) fn failure_cleanup_name(spec: &PipelineSpec, run_id: &str, attempt: u32) -> String {
    format!("{}cleanup-onfailure", retry::job_prefix(&spec.name, run_id, attempt))
}
