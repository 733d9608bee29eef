//! What the monitor may conclude about a run's jobs, from what the Batch API
//! documents — not from wording or timing it does not promise:
//!
//! - **"A dependency failed"**: a FAILED job without attempts whose
//!   dependency (for `N_TO_N` the child of the same index, for `SEQUENTIAL`
//!   the previous sibling) is itself FAILED — read from the dependencies'
//!   own statuses (DescribeJobs), never from the status reason's words.
//! - **"Everything upstream has ended"**: every job of the run is SUCCEEDED
//!   or FAILED, and so is every child of every array job (ListJobs by
//!   `arrayJobId` and status). An array parent's own FAILED is not taken to
//!   mean that its children ended: AWS does not document when a parent fails.

use tracing::debug;

use super::Monitor;
use crate::{
    batch::{DependencyKind, JobDependency, JobQuery, JobStatus},
    run::RunError,
    spec::PipelineSpec,
};

/// The statuses of a job that has not ended.
const ACTIVE: [JobStatus; 5] =
    [JobStatus::Submitted, JobStatus::Pending, JobStatus::Runnable, JobStatus::Starting, JobStatus::Running];

/// A job as the cascade check sees it (from an event or a describe).
pub(super) struct Failed<'a> {
    pub job_id: &'a str,
    pub index: Option<u32>,
    pub depends_on: &'a [JobDependency],
    pub ran: bool,
}

/// The ids whose failure would fail `job`: its dependencies, resolved per kind.
fn dependency_ids(job_id: &str, index: Option<u32>, deps: &[JobDependency]) -> Vec<String> {
    let own_parent = job_id.split_once(':').map_or(job_id, |(p, _)| p);
    deps.iter()
        .filter_map(|d| match (d.kind, d.job_id.as_deref(), index) {
            // AWS may name the child itself (`id:i`), or the parent.
            (_, Some(id), _) if id.contains(':') => Some(id.to_owned()),
            (DependencyKind::NToN, Some(id), Some(i)) => Some(format!("{id}:{i}")),
            (DependencyKind::Sequential, _, Some(i)) if i > 0 => Some(format!("{own_parent}:{}", i - 1)),
            (DependencyKind::Sequential, _, _) => None,
            (_, id, _) => id.map(str::to_owned),
        })
        .collect()
}

impl Monitor {
    /// Whether `job` failed because a dependency failed (and so is no root failure).
    pub(super) async fn is_cascade(&self, job: Failed<'_>) -> Result<bool, RunError> {
        if job.ran {
            return Ok(false);
        }
        let mut deps = job.depends_on.to_vec();
        if deps.is_empty() && job.index.is_some() {
            // A child's event may not repeat its parent's dependencies: ask the parent.
            let parent = job.job_id.split_once(':').map_or(job.job_id, |(p, _)| p).to_owned();
            let described = self.ports.batch.describe_jobs(&[parent]).await?;
            deps = described.into_iter().flat_map(|d| d.depends_on).collect();
        }
        let ids = dependency_ids(job.job_id, job.index, &deps);
        if ids.is_empty() {
            return Ok(false);
        }
        let described = self.ports.batch.describe_jobs(&ids).await?;
        Ok(described.iter().any(|d| d.status == JobStatus::Failed))
    }

    /// Whether every job of the run but its cleanups, and every child of its array jobs, has ended.
    pub(super) async fn upstream_ended(&self, spec: &PipelineSpec, run_id: &str) -> Result<bool, RunError> {
        let attempt = self.store(spec).get(run_id).await?.map_or(1, |r| r.attempt());
        let prefix = crate::run::retry::job_prefix(&spec.name, run_id, attempt);
        let pattern = format!("{prefix}*");
        let jobs =
            self.ports.batch.list_jobs(&JobQuery::ByName { queue: spec.job_queue.clone(), pattern }).await?;
        // The cleanups run after the others: they are not upstream.
        let cleanups = [format!("{prefix}cleanup"), format!("{prefix}cleanup-onfailure")];
        for job in jobs.iter().filter(|j| !cleanups.contains(&j.job_name)) {
            if !job.status.is_terminal() {
                debug!(run_id, job = %job.job_name, status = %job.status, "upstream still active");
                return Ok(false);
            }
            let is_array = job.array_properties.as_ref().is_some_and(|a| a.size.is_some());
            if !is_array {
                continue;
            }
            for status in ACTIVE {
                let q = JobQuery::ArrayChildren { array_job_id: job.job_id.clone(), status: Some(status) };
                if !self.ports.batch.list_jobs(&q).await?.is_empty() {
                    debug!(run_id, job = %job.job_name, %status, "array job ended before its children");
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_resolve_per_kind() {
        let deps = [JobDependency::on("a"), JobDependency::n_to_n("b"), JobDependency::sequential()];
        assert_eq!(dependency_ids("p:3", Some(3), &deps), ["a", "b:3", "p:2"]);
        assert_eq!(dependency_ids("p:0", Some(0), &deps), ["a", "b:0"]);
        assert_eq!(dependency_ids("j", None, &[JobDependency::n_to_n("b:7")]), ["b:7"]);
    }
}
