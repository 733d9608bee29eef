//! The in-memory state of every job (see [`super::model`]) and
//! [`State::apply`], the one place a unit's status changes. `apply` drives
//! [`fsm::transition`] and keeps everything derived from statuses in step:
//! capacity, the FIFO runnable queue, array parent status and counts, dirty
//! marks for the next commit, events, and completion queues.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet},
    sync::{Mutex, MutexGuard, PoisonError},
    time::Instant,
};

pub(crate) use super::model::{mcpu, Dep, Job, Run, Settings, Stop, Timer, TimerKind, Unit};
use super::{events::Events, store::Store};
use crate::batch::{
    fsm::{self, Event, InvalidTransition},
    JobStatus,
};

/// Index of a job in [`State::jobs`] (submission order).
pub(crate) type JobIx = u32;
/// Index of a unit in [`State::units`]; FIFO order is index order.
pub(crate) type UnitIx = u32;

/// The engine state behind one lock, shared by the API and the scheduler thread.
pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(state: State) -> Self {
        Shared { state: Mutex::new(state) }
    }

    /// Locks the state. A panic while it was held leaves it usable: every
    /// mutation is committed or retried as a whole.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Everything the engine knows.
pub(crate) struct State {
    pub settings: std::sync::Arc<Settings>,
    pub jobs: Vec<Job>,
    pub units: Vec<Unit>,
    pub by_id: HashMap<String, JobIx>,
    /// (queue, lowercase name) → jobs, for ListJobs by (case-insensitive) name prefix.
    pub by_name: BTreeMap<(String, String), Vec<JobIx>>,
    pub runnable: BTreeSet<UnitIx>,
    /// Units holding capacity (STARTING or RUNNING).
    pub active: HashSet<UnitIx>,
    pub free_mcpu: u64,
    pub free_mem: u64,
    /// Per-queue capacity from compute environments, when set ([`super::pools`]).
    pub pools: super::pools::Pools,
    pub timers: BinaryHeap<Reverse<Timer>>,
    /// A memory sweep timer is pending ([`super::memory`]).
    pub memory_sweep_armed: bool,
    pub dirty_units: Vec<UnitIx>,
    pub dirty_jobs: Vec<JobIx>,
    /// Units and jobs that finished and whose dependents are not notified yet.
    pub done_units: Vec<UnitIx>,
    pub done_jobs: Vec<JobIx>,
    pub events: Events,
    /// `None` once the engine has shut down.
    pub store: Option<Store>,
    pub next_seq: i64,
    pub next_token: u64,
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An array parent's status from its children's counts, by [`fsm::parent_status`].
/// That function depends only on which statuses are present, so one of each suffices.
pub(crate) fn parent_status_of(counts: &[u32; 7]) -> JobStatus {
    fsm::parent_status(JobStatus::ALL.into_iter().filter(|s| counts[*s as usize] > 0))
}

fn holds_capacity(st: JobStatus) -> bool {
    matches!(st, JobStatus::Starting | JobStatus::Running)
}

impl State {
    pub(crate) fn new(settings: std::sync::Arc<Settings>, store: Store) -> Self {
        State {
            free_mcpu: settings.cap_mcpu,
            free_mem: settings.cap_mem,
            pools: Default::default(),
            settings,
            jobs: Vec::new(),
            units: Vec::new(),
            by_id: HashMap::new(),
            by_name: BTreeMap::new(),
            runnable: BTreeSet::new(),
            active: HashSet::new(),
            timers: BinaryHeap::new(),
            memory_sweep_armed: false,
            dirty_units: Vec::new(),
            dirty_jobs: Vec::new(),
            done_units: Vec::new(),
            done_jobs: Vec::new(),
            events: Events::default(),
            store: Some(store),
            next_seq: 1,
            next_token: 1,
        }
    }

    pub(crate) fn unit(&self, u: UnitIx) -> &Unit {
        &self.units[u as usize]
    }

    pub(crate) fn unit_mut(&mut self, u: UnitIx) -> &mut Unit {
        &mut self.units[u as usize]
    }

    pub(crate) fn job(&self, j: JobIx) -> &Job {
        &self.jobs[j as usize]
    }

    pub(crate) fn job_mut(&mut self, j: JobIx) -> &mut Job {
        &mut self.jobs[j as usize]
    }

    pub(crate) fn job_of(&self, u: UnitIx) -> &Job {
        self.job(self.unit(u).job)
    }

