//! The local engine: AWS Batch's job model run on one machine.
//!
//! [`LocalEngine`] implements the [`Batch`](crate::batch::Batch) port with the
//! same semantics as AWS Batch (states, array children, `N_TO_N` and
//! `SEQUENTIAL` dependencies, the dependency-failure cascade, retry rules,
//! timeouts, cancel and terminate), running each attempt's `container.command`
//! as a local process in its own process group.
//!
//! ```no_run
//! use batchfan::engine::{EngineConfig, LocalEngine, ShutdownMode};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = LocalEngine::open(EngineConfig::new("/tmp/batchfan-state")).await?;
//! let mut events = engine.subscribe();
//! // engine.submit_job(...) through the `Batch` trait, then watch `events`.
//! # let _ = events.try_recv();
//! engine.shutdown(ShutdownMode::Drain).await;
//! # Ok(()) }
//! ```
//!
//! # Architecture
//!
//! - **model** and **state**: an in-memory model of every job; each job has one
//!   *unit* (a plain job) or one unit per array child. Every status change goes
//!   through [`crate::batch::fsm::transition`] in one place (`State::apply`),
//!   which also keeps capacity, the FIFO runnable queue, array parent status and
//!   events in step.
//! - **deps**: each job indexes its dependents, so a finished unit notifies
//!   exactly the units waiting on it (no rescans).
//! - **scheduler**: one long-lived thread runs a loop of ticks: apply spawn
//!   results, process exits and timers, commit every change of the tick in one
//!   SQLite transaction, publish the events, then hand runnable units to the
//!   executor (so a success is committed before any dependent starts).
//! - **executor** and **spawn**: two long-lived spawner threads start processes
//!   without forking the engine (`clone(CLONE_VM | CLONE_VFORK)`: own process
//!   group, parent-death signal, stdout+stderr appended to the attempt's log);
//!   the scheduler reaps them on SIGCHLD; **attempts** turns starts, exits and
//!   timeouts into job transitions by the retry rules.
//! - **forks**: array children of batchfan's Rust jobs start as forks of a
//!   fork server (the job binary stopped at `run_job`), not an exec each.
//! - **output**: an attempt's stdout and stderr are a pipe the engine copies
//!   to its log file (created at the first byte); its end is recorded once
//!   the pipe is drained.
//! - **container** and **memory**: what makes a process look like a container:
//!   exactly the container's environment (nothing inherited from the engine), a
//!   fresh private working directory per attempt, and the `memory` limit (a
//!   process group over it is killed as AWS's OOM killer would).
//! - **cgroup**: where the engine can create cgroup v2 groups, `memory.max`
//!   and `cpu.max` per attempt instead of the memory watchdog.
//! - **store** and **recovery**: SQLite persistence and, on `open`, recording
//!   attempts a dead engine left running as lost (they count, as on AWS) and
//!   retrying them by the retry rules, after killing what is left of them.

mod admit;
mod api;
mod attempts;
mod cgroup;
mod container;
mod deps;
mod events;
mod executor;
pub(crate) mod forks;
mod lock;
mod memory;
mod model;
mod output;
pub mod peek;
mod pools;
mod recovery;
mod scheduler;
mod spawn;
mod state;
mod store;
mod sys;
mod views;

/// A random UUID (version 4) string: job ids, event ids.
pub(crate) use self::admit::new_job_id as new_uuid;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio::sync::{mpsc, oneshot};

pub use self::pools::{CapacityPools, PoolEnvironment, PoolQueue};
use self::{
    scheduler::Input,
    state::{Settings, Shared},
};
use crate::batch::JobStateChange;

