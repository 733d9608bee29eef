//! The engine's data: settings, jobs, their units, and the attempt in flight.
//!
//! A *unit* is what runs: a plain job's one unit, or one per array child. Units
//! of a job are contiguous in [`State::units`](super::state::State), in
//! submission order, so FIFO order is index order.

use std::{
    collections::BTreeMap, collections::HashMap, ffi::OsString, ops::Range, path::PathBuf, time::Instant,
};

use super::state::{JobIx, UnitIx};
use crate::batch::{Attempt, JobStatus, SubmitJob};

/// Settings fixed at `open`.
#[derive(Debug)]
pub(crate) struct Settings {
    pub state_dir: PathBuf,
    pub queue_name: String,
    pub ce_name: String,
    /// Capacity in milli-vCPUs.
    pub cap_mcpu: u64,
    pub cap_mem: u64,
    pub time_scale: f64,
    pub base_env: BTreeMap<String, String>,
    /// The host variables of `pass_env` that are set, with their values at `open`.
    pub passed_env: Vec<(String, String)>,
    /// `path_prefix` then the container `PATH`: where `command[0]` is looked up.
    pub path_dirs: Vec<PathBuf>,
    /// The `PATH` jobs get.
    pub child_path: OsString,
    /// Keep attempts' working directories after they end.
    pub keep_workdirs: bool,
    /// Empty working directories for re-use.
    pub workdirs: super::container::WorkdirPool,
    /// Memory and CPU limits in force: cgroup v2, or the watchdog.
    pub limits: super::cgroup::Limits,
    /// Whether attempts run isolated (always, except in the isolation benchmark:
    /// see [`super::container::ISOLATION_OFF_FOR_BENCH`]).
    pub isolation: bool,
    /// Fork servers that start batchfan's Rust jobs (see [`super::forks`]).
    pub forks: super::forks::ForkServers,
}

/// Milli-vCPUs for `vcpus` (at least 1), so capacity sums stay exact.
pub(crate) fn mcpu(vcpus: f64) -> u64 {
    ((vcpus * 1000.0).round() as u64).max(1)
}

/// A dependency resolved to engine indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dep {
    /// Standard: the whole job (an array when all its children are done).
    Whole(JobIx),
    /// Standard on one child `parent:index`.
    Child(JobIx, u32),
    /// Child i waits for child i of this array.
    NToN(JobIx),
    /// Child i waits for child i-1 of the same array.
    Sequential,
}

/// Jobs to notify when this job (or one of its children) finishes.
#[derive(Debug, Default)]
pub(crate) struct Dependents {
    pub whole: Vec<JobIx>,
    pub n_to_n: Vec<JobIx>,
    pub by_child: HashMap<u32, Vec<JobIx>>,
}

/// One submitted job.
#[derive(Debug)]
pub(crate) struct Job {
    /// Database key; submission order.
    pub seq: i64,
    pub id: String,
    pub request: SubmitJob,
    pub queue: String,
    pub created_at: i64,
    pub first: UnitIx,
    pub size: Option<u32>,
    pub mcpu: u64,
    pub mem: u64,
    pub deps: Vec<Dep>,
    pub sequential: bool,
    pub dependents: Dependents,
    /// Units per status.
    pub counts: [u32; 7],
    /// A plain job's unit status, or an array parent's derived status.
    pub status: JobStatus,
    /// An array parent's own status reason (cancel, terminate).
    pub reason: Option<String>,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub dirty: bool,
    /// Not in the database yet.
    pub new: bool,
}

impl Job {
    pub(crate) fn units(&self) -> Range<UnitIx> {
        self.first..self.first + self.size.unwrap_or(1)
    }
}

/// A plain job, or one array child.
#[derive(Debug)]
pub(crate) struct Unit {
    pub job: JobIx,
    pub index: u32,
    pub status: JobStatus,
    pub reason: Option<String>,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub attempts: Vec<Attempt>,
    /// Attempts that count against `retryStrategy.attempts` (lost ones do not).
    pub counted: u32,
    /// Dependencies not yet succeeded.
    pub waiting: u32,
    /// The attempt in flight (STARTING or RUNNING).
    pub run: Option<Box<Run>>,
    pub dirty: bool,
}

/// The attempt in flight.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    /// Unique per spawn, so late reports of an old process are ignored.
    pub token: u64,
    /// `AWS_BATCH_JOB_ATTEMPT`.
    pub attempt: u32,
    pub log: String,
    pub started_at: i64,
    pub pid: Option<u32>,
    /// Start time from `/proc/PID/stat`: with the pid, identifies the process.
    pub pid_start: Option<u64>,
    pub stop: Option<Stop>,
}

/// Why the engine is stopping an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    Timeout,
    Terminate(String),
    /// The process group went over the job's `memory`: killed at once.
    OutOfMemory,
}

/// A deadline for a running attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timer {
    pub at: Instant,
    pub unit: UnitIx,
    pub token: u64,
    pub kind: TimerKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// attemptDurationSeconds passed: SIGTERM, then SIGKILL after the grace.
    Timeout,
    /// The grace after SIGTERM passed: SIGKILL.
    Kill,
    /// Time to measure every running attempt's memory (one timer for all; `unit` and `token` unused).
    MemorySweep,
}
