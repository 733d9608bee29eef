//! Attempts: choosing what starts (FIFO within capacity), what a start or an
//! exit means for the job (retry rules, timeouts, terminate), and the signals
//! that stop an attempt.

use std::time::{Duration, Instant};

use super::{
    container,
    executor::{ExitReport, Launch, Spawned},
    memory::OUT_OF_MEMORY,
    state::{now_ms, Run, State, Stop, Timer, TimerKind, UnitIx},
    sys,
};
use crate::batch::{fsm::Event, retry::AttemptOutcome, Attempt, KILL_GRACE_SECS};

/// Status reason of an attempt whose process ran and exited.
pub(crate) const EXITED: &str = "Essential container in task exited";
/// Status reason of an attempt killed for running past its timeout.
pub(crate) const TIMED_OUT: &str = "Job attempt duration exceeded timeout";
/// Status reason of an attempt whose process could not start.
pub(crate) const FAILED_TO_START: &str = "Task failed to start";

impl State {
    fn scaled(&self, secs: u64) -> Duration {
        Duration::from_secs_f64(secs as f64 * self.settings.time_scale)
    }

    /// Moves up to `max` runnable units to STARTING, in FIFO order, while the
    /// first one fits the free capacity (per queue, with capacity pools:
    /// [`State::next_startable`]), and returns what to spawn.
    pub(crate) fn select(&mut self, max: usize) -> Vec<Launch> {
        let mut out = Vec::new();
        let (mut after, mut blocked) = (None, std::collections::BTreeSet::new());
        while out.len() < max {
            let Some(u) = self.next_startable(after, &mut blocked) else { break };
            after = Some(u);
            let job = self.job_of(u);
            let command = job.request.container.command.clone();
            let token = self.next_token;
            self.next_token += 1;
            let attempt = self.unit(u).counted + 1;
            let id = self.unit_id(u);
            let log = super::log_path(&self.settings.state_dir, &id, attempt);
            let cgroup = self.attempt_group(u, &id, attempt);
            let workdir = self.attempt_workdir(&id, attempt);
            let env = self.container_env(u, id, attempt, &workdir);
            let launch = Launch { unit: u, token, command, env, log: log.clone(), workdir, cgroup };
            let log = log.to_string_lossy().into_owned();
            let run =
                Run { token, attempt, log, started_at: now_ms(), pid: None, pid_start: None, stop: None };
            self.unit_mut(u).run = Some(Box::new(run));
            if let Err(e) = self.apply(u, Event::Scheduled, None) {
                tracing::error!(job_id = %self.unit_id(u), error = %e, "engine bug: runnable unit cannot start");
                self.runnable.remove(&u);
                self.pools.release(u);
                self.unit_mut(u).run = None;
                continue;
            }
            out.push(launch);
        }
        out
    }

    /// Records how a spawn went: RUNNING (with its timeout armed), or a failed
    /// launch judged by the retry rules.
    pub(crate) fn on_spawned(&mut self, spawned: Spawned) {
        match spawned {
            Spawned::Started { unit, token, pid, pid_start, output: _ } => {
                let Some(run) = self.current_run(unit, token) else {
                    tracing::error!(pid, "engine bug: a process started for no attempt; killing it");
                    let _ = sys::signal_group(pid, libc::SIGKILL);
                    return;
                };
                run.pid = Some(pid);
                run.pid_start = pid_start;
                run.started_at = now_ms();
                let stopping = run.stop.is_some();
                self.apply_or_log(unit, Event::Started, None);
                self.arm_memory_sweep();
                if let Some(secs) = self.job_of(unit).request.timeout_seconds {
                    let at = Instant::now() + self.scaled(secs);
                    self.add_timer(Timer { at, unit, token, kind: TimerKind::Timeout });
                }
                if stopping {
                    self.send_term(unit);
                }
            }
            Spawned::Failed { unit, token, reason } => {
                let Some(run) = self.current_run(unit, token).map(|r| r.clone()) else { return };
                tracing::warn!(job_id = %self.unit_id(unit), %reason, "attempt could not start");
                let attempt = Attempt {
                    exit_code: None,
                    reason: Some(reason.clone()),
                    status_reason: Some(FAILED_TO_START.into()),
                    log_stream_name: Some(run.log),
                    started_at: None,
                    stopped_at: Some(now_ms()),
                };
                let (retry, reason) = match run.stop {
                    Some(Stop::Terminate(r)) => (false, r),
                    _ => (self.should_retry(unit, run.attempt, &attempt), reason),
                };
                self.finish_attempt(unit, run.attempt, attempt);
                self.apply_or_log(unit, Event::LaunchFailed { retry }, Some(reason));
                self.end_workdir(unit, run.attempt);
                self.end_cgroup(unit, run.attempt);
            }
        }
    }