/// Where the engine keeps its state and how much it may run at once.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// `engine.sqlite`, `engine.lock` and `logs/` live here.
    pub state_dir: PathBuf,
    /// vCPU capacity; default: the machine's available parallelism.
    pub vcpus: f64,
    /// Memory capacity in MiB; default: `MemTotal` from `/proc/meminfo`.
    pub memory_mib: u64,
    /// `AWS_BATCH_JQ_NAME` of every job, and the queue of jobs submitted without one.
    pub queue_name: String,
    /// `AWS_BATCH_CE_NAME` of every job.
    pub ce_name: String,
    /// Directories searched before the engine's `PATH` for `command[0]`.
    pub path_prefix: Vec<PathBuf>,
    /// Environment added to every job's (batchfan's own pointers, e.g. the state directory).
    pub base_env: BTreeMap<String, String>,
    /// Host variables passed on to every job, deliberately (e.g. `AWS_PROFILE`): a job
    /// sees nothing else of the engine's environment. `PATH` here passes the host's
    /// `PATH` instead of the container default.
    pub pass_env: Vec<String>,
    /// Keep each attempt's working directory (`{state_dir}/work/...`) after it ends, for debugging.
    pub keep_workdirs: bool,
    /// Multiplies timeouts and the kill grace (tests use e.g. 0.01).
    pub time_scale: f64,
    /// Start array children of batchfan's Rust jobs by forking a fork server
    /// instead of exec'ing the binary each time (see the `forks` module); on
    /// unless `BATCHFAN_FORK_SERVERS=off` is in the engine's environment.
    pub fork_servers: bool,
}

impl EngineConfig {
    /// A configuration with the machine's capacity and queue/CE names `local`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        let vcpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        EngineConfig {
            state_dir: state_dir.into(),
            vcpus,
            memory_mib: sys::mem_total_mib().unwrap_or(4096),
            queue_name: "local".into(),
            ce_name: "local".into(),
            path_prefix: Vec::new(),
            base_env: BTreeMap::new(),
            pass_env: Vec::new(),
            keep_workdirs: false,
            time_scale: 1.0,
            fork_servers: true,
        }
    }

    fn check(&self) -> Result<(), EngineError> {
        let bad = |msg: String| Err(EngineError::Config(msg));
        if !(self.vcpus.is_finite() && self.vcpus >= 0.001) {
            return bad(format!("vcpus {} must be a positive number: set at least 0.001", self.vcpus));
        }
        if self.memory_mib == 0 {
            return bad("memory_mib 0 must be positive: set the MiB jobs may use".into());
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return bad(format!(
                "time_scale {} must be a positive number: use 1.0 outside tests",
                self.time_scale
            ));
        }
        if let Some(bad_name) = self.pass_env.iter().find(|n| !container::is_env_name(n)) {
            return bad(format!(
                "pass_env {bad_name:?} is not a variable name: use letters, digits and '_', not starting with a digit"
            ));
        }
        if self.queue_name.is_empty() || self.ce_name.is_empty() {
            return bad("queue_name and ce_name must not be empty: the default is \"local\"".into());
        }
        Ok(())
    }
}

/// How [`LocalEngine::shutdown`] treats running processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Start nothing new and wait for running processes to finish.
    Drain,
    /// Kill running process groups now; after the next `open` each such attempt
    /// counts as lost with its host and is retried by the job's retry rules.
    Abandon,
}

/// An error opening the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Another engine holds the state directory's lock.
    #[error(
        "state directory {dir} is in use by engine process {pid}: stop it, or use another --state directory"
    )]
    Locked { dir: PathBuf, pid: String },
    /// The configuration is unusable.
    #[error("invalid engine configuration: {0}")]
    Config(String),
    /// A file or directory could not be used.
    #[error("cannot {action} {path}: {source}: check the path and its permissions, or use another --state directory")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed on the engine database.
    #[error("engine database {path}: {source}: if the file is damaged, move it away or use another --state directory")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The engine database holds something this engine cannot read.
    #[error("engine database {path} is unreadable: {detail}: move it away or use another --state directory")]
    Corrupt { path: PathBuf, detail: String },
    /// A process left by a dead engine could not be stopped, so its job cannot safely re-run.
    #[error("process {pid} of job {job_id}, left by a previous engine, is still alive after SIGKILL: stop it, then open the engine again")]
    Leftover { pid: u32, job_id: String },
    /// The engine thread stopped before it finished opening.
    #[error("the engine thread stopped while opening {0}: see the logs above")]
    Stopped(PathBuf),
}

