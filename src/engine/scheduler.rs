//! The engine thread and its scheduling loop.
//!
//! One long-lived thread runs a current-thread tokio runtime and a loop of
//! ticks. Each tick, under the state lock: apply spawn results, reap exited
//! processes (a SIGCHLD wakes the loop), fire due timers, notify dependents, choose what starts, **commit**
//! everything in one transaction, publish the events. Only then are the chosen
//! units handed to the spawner threads, so a job's success is on disk before
//! any dependent starts.

use std::{
    collections::{HashMap, HashSet},
    os::unix::process::ExitStatusExt,
    process::ExitStatus,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    signal::unix::{signal, Signal, SignalKind},
    sync::{mpsc, oneshot},
};

use super::{
    executor::{Executor, ExitReport, Launch, Spawned},
    output, recovery,
    state::{Shared, State, UnitIx},
    sys, EngineConfig, EngineError, ShutdownMode,
};

/// Most units started per tick, so exits are not kept waiting behind spawns.
const MAX_STARTS_PER_TICK: usize = 64;
/// How long `Abandon` waits for killed processes to be reaped.
const ABANDON_WAIT: Duration = Duration::from_secs(5);
/// How soon a failed commit is retried.
const COMMIT_RETRY: Duration = Duration::from_millis(500);
/// How often exits are polled for when SIGCHLD cannot be watched.
const POLL_EXITS: Duration = Duration::from_millis(20);

/// What the engine thread reacts to.
#[derive(Debug)]
pub(crate) enum Input {
    /// Something changed (a submit, a cancel): run a tick.
    Wake,
    /// A spawner thread started a process (or could not).
    Spawned(Spawned),
    /// The output pipe of process `pid` is closed and copied to its log.
    Drained(u32),
    /// Stop; `done` is told once the state directory is released.
    Shutdown { mode: ShutdownMode, done: oneshot::Sender<()> },
}

type Ready = oneshot::Sender<Result<Arc<Shared>, EngineError>>;

/// The engine thread: boot (lock, load, recover), then schedule until shutdown.
pub(crate) fn thread_main(
    config: EngineConfig,
    inputs: mpsc::UnboundedReceiver<Input>,
    exits: mpsc::UnboundedSender<Input>,
    ready: Ready,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(source) => {
            let path = config.state_dir.clone();
            let _ = ready.send(Err(EngineError::Io { action: "start the engine runtime for", path, source }));
            return;
        }
    };
    let (lock, shared) = match recovery::boot(&config) {
        Ok(booted) => booted,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let settings = shared.lock().settings.clone();
    let pumps = exits.clone();
    let executor = match Executor::start(settings, exits) {
        Ok(executor) => executor,
        Err(source) => {
            shared.lock().close();
            let path = config.state_dir.clone();
            let _ = ready.send(Err(EngineError::Io { action: "start spawner threads for", path, source }));
            return;
        }
    };
    if ready.send(Ok(shared.clone())).is_err() {
        shared.lock().close();
        executor.stop();
        return;
    }
    tracing::info!(state_dir = %config.state_dir.display(), "local engine open");
    let (waiters, executor) = runtime.block_on(Scheduler::new(shared.clone(), inputs, pumps, executor).run());
    executor.stop();
    shared.lock().close();
    if let Some(groups) = shared.lock().settings.limits.cgroups() {
        groups.close();
    }
    drop(runtime);
    drop(lock);
    tracing::info!(state_dir = %config.state_dir.display(), "local engine stopped");
    for done in waiters {
        let _ = done.send(());
    }
}

struct Scheduler {
    shared: Arc<Shared>,
    inputs: mpsc::UnboundedReceiver<Input>,
    executor: Executor,
    /// Launches held back because their tick's commit failed.
    deferred: Vec<Launch>,
    /// Launches whose start has not been reported yet.
    in_flight: usize,
    /// Running processes (pid → unit and attempt token), reaped every tick.
    children: HashMap<u32, (UnitIx, u64)>,
    /// Exited processes whose output is still being copied: recorded when it is.
    draining: HashMap<u32, Exited>,
    /// Processes whose output was copied before their exit was reaped.
    drained: HashSet<u32>,
    /// Where the output pumps say they are done.
    pumps: mpsc::UnboundedSender<Input>,
    stop: Option<ShutdownMode>,
    abandon_deadline: Option<Instant>,
    waiters: Vec<oneshot::Sender<()>>,
    wake_at: Option<Instant>,
}

impl Scheduler {
    fn new(
        shared: Arc<Shared>,
        inputs: mpsc::UnboundedReceiver<Input>,
        pumps: mpsc::UnboundedSender<Input>,
        executor: Executor,
    ) -> Self {
        Scheduler {
            shared,
            inputs,
            executor,
            deferred: Vec::new(),
            in_flight: 0,
            children: HashMap::new(),
            draining: HashMap::new(),
            drained: HashSet::new(),
            pumps,
            stop: None,
            abandon_deadline: None,
            waiters: Vec::new(),
            wake_at: None,
        }
    }

