//! SubmitJob: AWS's limits, then the new job and its units.

use super::state::{mcpu, Job, Settings, State, Unit};
use crate::{
    batch::{
        check_job_name, DependencyKind, JobStatus, SubmitJob, SubmittedJob, MAX_ARRAY_SIZE, MAX_DEPENDENCIES,
        MAX_OVERRIDE_CHARS, MAX_SUBMIT_BYTES, MIN_ARRAY_SIZE, MIN_TIMEOUT_SECS,
    },
    error::{PortError, PortResult},
};

/// Checks everything about a request that needs no other job: AWS's limits and
/// the engine's capacity. `Err` names the offending value and the fix.
pub(crate) fn check_request(req: &SubmitJob, settings: &Settings) -> Result<(), String> {
    check_job_name(&req.job_name)?;
    if let Some(n) = req.array_size {
        if !(MIN_ARRAY_SIZE..=MAX_ARRAY_SIZE).contains(&n) {
            return Err(format!(
                "array size {n} is out of range: AWS Batch allows {MIN_ARRAY_SIZE} to {MAX_ARRAY_SIZE}; \
                 submit one item as a plain job (no array), pack more items per child, or shard the stage"
            ));
        }
    }
    check_dependencies(req)?;
    let container = &req.container;
    if !matches!(container.command.first(), Some(program) if !program.is_empty()) {
        return Err("container command is empty: give the program to run and its arguments".into());
    }
    let chars: usize = container.command.iter().map(|c| c.chars().count()).sum::<usize>()
        + container.environment.iter().map(|(k, v)| k.chars().count() + v.chars().count()).sum::<usize>();
    if chars > MAX_OVERRIDE_CHARS {
        return Err(format!(
            "container command and environment are {chars} characters, over the AWS limit of \
             {MAX_OVERRIDE_CHARS}: pass pointers (run id, table, index), not data"
        ));
    }
    let bytes = serde_json::to_vec(req).map_err(|e| format!("request cannot be serialised: {e}"))?.len();
    if bytes > MAX_SUBMIT_BYTES {
        return Err(format!(
            "request is {bytes} bytes, over the AWS SubmitJob limit of {MAX_SUBMIT_BYTES}: \
             pass pointers (run id, table, index), not data"
        ));
    }
    req.retry_strategy.check()?;
    if let Some(t) = req.timeout_seconds {
        if t < MIN_TIMEOUT_SECS {
            return Err(format!(
                "timeout {t} s is below the AWS minimum of {MIN_TIMEOUT_SECS} s: set timeout_seconds to {MIN_TIMEOUT_SECS} or more"
            ));
        }
    }
    check_resources(container.vcpus, container.memory_mib, settings)
}

fn check_dependencies(req: &SubmitJob) -> Result<(), String> {
    let n = req.depends_on.len();
    if n > MAX_DEPENDENCIES {
        return Err(format!(
            "{n} dependencies exceed the AWS limit of {MAX_DEPENDENCIES}: insert a barrier job that depends on some of them"
        ));
    }
    let mut sequential = 0;
    for dep in &req.depends_on {
        match (dep.kind, dep.job_id.as_deref()) {
            (DependencyKind::Sequential, Some(id)) => {
                return Err(format!("a SEQUENTIAL dependency takes no job id (got {id:?}): remove the job id"))
            }
            (DependencyKind::Sequential, None) if req.array_size.is_none() => {
                return Err("a SEQUENTIAL dependency needs an array job: set array_size, or drop the dependency".into())
            }
            (DependencyKind::Sequential, None) => sequential += 1,
            (kind, None) => return Err(format!("a {kind:?} dependency needs a job id: set job_id")),
            (DependencyKind::NToN, Some(id)) if req.array_size.is_none() => {
                return Err(format!(
                    "N_TO_N dependency on {id} needs this job to be an array job of the same size: set array_size"
                ))
            }
            (_, Some(_)) => {}
        }
    }
    if sequential > 1 {
        return Err(format!("{sequential} SEQUENTIAL dependencies given: give at most one"));
    }
    Ok(())
}