/// A handle to a running local engine; clones share it. Dropping the last
/// handle stops the engine as [`ShutdownMode::Abandon`] does, without waiting.
#[derive(Clone)]
pub struct LocalEngine {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    input: mpsc::UnboundedSender<Input>,
    settings: Arc<Settings>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let (done, _) = oneshot::channel();
        let _ = self.input.send(Input::Shutdown { mode: ShutdownMode::Abandon, done });
    }
}

impl std::fmt::Debug for LocalEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEngine").field("state_dir", &self.inner.settings.state_dir).finish()
    }
}

impl LocalEngine {
    /// Opens (or creates) the engine in `config.state_dir`: takes the lock,
    /// loads every job, re-queues attempts a dead engine left running (after
    /// killing what is left of their processes), and starts scheduling.
    pub async fn open(config: EngineConfig) -> Result<LocalEngine, EngineError> {
        config.check()?;
        let state_dir = config.state_dir.clone();
        let (input, inputs) = mpsc::unbounded_channel();
        let (ready, opened) = oneshot::channel();
        let exits = input.clone();
        std::thread::Builder::new()
            .name("batchfan-engine".into())
            .spawn(move || scheduler::thread_main(config, inputs, exits, ready))
            .map_err(|source| EngineError::Io {
                action: "start the engine thread for",
                path: state_dir.clone(),
                source,
            })?;
        let shared = opened.await.map_err(|_| EngineError::Stopped(state_dir))??;
        let settings = shared.lock().settings.clone();
        Ok(LocalEngine { inner: Arc::new(Inner { shared, input, settings }) })
    }

    /// Every status change of every job (parents and children), in order per job,
    /// from now on. Sent after the change is committed.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<JobStateChange> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner.shared.lock().events.subscribe(tx);
        rx
    }

    /// Stops the engine and waits until it has released the state directory.
    /// `Drain` starts nothing new and waits for running processes; `Abandon`
    /// kills running process groups now (after the next `open`, each such attempt
    /// counts as lost and is retried by the job's retry rules).
    pub async fn shutdown(&self, mode: ShutdownMode) {
        let (done, stopped) = oneshot::channel();
        if self.inner.input.send(Input::Shutdown { mode, done }).is_ok() {
            // An error means the engine thread already stopped.
            let _ = stopped.await;
        }
    }

    /// Which memory and CPU limits are in force, in one line (cgroup v2, or
    /// the memory watchdog with vCPUs not enforced, and why).
    pub fn limits_in_force(&self) -> String {
        self.inner.settings.limits.describe()
    }

    /// The log file of `attempt` (from 1) of `job_id` (`parent:index` for children).
    pub fn log_path(&self, job_id: &str, attempt: u32) -> PathBuf {
        log_path(&self.inner.settings.state_dir, job_id, attempt)
    }

    /// How many attempts fork servers have started (see the `forks` module).
    pub fn forked_starts(&self) -> u64 {
        self.inner.settings.forks.forked()
    }

    fn wake(&self) {
        let _ = self.inner.input.send(Input::Wake);
    }
}

/// `{state_dir}/logs/{job}/attempt-{n}.log`, or `.../{parent}/{index}.attempt-{n}.log` for a child.
pub fn log_path(state_dir: &Path, job_id: &str, attempt: u32) -> PathBuf {
    let logs = state_dir.join("logs");
    match job_id.split_once(':') {
        Some((parent, index)) => logs.join(parent).join(format!("{index}.attempt-{attempt}.log")),
        None => logs.join(job_id).join(format!("attempt-{attempt}.log")),
    }
}
