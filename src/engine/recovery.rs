//! Opening: lock the state directory, load every job, and recover attempts a
//! dead engine left STARTING or RUNNING.
//!
//! Recovery first makes sure nothing of a lost attempt still runs: it SIGKILLs
//! the recorded process group (only if the pid still names the same process,
//! checked by its start time), then every process whose environment carries a
//! lost job's `AWS_BATCH_JOB_ID` (which also catches a process spawned just
//! before the engine died, before its pid was committed, and children that left
//! the group), and waits until they are gone — so no child ever runs twice at once.
//!
//! Then, as AWS counts attempts: an attempt that reached RUNNING and was lost
//! counts. It is recorded with the status reason AWS gives a lost host (`Host
//! EC2 (local engine restart) terminated.`, matched by `Host EC2*`) and retried
//! only if attempts remain and the retry rules allow it (the next attempt gets
//! the next `AWS_BATCH_JOB_ATTEMPT`); otherwise the job FAILS with that reason.
//! An attempt lost while still STARTING never ran as far as the engine knows:
//! it is not counted and its job is re-queued.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    cgroup, container,
    lock::StateLock,
    state::{now_ms, parent_status_of, Job, Run, Settings, Shared, State, Unit, UnitIx},
    store::{JobRow, Store, UnitRow},
    sys, EngineConfig, EngineError,
};
use crate::{
    batch::{fsm::Event, Attempt, DependencyKind, JobStatus},
    env,
};

/// Status reason of an attempt lost with the engine that ran it.
pub(crate) const HOST_LOST: &str = "Host EC2 (local engine restart) terminated.";
/// How long a SIGKILLed leftover may take to disappear.
const LEFTOVER_WAIT: Duration = Duration::from_secs(30);

/// Locks, loads and recovers the state directory of `config`.
pub(crate) fn boot(config: &EngineConfig) -> Result<(StateLock, Arc<Shared>), EngineError> {
    let dir = &config.state_dir;
    std::fs::create_dir_all(dir).map_err(|source| EngineError::Io {
        action: "create the state directory",
        path: dir.clone(),
        source,
    })?;
    let lock = StateLock::acquire(dir)?;
    let db_path = dir.join("engine.sqlite");
    let store = Store::open(&db_path)?;
    let (jobs, units) = store.load()?;
    let mut state = State::new(Arc::new(settings(config)), store);
    state.restore(jobs, units).map_err(|detail| EngineError::Corrupt { path: db_path.clone(), detail })?;
    recover(&mut state)?;
    // No attempt runs now: whatever is under work/ is left by attempts that ended.
    if !config.keep_workdirs {
        container::remove_workdir(&dir.join("work"));
    }
    state.commit().map_err(|source| EngineError::Db { path: db_path, source })?;
    Ok((lock, Arc::new(Shared::new(state))))
}

fn settings(config: &EngineConfig) -> Settings {
    let (passed_env, missing) = container::resolve_pass_env(&config.pass_env, |n| std::env::var(n).ok());
    if !config.pass_env.is_empty() {
        let names: Vec<&str> = passed_env.iter().map(|(k, _)| k.as_str()).collect();
        tracing::info!(
            passed = %names.join(", "),
            not_set = %missing.join(", "),
            "jobs get these host variables (pass_env) and nothing else of the engine's environment"
        );
    }
    let limits =
        cgroup::Limits::select(cgroup::own_group().as_deref(), &format!("batchfan-{}", std::process::id()));
    tracing::info!("limits in force: {}", limits.describe());
    let isolation = std::env::var_os(container::ISOLATION_OFF_FOR_BENCH).is_none();
    if !isolation {
        tracing::warn!(
            "{} is set: jobs inherit the engine's environment and directory, no memory limit (benchmark only)",
            container::ISOLATION_OFF_FOR_BENCH
        );
    }
    let (path_dirs, child_path) = container::search_path(&config.path_prefix, &passed_env);
    Settings {
        state_dir: config.state_dir.clone(),
        queue_name: config.queue_name.clone(),
        ce_name: config.ce_name.clone(),
        cap_mcpu: super::state::mcpu(config.vcpus),
        cap_mem: config.memory_mib,
        time_scale: config.time_scale,
        base_env: config.base_env.clone(),
        passed_env,
        path_dirs,
        child_path,
        keep_workdirs: config.keep_workdirs,
        workdirs: container::WorkdirPool::new(&config.state_dir),
        limits,
        isolation,
        forks: super::forks::ForkServers::new(
            config.fork_servers && !super::forks::ForkServers::switched_off(),
        ),
    }
}

