//! The submitter step: RunPlanned → the run's job graph, submitted exactly once.
//!
//! Runs under a lease on the run record. Before submitting anything it lists
//! the run's jobs by name (`{pipeline}-{run}-*`) and reuses every job that
//! already exists, so a submitter that died between two SubmitJob calls and is
//! delivered the message again submits only what is missing.

use std::{collections::BTreeMap, path::Path};

use tracing::{debug, info};

use super::{
    record::{now_ms, Lease, RunRecord, RunState, RunStore},
    BackendKind, Ports, RunError,
};
use crate::{
    batch::{JobQuery, SubmitJob},
    deploy, env,
    graph::{self, JobGraph, Role},
    plan::{self, Sizing},
    spec::PipelineSpec,
};

/// How long a submitter may hold a run before another may take over.
pub const LEASE_MS: i64 = 5 * 60 * 1000;

/// Submits the run's jobs; returns the run as stored after.
pub async fn submit(
    ports: &Ports,
    spec: &PipelineSpec,
    run_id: &str,
    owner: &str,
) -> Result<RunRecord, RunError> {
    let store = RunStore::new(ports.table.as_ref(), &spec.storage.table);
    let record = acquire(&store, run_id, owner).await?;
    if record.state != RunState::Planned {
        debug!(run_id, state = %record.state, "nothing to submit");
        return Ok(record);
    }
    let sizing =
        record.sizing.ok_or_else(|| RunError::Invalid(format!("run {run_id} is PLANNED without sizing")))?;
    let graph = match &record.retry {
        Some(plan) if record.attempt() > 1 => super::retry_plan::graph(spec, run_id, plan)?,
        _ => graph::build(spec, run_id, &sizing)?,
    };
    let graph = with_run_pointers(graph, spec, &record, &sizing);
    let jobs = if record.cancel.is_some() {
        // Cancelled before its jobs went out: submit nothing, the monitor ends it.
        BTreeMap::new()
    } else {
        submit_graph(ports, spec, run_id, &graph).await?
    };
    let record = store
        .update(run_id, |r| {
            r.lease = None;
            if r.state == RunState::Planned {
                r.state = RunState::Submitted;
                r.times.insert("submitted".into(), now_ms());
            }
            r.jobs.extend(jobs.clone());
            true
        })
        .await?;
    info!(run_id, jobs = record.jobs.len(), "submitted");
    if record.cancel.is_none() {
        return Ok(record);
    }
    super::cancel::apply(ports, spec, run_id).await?;
    Ok(store.get(run_id).await?.unwrap_or(record))
}

/// Adds to the stage jobs' environment what the run record holds and a child
/// would otherwise read it for: the run's input and, for a `range` run, its
/// size (its work items are computed, not stored). Pointers, never data.
pub fn with_run_pointers(
    mut graph: JobGraph,
    spec: &PipelineSpec,
    record: &RunRecord,
    sizing: &Sizing,
) -> JobGraph {
    for node in graph.nodes.iter_mut().filter(|n| matches!(n.role, Role::Stage { .. })) {
        if let Some(input) = &record.trigger.input {
            node.env.insert(env::INPUT.into(), input.to_string());
        }
        if !spec.planner.stores_work_items() {
            node.env.insert(env::RANGE.into(), plan::range_pointer(sizing));
        }
    }
    graph
}

/// Takes the run's lease, or fails with [`RunError::LeaseHeld`].
async fn acquire(store: &RunStore<'_>, run_id: &str, owner: &str) -> Result<RunRecord, RunError> {
    let now = now_ms();
    let mut held_by = None;
    let record = store
        .update(run_id, |r| {
            held_by = None;
            if r.state != RunState::Planned {
                return false;
            }
            match &r.lease {
                Some(l) if l.owner != owner && l.until > now => {
                    held_by = Some(l.clone());
                    false
                }
                _ => {
                    r.lease = Some(Lease { owner: owner.to_owned(), until: now + LEASE_MS });
                    true
                }
            }
        })
        .await
        .map_err(|e| match e {
            crate::error::PortError::NotFound(_) => RunError::UnknownRun(run_id.to_owned()),
            e => e.into(),
        })?;
    match held_by {
        Some(l) => Err(RunError::LeaseHeld { run_id: run_id.to_owned(), owner: l.owner, until_ms: l.until }),
        None => Ok(record),
    }
}