    /// Records an exited process: SUCCEEDED, or a failure judged by the retry
    /// rules (never retried after a timeout or a terminate).
    pub(crate) fn on_exit(&mut self, u: UnitIx, token: u64, report: ExitReport) {
        let Some(run) = self.current_run(u, token).map(|r| r.clone()) else { return };
        let mut attempt = Attempt {
            exit_code: report.exit_code,
            reason: report.reason,
            status_reason: Some(EXITED.into()),
            log_stream_name: Some(run.log),
            started_at: Some(run.started_at),
            stopped_at: Some(now_ms()),
        };
        // The kernel's OOM kill (cgroup v2 limits) is reported like the watchdog's.
        let stop = if self.end_cgroup(u, run.attempt) { Some(Stop::OutOfMemory) } else { run.stop };
        let event = match stop {
            Some(Stop::Timeout) => {
                attempt.status_reason = Some(TIMED_OUT.into());
                Event::Exited { success: false, retry: false }
            }
            Some(Stop::Terminate(reason)) => {
                attempt.status_reason = Some(reason);
                Event::Exited { success: false, retry: false }
            }
            Some(Stop::OutOfMemory) => {
                // Killed by SIGKILL: exit code 137, as AWS reports an OOM kill.
                attempt.exit_code = Some(128 + libc::SIGKILL);
                attempt.reason = Some(OUT_OF_MEMORY.into());
                Event::Exited { success: false, retry: self.should_retry(u, run.attempt, &attempt) }
            }
            None if attempt.exit_code == Some(0) => Event::Exited { success: true, retry: false },
            None => Event::Exited { success: false, retry: self.should_retry(u, run.attempt, &attempt) },
        };
        let reason = attempt.status_reason.clone();
        self.finish_attempt(u, run.attempt, attempt);
        self.apply_or_log(u, event, reason);
        self.end_workdir(u, run.attempt);
    }

    /// Removes the working directory of unit `u`'s ended attempt, unless kept.
    fn end_workdir(&self, u: UnitIx, attempt_no: u32) {
        if self.settings.isolation && !self.settings.keep_workdirs {
            self.settings.workdirs.release(&container::workdir(
                &self.settings.state_dir,
                &self.unit_id(u),
                attempt_no,
            ));
        }
    }

    fn current_run(&mut self, u: UnitIx, token: u64) -> Option<&mut Run> {
        self.unit_mut(u).run.as_deref_mut().filter(|r| r.token == token)
    }

    pub(super) fn should_retry(&self, u: UnitIx, attempt_no: u32, attempt: &Attempt) -> bool {
        let outcome = AttemptOutcome {
            exit_code: attempt.exit_code,
            reason: attempt.reason.as_deref(),
            status_reason: attempt.status_reason.as_deref(),
        };
        self.job_of(u).request.retry_strategy.should_retry(attempt_no, outcome)
    }

    fn finish_attempt(&mut self, u: UnitIx, attempt_no: u32, attempt: Attempt) {
        let unit = self.unit_mut(u);
        unit.run = None;
        unit.counted = attempt_no;
        unit.attempts.push(attempt);
    }

    /// Fires every timer that is due: a timeout stops the attempt, a kill SIGKILLs it.
    pub(crate) fn fire_timers(&mut self, now: Instant) {
        while let Some(std::cmp::Reverse(t)) = self.timers.peek().copied() {
            if t.at > now {
                break;
            }
            self.timers.pop();
            if t.kind == TimerKind::MemorySweep {
                self.sweep_memory();
                continue;
            }
            let Some(pid) = self.current_run(t.unit, t.token).map(|r| r.pid) else { continue };
            match t.kind {
                TimerKind::Timeout => {
                    tracing::info!(job_id = %self.unit_id(t.unit), "attempt timed out: SIGTERM");
                    self.stop_run(t.unit, Stop::Timeout);
                }
                TimerKind::Kill => {
                    if let Some(pid) = pid {
                        let _ = sys::signal_group(pid, libc::SIGKILL);
                    }
                }
                TimerKind::MemorySweep => {}
            }
        }
    }

    /// Stops unit `u`'s attempt (timeout or terminate): SIGTERM to its process
    /// group, SIGKILL after the grace. The first reason given wins.
    pub(crate) fn stop_run(&mut self, u: UnitIx, stop: Stop) {
        let Some(run) = self.unit_mut(u).run.as_deref_mut() else { return };
        if run.stop.is_some() {
            return;
        }
        run.stop = Some(stop);
        if run.pid.is_some() {
            self.send_term(u);
        }
        // Not spawned yet: `on_spawned` sends SIGTERM as soon as it has a pid.
    }

    fn send_term(&mut self, u: UnitIx) {
        let Some((pid, token)) = self.unit(u).run.as_ref().and_then(|r| Some((r.pid?, r.token))) else {
            return;
        };
        let _ = sys::signal_group(pid, libc::SIGTERM);
        let at = Instant::now() + self.scaled(KILL_GRACE_SECS);
        self.add_timer(Timer { at, unit: u, token, kind: TimerKind::Kill });
    }

    /// SIGKILLs every running process group (shutdown with Abandon).
    pub(crate) fn kill_all(&mut self) {
        for &u in &self.active {
            if let Some(pid) = self.unit(u).run.as_ref().and_then(|r| r.pid) {
                let _ = sys::signal_group(pid, libc::SIGKILL);
            }
        }
    }
}