    async fn run(mut self) -> (Vec<oneshot::Sender<()>>, Executor) {
        let mut sigchld = match signal(SignalKind::child()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGCHLD; polling for exited processes instead");
                None
            }
        };
        // The first tick runs at once: loaded jobs may be runnable.
        let mut first = true;
        loop {
            let mut batch = Vec::new();
            if !std::mem::take(&mut first) {
                let poll =
                    (sigchld.is_none() && !self.children.is_empty()).then(|| Instant::now() + POLL_EXITS);
                let wake_at = earliest(earliest(self.wake_at, self.abandon_deadline), poll);
                tokio::select! {
                    input = self.inputs.recv() => match input {
                        Some(input) => batch.push(input),
                        // Unreachable while the spawners hold a sender; stop as if dropped.
                        None => self.stop = Some(ShutdownMode::Abandon),
                    },
                    () = child_exited(&mut sigchld) => {}
                    () = sleep_until(wake_at) => {}
                }
            }
            while let Ok(input) = self.inputs.try_recv() {
                batch.push(input);
            }
            let launches = self.tick(batch);
            if self.finished() {
                return (self.waiters, self.executor);
            }
            self.in_flight += launches.len();
            for launch in launches {
                self.executor.launch(launch);
            }
        }
    }

    fn tick(&mut self, batch: Vec<Input>) -> Vec<Launch> {
        let shared = self.shared.clone();
        let mut state = shared.lock();
        for input in batch {
            match input {
                Input::Wake => {}
                Input::Spawned(mut spawned) => {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    if let Spawned::Started { unit, token, pid, output, .. } = &mut spawned {
                        self.children.insert(*pid, (*unit, *token));
                        if let Some((pipe, log)) = output.take() {
                            tokio::spawn(output::pump(pipe, log, *pid, self.pumps.clone()));
                        }
                    }
                    state.on_spawned(spawned);
                }
                Input::Drained(pid) => match self.draining.remove(&pid) {
                    Some(exited) => self.record(&mut state, exited),
                    None => {
                        self.drained.insert(pid);
                    }
                },
                Input::Shutdown { mode, done } => {
                    self.waiters.push(done);
                    self.begin_stop(mode, &mut state);
                }
            }
        }
        self.reap(&mut state);
        if self.stop == Some(ShutdownMode::Abandon) {
            // Also catches processes whose start was reported after the shutdown.
            state.kill_all();
        }
        state.fire_timers(Instant::now());
        state.propagate();
        let mut launches = std::mem::take(&mut self.deferred);
        if self.stop.is_none() {
            launches.extend(state.select(MAX_STARTS_PER_TICK));
        }
        let draining = self.draining.values().map(|e| e.deadline).min();
        self.wake_at = earliest(state.next_deadline(), draining);
        match state.commit() {
            Ok(()) => state.events.flush(),
            Err(e) => {
                tracing::error!(error = %e, "cannot save engine state; retrying before starting anything");
                self.deferred = std::mem::take(&mut launches);
                self.wake_at = earliest(self.wake_at, Some(Instant::now() + COMMIT_RETRY));
            }
        }
        launches
    }

    /// Reaps every child that exited and records its attempt once its output
    /// is in its log ([`output`]): at once if it is, else when its pump says so
    /// or [`output::DRAIN_WAIT`] has passed. Abandoned attempts stay RUNNING
    /// on disk: the next open re-queues them.
    fn reap(&mut self, state: &mut State) {
        let now = Instant::now();
        let mut exited = Vec::new();
        self.children.retain(|&pid, &mut (unit, token)| {
            let report = match sys::try_reap(pid) {
                Ok(None) => return true,
                Ok(Some(raw)) => ExitReport::from_status(Ok(ExitStatus::from_raw(raw))),
                Err(e) => ExitReport::from_status(Err(e)),
            };
            // The container is gone when its main process is: so is the rest of its group.
            let _ = sys::signal_group(pid, libc::SIGKILL);
            exited.push(Exited { pid, unit, token, report, deadline: now + output::DRAIN_WAIT });
            false
        });
        for exited in exited {
            if self.drained.remove(&exited.pid) {
                self.record(state, exited);
            } else {
                self.draining.insert(exited.pid, exited);
            }
        }
        let late: Vec<u32> = self.draining.values().filter(|e| e.deadline <= now).map(|e| e.pid).collect();
        for pid in late {
            if let Some(exited) = self.draining.remove(&pid) {
                tracing::warn!(
                    pid,
                    "a process outside the job's group still holds its output open; recording the end now"
                );
                self.record(state, exited);
            }
        }
    }

    /// Records an exited attempt (unless abandoning: it stays RUNNING on disk).
    fn record(&self, state: &mut State, exited: Exited) {
        if self.stop != Some(ShutdownMode::Abandon) {
            state.on_exit(exited.unit, exited.token, exited.report);
        }
    }

    fn begin_stop(&mut self, mode: ShutdownMode, state: &mut State) {
        match mode {
            ShutdownMode::Drain => {
                self.stop.get_or_insert(ShutdownMode::Drain);
            }
            ShutdownMode::Abandon if self.stop != Some(ShutdownMode::Abandon) => {
                self.stop = Some(ShutdownMode::Abandon);
                self.abandon_deadline = Some(Instant::now() + ABANDON_WAIT);
                state.kill_all();
            }
            ShutdownMode::Abandon => {}
        }
    }

    fn finished(&self) -> bool {
        match self.stop {
            None => false,
            Some(ShutdownMode::Drain) => {
                self.children.is_empty() && self.draining.is_empty() && self.in_flight == 0
            }
            Some(ShutdownMode::Abandon) => {
                (self.children.is_empty() && self.in_flight == 0)
                    || self.abandon_deadline.is_some_and(|d| Instant::now() >= d)
            }
        }
    }
}

/// A process that exited, waiting for its output to be copied.
struct Exited {
    pid: u32,
    unit: UnitIx,
    token: u64,
    report: ExitReport,
    deadline: Instant,
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn child_exited(sigchld: &mut Option<Signal>) {
    match sigchld {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl State {
    /// Commits what is left and closes the database; the API answers
    /// "shut down" from now on.
    pub(crate) fn close(&mut self) {
        if let Err(e) = self.commit() {
            tracing::error!(error = %e, "cannot save engine state at shutdown");
        }
        self.events.flush();
        self.store = None;
    }
}