/// Submits every node not yet submitted, in order; returns name → job id.
pub async fn submit_graph(
    ports: &Ports,
    spec: &PipelineSpec,
    run_id: &str,
    graph: &JobGraph,
) -> Result<BTreeMap<String, String>, RunError> {
    let pattern = format!("{}-{run_id}-*", spec.name);
    let existing =
        ports.batch.list_jobs(&JobQuery::ByName { queue: spec.job_queue.clone(), pattern }).await?;
    let mut ids: BTreeMap<String, String> = existing.into_iter().map(|j| (j.job_name, j.job_id)).collect();
    for node in &graph.nodes {
        if ids.contains_key(&node.name) {
            continue;
        }
        let mut request = node.to_submit(spec, |name| ids.get(name).cloned())?;
        if let Some(attempt) = node.env.get(crate::env::RERUN) {
            request.tags.insert(super::retry::TAG_ATTEMPT.into(), attempt.clone());
        }
        for_backend(ports.kind, spec, &mut request);
        let submitted = ports.batch.submit_job(request).await?;
        debug!(run_id, job = %submitted.job_name, id = %submitted.job_id, "submitted job");
        ids.insert(submitted.job_name, submitted.job_id);
    }
    Ok(ids)
}

/// Shapes a request for the backend it goes to. Locally, relative programs
/// resolve against the spec's directory ([`resolve_command`]). On AWS the job
/// definition (`spec.job_definition_prefix` + stage or role) sets the image,
/// the static env ([`deploy::JOB_DEFINITION_ENV`]) and the job's own env, so
/// the container overrides carry only the run's pointers
/// ([`deploy::JOB_OVERRIDE_ENV`]) besides the command and resources.
pub fn for_backend(kind: BackendKind, spec: &PipelineSpec, request: &mut SubmitJob) {
    match kind {
        BackendKind::Local => resolve_command(request, &spec.base_dir),
        BackendKind::Aws => {
            request.container.environment.retain(|name, _| deploy::JOB_OVERRIDE_ENV.contains(&name.as_str()))
        }
    }
}

/// Locally, a relative program path (`./bin/job`) is relative to the spec's
/// directory: the stage's command, and the program `batchfan job exec -- PROG` runs.
pub fn resolve_command(request: &mut SubmitJob, base_dir: &Path) {
    let cmd = &mut request.container.command;
    let mut programs = vec![0];
    let is_exec = cmd.first().is_some_and(|c| c == "batchfan" || c.ends_with("/batchfan"))
        && cmd.get(1).is_some_and(|c| c == "job")
        && cmd.get(2).is_some_and(|c| c == "exec");
    if is_exec {
        if let Some(dash) = cmd.iter().position(|c| c == "--") {
            programs.push(dash + 1);
        }
    }
    for i in programs {
        if let Some(arg) = cmd.get_mut(i) {
            let p = Path::new(arg.as_str());
            if p.is_relative() && arg.contains('/') {
                *arg = base_dir.join(p).to_string_lossy().into_owned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::ContainerSpec;

    fn request(command: &[&str]) -> SubmitJob {
        SubmitJob {
            job_name: "j".into(),
            job_queue: "q".into(),
            job_definition: "d".into(),
            array_size: None,
            depends_on: vec![],
            container: ContainerSpec {
                command: command.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            retry_strategy: Default::default(),
            timeout_seconds: None,
            tags: Default::default(),
        }
    }

    #[test]
    fn relative_programs_resolve_against_the_spec_dir() {
        let base = Path::new("/specs");
        let mut r = request(&["./bin/job", "./data"]);
        resolve_command(&mut r, base);
        assert_eq!(r.container.command, ["/specs/./bin/job", "./data"]);
        let mut r = request(&["batchfan", "job", "exec", "--", "./square.sh", "./x"]);
        resolve_command(&mut r, base);
        assert_eq!(r.container.command[4], "/specs/./square.sh");
        assert_eq!(r.container.command[5], "./x");
        let mut r = request(&["orders-confirm"]);
        resolve_command(&mut r, base);
        assert_eq!(r.container.command, ["orders-confirm"]);
    }
}