    /// `parent:index` for a child, the job id for a plain job.
    pub(crate) fn unit_id(&self, u: UnitIx) -> String {
        let job = self.job_of(u);
        match job.size {
            Some(_) => format!("{}:{}", job.id, self.unit(u).index),
            None => job.id.clone(),
        }
    }

    pub(crate) fn mark_unit(&mut self, u: UnitIx) {
        let unit = self.unit_mut(u);
        if !unit.dirty {
            unit.dirty = true;
            self.dirty_units.push(u);
        }
    }

    pub(crate) fn mark_job(&mut self, j: JobIx) {
        let job = self.job_mut(j);
        if !job.dirty {
            job.dirty = true;
            self.dirty_jobs.push(j);
        }
    }

    /// Moves unit `u` by `event` and sets its status reason; a no-op when the
    /// event leaves the status unchanged (Cancel on a started job).
    pub(crate) fn apply(
        &mut self,
        u: UnitIx,
        event: Event,
        reason: Option<String>,
    ) -> Result<JobStatus, InvalidTransition> {
        let now = now_ms();
        let unit = self.unit_mut(u);
        let from = unit.status;
        let to = fsm::transition(from, event)?;
        if to == from {
            return Ok(to);
        }
        unit.status = to;
        unit.reason = reason;
        if to == JobStatus::Running {
            unit.started_at = Some(now);
        }
        if to.is_terminal() {
            unit.stopped_at = Some(now);
        }
        let j = unit.job;
        self.mark_unit(u);
        if from == JobStatus::Runnable {
            self.runnable.remove(&u);
        }
        if to == JobStatus::Runnable {
            self.runnable.insert(u);
        }
        let (need_mcpu, need_mem) = (self.job(j).mcpu, self.job(j).mem);
        if holds_capacity(from) && !holds_capacity(to) {
            self.free_mcpu = (self.free_mcpu + need_mcpu).min(self.settings.cap_mcpu);
            self.free_mem = (self.free_mem + need_mem).min(self.settings.cap_mem);
            self.pools.release(u);
            self.active.remove(&u);
        } else if !holds_capacity(from) && holds_capacity(to) {
            self.free_mcpu = self.free_mcpu.saturating_sub(need_mcpu);
            self.free_mem = self.free_mem.saturating_sub(need_mem);
            self.active.insert(u);
        }
        self.emit_unit(u);
        let job = self.job_mut(j);
        job.counts[from as usize] -= 1;
        job.counts[to as usize] += 1;
        let was_terminal = job.status.is_terminal();
        if job.size.is_none() {
            job.status = to;
        } else {
            let status = parent_status_of(&job.counts);
            if status != job.status {
                job.status = status;
                if status == JobStatus::Running && job.started_at.is_none() {
                    job.started_at = Some(now);
                }
                if status.is_terminal() {
                    job.stopped_at = Some(now);
                }
                self.emit_parent(j);
            }
        }
        if to.is_terminal() {
            self.done_units.push(u);
        }
        if !was_terminal && self.job(j).status.is_terminal() {
            self.done_jobs.push(j);
        }
        Ok(to)
    }

    /// Like [`State::apply`] for transitions the engine itself chose, where a
    /// refusal is a bug: it is logged, and the unit is left as it is.
    pub(crate) fn apply_or_log(&mut self, u: UnitIx, event: Event, reason: Option<String>) {
        if let Err(e) = self.apply(u, event, reason) {
            tracing::error!(job_id = %self.unit_id(u), error = %e, "engine bug: refused transition");
        }
    }

    /// Schedules a timer.
    pub(crate) fn add_timer(&mut self, timer: Timer) {
        self.timers.push(Reverse(timer));
    }

    /// The earliest timer, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(t)| t.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus as S;

    #[test]
    fn parent_status_from_counts_matches_full_list() {
        let cases: [&[S]; 6] = [
            &[S::Succeeded, S::Succeeded, S::Failed],
            &[S::Failed, S::Running, S::Running],
            &[S::Pending, S::Runnable, S::Runnable],
            &[S::Submitted, S::Submitted],
            &[S::Succeeded, S::Pending, S::Pending],
            &[S::Starting, S::Runnable],
        ];
        for children in cases {
            let mut counts = [0u32; 7];
            for st in children {
                counts[*st as usize] += 1;
            }
            assert_eq!(
                parent_status_of(&counts),
                fsm::parent_status(children.iter().copied()),
                "{children:?}"
            );
        }
    }

    #[test]
    fn mcpu_rounds_and_is_never_zero() {
        assert_eq!(mcpu(0.25), 250);
        assert_eq!(mcpu(2.0), 2000);
        assert_eq!(mcpu(0.0001), 1);
    }
}