impl State {
    /// Rebuilds the in-memory model from stored rows.
    fn restore(&mut self, jobs: Vec<JobRow>, units: Vec<UnitRow>) -> Result<(), String> {
        let mut rows = units.into_iter().peekable();
        for row in jobs {
            let j = self.jobs.len() as u32;
            let first = self.units.len() as u32;
            let deps = self.resolve_deps(&row.request).map_err(|e| format!("job {}: {e}", row.id))?;
            let mut counts = [0u32; 7];
            let (mut started_at, mut stopped_at) = (None::<i64>, None::<i64>);
            for index in 0..row.request.array_size.unwrap_or(1) {
                let unit = rows
                    .next_if(|u| u.seq == row.seq && u.idx == index)
                    .ok_or_else(|| format!("job {} has no stored unit {index}", row.id))?;
                counts[unit.status as usize] += 1;
                started_at = min_some(started_at, unit.started_at);
                stopped_at = stopped_at.max(unit.stopped_at);
                let run = unit.run.map(|r| {
                    let stored = Run {
                        token: 0,
                        attempt: r.attempt,
                        log: r.log,
                        started_at: r.started_at,
                        pid: r.pid,
                        pid_start: r.pid_start,
                        stop: None,
                    };
                    Box::new(stored)
                });
                self.units.push(Unit {
                    job: j,
                    index,
                    status: unit.status,
                    reason: unit.reason,
                    started_at: unit.started_at,
                    stopped_at: unit.stopped_at,
                    attempts: unit.attempts,
                    counted: unit.counted,
                    waiting: 0,
                    run,
                    dirty: false,
                });
            }
            let size = row.request.array_size;
            let status = match size {
                Some(_) => parent_status_of(&counts),
                None => self.unit(first).status,
            };
            self.by_id.insert(row.id.clone(), j);
            self.by_name.entry((row.queue.clone(), row.request.job_name.to_lowercase())).or_default().push(j);
            self.jobs.push(Job {
                seq: row.seq,
                id: row.id,
                queue: row.queue,
                created_at: row.created_at,
                first,
                size,
                mcpu: super::state::mcpu(row.request.container.vcpus),
                mem: row.request.container.memory_mib,
                sequential: row.request.depends_on.iter().any(|d| d.kind == DependencyKind::Sequential),
                deps,
                dependents: Default::default(),
                counts,
                status,
                reason: row.reason,
                started_at,
                stopped_at: if status.is_terminal() { stopped_at } else { None },
                dirty: false,
                new: false,
                request: row.request,
            });
            self.link(j);
            self.next_seq = row.seq + 1;
        }
        if let Some(extra) = rows.next() {
            return Err(format!("stored unit {}/{} belongs to no job", extra.seq, extra.idx));
        }
        let mut waiting = Vec::new();
        for u in 0..self.units.len() as UnitIx {
            match self.unit(u).status {
                JobStatus::Runnable => {
                    self.runnable.insert(u);
                }
                JobStatus::Starting | JobStatus::Running => {
                    let (mcpu, mem) = (self.job_of(u).mcpu, self.job_of(u).mem);
                    self.free_mcpu = self.free_mcpu.saturating_sub(mcpu);
                    self.free_mem = self.free_mem.saturating_sub(mem);
                    self.active.insert(u);
                }
                JobStatus::Submitted | JobStatus::Pending => waiting.push(u),
                JobStatus::Succeeded | JobStatus::Failed => {}
            }
        }
        for u in waiting {
            self.settle(u);
        }
        self.propagate();
        Ok(())
    }
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Kills what is left of attempts the previous engine ran, waits until it is
/// gone, then records each attempt as lost and re-queues its job.
fn recover(state: &mut State) -> Result<(), EngineError> {
    let mut lost: Vec<UnitIx> = state.active.iter().copied().collect();
    if lost.is_empty() {
        return Ok(());
    }
    lost.sort_unstable();
    let ids: HashMap<String, UnitIx> = lost.iter().map(|&u| (state.unit_id(u), u)).collect();
    let mut victims: Vec<(u32, u64, UnitIx)> = Vec::new();
    for &u in &lost {
        let Some(run) = state.unit(u).run.as_deref() else { continue };
        if let (Some(pid), Some(start)) = (run.pid, run.pid_start) {
            if sys::alive(pid, start) {
                let _ = sys::signal_group(pid, libc::SIGKILL);
                let _ = sys::signal_process(pid, libc::SIGKILL);
                victims.push((pid, start, u));
            }
        }
    }
    let me = std::process::id();
    for pid in sys::all_pids() {
        if pid == me {
            continue;
        }
        let Some(&u) = sys::environ_var(pid, env::AWS_BATCH_JOB_ID).and_then(|id| ids.get(&id)) else {
            continue;
        };
        let Some(stat) = sys::proc_stat(pid) else { continue };
        let _ = sys::signal_process(pid, libc::SIGKILL);
        if stat.pgid == pid {
            let _ = sys::signal_group(pid, libc::SIGKILL);
        }
        victims.push((pid, stat.start_time, u));
    }
    let deadline = Instant::now() + LEFTOVER_WAIT;
    loop {
        victims.retain(|&(pid, start, _)| sys::alive(pid, start));
        let Some(&(pid, _, u)) = victims.first() else { break };
        if Instant::now() >= deadline {
            return Err(EngineError::Leftover { pid, job_id: state.unit_id(u) });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let now = now_ms();
    for u in lost {
        state.record_lost(u, now);
    }
    Ok(())
}

impl State {
    /// Records unit `u`'s attempt as lost with its host: counted and judged by
    /// the retry rules if it was RUNNING, re-queued uncounted if still STARTING.
    fn record_lost(&mut self, u: UnitIx, now: i64) {
        let run = self.unit_mut(u).run.take();
        let id = self.unit_id(u);
        if self.unit(u).status != JobStatus::Running {
            tracing::info!(job_id = %id, "re-queueing an attempt the previous engine was starting");
            self.apply_or_log(u, Event::HostLost { retry: true }, None);
            return;
        }
        let attempt_no = run.as_ref().map_or(self.unit(u).counted + 1, |r| r.attempt);
        let attempt = Attempt {
            exit_code: None,
            reason: None,
            status_reason: Some(HOST_LOST.into()),
            log_stream_name: run.as_ref().map(|r| r.log.clone()),
            started_at: run.as_ref().filter(|r| r.pid.is_some()).map(|r| r.started_at),
            stopped_at: Some(now),
        };
        let retry = self.should_retry(u, attempt_no, &attempt);
        let unit = self.unit_mut(u);
        unit.counted = attempt_no;
        unit.attempts.push(attempt);
        tracing::info!(job_id = %id, attempt = attempt_no, retry, "an attempt the previous engine ran was lost");
        self.apply_or_log(u, Event::HostLost { retry }, Some(HOST_LOST.into()));
    }
}