fn check_resources(vcpus: f64, memory_mib: u64, settings: &Settings) -> Result<(), String> {
    if !(vcpus.is_finite() && vcpus > 0.0) {
        return Err(format!("vcpus {vcpus} must be a positive number: set container.vcpus, e.g. 1 or 0.25"));
    }
    if memory_mib == 0 {
        return Err("memory 0 MiB must be positive: set container.memory_mib".into());
    }
    let cap_vcpus = settings.cap_mcpu as f64 / 1000.0;
    if mcpu(vcpus) > settings.cap_mcpu {
        return Err(format!(
            "job needs {vcpus} vCPUs but the local engine has {cap_vcpus}: it could never run; \
             lower container.vcpus or raise the engine's vcpus"
        ));
    }
    if memory_mib > settings.cap_mem {
        return Err(format!(
            "job needs {memory_mib} MiB but the local engine has {} MiB: it could never run; \
             lower container.memory_mib or raise the engine's memory_mib",
            settings.cap_mem
        ));
    }
    Ok(())
}

/// A random UUID (version 4) string.
pub(crate) fn new_job_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

impl State {
    /// Adds a checked request as a new job, settles its units against their
    /// dependencies and commits; on a failed commit nothing of it remains.
    pub(crate) fn submit(&mut self, request: SubmitJob) -> PortResult<SubmittedJob> {
        let deps = self.resolve_deps(&request).map_err(PortError::Invalid)?;
        let mark = self.events.mark();
        let j = self.jobs.len() as u32;
        let first = self.units.len() as u32;
        let n = request.array_size.unwrap_or(1);
        let id = new_job_id();
        let queue = match request.job_queue.as_str() {
            "" => self.settings.queue_name.clone(),
            q => q.to_string(),
        };
        let mut counts = [0u32; 7];
        counts[JobStatus::Submitted as usize] = n;
        self.jobs.push(Job {
            seq: self.next_seq,
            id: id.clone(),
            queue: queue.clone(),
            created_at: super::state::now_ms(),
            first,
            size: request.array_size,
            mcpu: mcpu(request.container.vcpus),
            mem: request.container.memory_mib,
            sequential: request.depends_on.iter().any(|d| d.kind == DependencyKind::Sequential),
            deps,
            dependents: Default::default(),
            counts,
            status: JobStatus::Submitted,
            reason: None,
            started_at: None,
            stopped_at: None,
            dirty: false,
            new: true,
            request,
        });
        self.units.extend((0..n).map(|index| Unit {
            job: j,
            index,
            status: JobStatus::Submitted,
            reason: None,
            started_at: None,
            stopped_at: None,
            attempts: Vec::new(),
            counted: 0,
            waiting: 0,
            run: None,
            dirty: false,
        }));
        let name = self.job(j).request.job_name.clone();
        self.by_id.insert(id.clone(), j);
        self.by_name.entry((queue, name.to_lowercase())).or_default().push(j);
        self.mark_job(j);
        self.link(j);
        if self.job(j).size.is_some() {
            self.emit_parent(j);
        }
        for u in first..first + n {
            self.mark_unit(u);
            self.emit_unit(u);
        }
        for u in first..first + n {
            self.settle(u);
        }
        self.propagate();
        if let Err(e) = self.commit() {
            self.rollback_last_submit(j, mark);
            return Err(e.into());
        }
        self.next_seq += 1;
        self.events.flush();
        Ok(SubmittedJob { job_id: id, job_name: name })
    }

    /// Removes job `j`, the last one submitted, after its commit failed.
    fn rollback_last_submit(&mut self, j: u32, mark: usize) {
        let first = self.job(j).first;
        self.unlink_last(j);
        let key = (self.job(j).queue.clone(), self.job(j).request.job_name.to_lowercase());
        if let Some(list) = self.by_name.get_mut(&key) {
            list.retain(|&x| x != j);
            if list.is_empty() {
                self.by_name.remove(&key);
            }
        }
        let id = self.job(j).id.clone();
        self.by_id.remove(&id);
        self.runnable.retain(|&u| u < first);
        self.dirty_units.retain(|&u| u < first);
        self.dirty_jobs.retain(|&x| x != j);
        self.done_units.clear();
        self.done_jobs.clear();
        self.units.truncate(first as usize);
        self.jobs.truncate(j as usize);
        self.events.truncate(mark);
    }
}
