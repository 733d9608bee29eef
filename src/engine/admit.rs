//! SubmitJob: AWS's limits, then the new job and its units.

use super::state::{mcpu, Job, Settings, State, Unit};
use crate::{
    batch::{check_submit, DependencyKind, JobStatus, SubmitJob, SubmittedJob},
    error::{PortError, PortResult},
};

/// Checks everything about a request that needs no other job: AWS's limits
/// ([`check_submit`]) and the engine's capacity. `Err` names the offending
/// value and the fix.
pub(crate) fn check_request(req: &SubmitJob, settings: &Settings) -> Result<(), String> {
    check_submit(req).map_err(|e| e.message().to_owned())?;
    check_resources(req.container.vcpus, req.container.memory_mib, settings)
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
    crate::ids::random_uuid()
}

impl State {
    /// Adds a checked request as a new job, settles its units against their
    /// dependencies and commits; on a failed commit nothing of it remains.
    pub(crate) fn submit(&mut self, request: SubmitJob) -> PortResult<SubmittedJob> {
        let deps = self.resolve_deps(&request).map_err(PortError::invalid)?;
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
