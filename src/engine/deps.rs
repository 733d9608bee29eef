//! Dependencies: who waits for whom, and what happens when a job finishes.
//!
//! Each job keeps an index of its dependents ([`Dependents`]), and each waiting
//! unit a count of dependencies not yet succeeded. A finished unit notifies only
//! the units that wait on it: its N_TO_N partner in every dependent array, the
//! next child of a SEQUENTIAL array, and (when the whole job is done) every unit
//! of a job with a standard dependency on it. A failure fails the waiting unit
//! ("Dependent Job failed"), which in turn notifies its own dependents.

use super::state::{Dep, JobIx, State, UnitIx};
use crate::batch::{fsm::Event, DependencyKind, JobStatus};

/// Status reason of a job that fails because a dependency failed.
pub(crate) const DEPENDENCY_FAILED: &str = "Dependent Job failed";

/// A job id as the engine knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// A plain job or an array parent.
    Job(JobIx),
    /// Child `index` of array `JobIx`.
    Child(JobIx, u32),
}

impl State {
    /// Finds a job id: a plain job, an array parent, or a child `parent:index`.
    pub(crate) fn find(&self, id: &str) -> Option<Found> {
        if let Some(&j) = self.by_id.get(id) {
            return Some(Found::Job(j));
        }
        let (parent, index) = id.rsplit_once(':')?;
        let j = *self.by_id.get(parent)?;
        let index: u32 = index.parse().ok()?;
        (index < self.job(j).size?).then_some(Found::Child(j, index))
    }

    /// The unit of a found id: the plain job's unit, or the child.
    pub(crate) fn found_unit(&self, found: Found) -> Option<UnitIx> {
        match found {
            Found::Job(j) => self.job(j).size.is_none().then(|| self.job(j).first),
            Found::Child(j, i) => Some(self.job(j).first + i),
        }
    }

    /// Resolves a request's dependencies; `Err` names the one that is wrong and the fix.
    pub(crate) fn resolve_deps(&self, request: &crate::batch::SubmitJob) -> Result<Vec<Dep>, String> {
        let mut deps = Vec::with_capacity(request.depends_on.len());
        for dep in &request.depends_on {
            let id = dep.job_id.as_deref().unwrap_or_default();
            let found = || {
                self.find(id).ok_or_else(|| {
                    format!("dependency job id {id:?} does not exist in this engine: submit it first, or fix the id")
                })
            };
            deps.push(match dep.kind {
                DependencyKind::Sequential => Dep::Sequential,
                DependencyKind::Standard => match found()? {
                    Found::Job(j) => Dep::Whole(j),
                    Found::Child(j, i) => Dep::Child(j, i),
                },
                DependencyKind::NToN => match found()? {
                    Found::Job(j) if self.job(j).size == request.array_size => Dep::NToN(j),
                    Found::Job(j) => {
                        return Err(format!(
                            "N_TO_N dependency on {id} needs array jobs of the same size: {id} has {}, this job has {}",
                            size_text(self.job(j).size),
                            size_text(request.array_size)
                        ))
                    }
                    Found::Child(..) => {
                        return Err(format!(
                            "N_TO_N dependency on {id} names an array child: give the array job's id"
                        ))
                    }
                },
            });
        }
        Ok(deps)
    }

    /// Records job `j` as a dependent of every job it depends on.
    pub(crate) fn link(&mut self, j: JobIx) {
        for k in 0..self.job(j).deps.len() {
            match self.job(j).deps[k] {
                Dep::Whole(d) => self.job_mut(d).dependents.whole.push(j),
                Dep::Child(d, i) => self.job_mut(d).dependents.by_child.entry(i).or_default().push(j),
                Dep::NToN(d) => self.job_mut(d).dependents.n_to_n.push(j),
                Dep::Sequential => {}
            }
        }
    }

    /// Undoes [`State::link`] for the job submitted last.
    pub(crate) fn unlink_last(&mut self, j: JobIx) {
        for k in 0..self.job(j).deps.len() {
            let list = match self.job(j).deps[k] {
                Dep::Whole(d) => &mut self.job_mut(d).dependents.whole,
                Dep::NToN(d) => &mut self.job_mut(d).dependents.n_to_n,
                Dep::Child(d, i) => match self.job_mut(d).dependents.by_child.get_mut(&i) {
                    Some(list) => list,
                    None => continue,
                },
                Dep::Sequential => continue,
            };
            if let Some(pos) = list.iter().rposition(|&x| x == j) {
                list.remove(pos);
            }
        }
    }

    /// Counts unit `u`'s unmet dependencies and moves a SUBMITTED or PENDING unit
    /// on: FAILED if one failed, RUNNABLE if all succeeded, else PENDING.
    pub(crate) fn settle(&mut self, u: UnitIx) {
        let (j, index) = (self.unit(u).job, self.unit(u).index);
        let (mut waiting, mut failed) = (0, false);
        for k in 0..self.job(j).deps.len() {
            let status = match self.job(j).deps[k] {
                Dep::Whole(d) => self.job(d).status,
                Dep::Child(d, i) => self.unit(self.job(d).first + i).status,
                Dep::NToN(d) => self.unit(self.job(d).first + index).status,
                Dep::Sequential if index == 0 => continue,
                Dep::Sequential => self.unit(u - 1).status,
            };
            match status {
                JobStatus::Succeeded => {}
                JobStatus::Failed => failed = true,
                _ => waiting += 1,
            }
        }
        self.unit_mut(u).waiting = waiting;
        let status = self.unit(u).status;
        if !matches!(status, JobStatus::Submitted | JobStatus::Pending) {
            return;
        }
        if failed {
            self.apply_or_log(u, Event::DependencyFailed, Some(DEPENDENCY_FAILED.into()));
        } else if waiting == 0 {
            self.apply_or_log(u, Event::DependenciesMet, None);
        } else if status == JobStatus::Submitted {
            self.apply_or_log(u, Event::DependenciesPending, None);
        }
    }

    /// Notifies the dependents of every finished unit and job, until nothing is left.
    pub(crate) fn propagate(&mut self) {
        let mut targets = Vec::new();
        loop {
            if let Some(u) = self.done_units.pop() {
                let ok = self.unit(u).status == JobStatus::Succeeded;
                let (j, index) = (self.unit(u).job, self.unit(u).index);
                let job = self.job(j);
                targets.extend(job.dependents.n_to_n.iter().map(|&x| self.job(x).first + index));
                if job.sequential && index + 1 < job.size.unwrap_or(1) {
                    targets.push(u + 1);
                }
                if let Some(xs) = job.dependents.by_child.get(&index) {
                    targets.extend(xs.iter().flat_map(|&x| self.job(x).units()));
                }
                for t in targets.drain(..) {
                    self.notify(t, ok);
                }
            } else if let Some(j) = self.done_jobs.pop() {
                let ok = self.job(j).status == JobStatus::Succeeded;
                let job = self.job(j);
                targets.extend(job.dependents.whole.iter().flat_map(|&x| self.job(x).units()));
                for t in targets.drain(..) {
                    self.notify(t, ok);
                }
            } else {
                return;
            }
        }
    }

    /// One dependency of waiting unit `t` finished (`ok` when it succeeded).
    fn notify(&mut self, t: UnitIx, ok: bool) {
        if !matches!(self.unit(t).status, JobStatus::Submitted | JobStatus::Pending) {
            return;
        }
        if !ok {
            self.apply_or_log(t, Event::DependencyFailed, Some(DEPENDENCY_FAILED.into()));
            return;
        }
        let unit = self.unit_mut(t);
        unit.waiting = unit.waiting.saturating_sub(1);
        if unit.waiting == 0 {
            self.apply_or_log(t, Event::DependenciesMet, None);
        }
    }
}

fn size_text(size: Option<u32>) -> String {
    size.map_or_else(|| "no array".to_string(), |n| format!("array size {n}"))
}
