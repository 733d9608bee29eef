//! The job runtime: what a job process needs to do its part of a run.
//!
//! A job reads its pointers from the environment ([`JobEnv`]), loads its
//! [`WorkItem`] by (run, index), does its work, stores a [`ChildResult`] and
//! exits 0, 75 (retryable) or 1 (permanent). [`run_job`] does the plumbing
//! for Rust jobs; `batchfan job exec -- CMD` does it for any program.
//!
//! ```no_run
//! use batchfan::runtime::{run_job, JobContext, JobError};
//! fn main() {
//!     run_job(|ctx: JobContext| async move {
//!         let item = ctx.work_item().await?;
//!         let n = item.units.len() as u64;
//!         ctx.put_result(&batchfan::run::ChildResult { items: n, ..Default::default() }).await?;
//!         Ok(())
//!     })
//! }
//! ```

pub mod builtin;
mod context;
pub mod exec;

use std::{collections::BTreeMap, path::PathBuf};

pub use self::context::{run_job, JobContext, API_CALLS_LINE};
use crate::{env, error::PortError, objects::ObjectRef, run::BackendKind};

/// Pointers a job is started with.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEnv {
    pub backend: BackendKind,
    /// Local state directory (local backend).
    pub state_dir: Option<PathBuf>,
    /// The local service's table relay (`BATCHFAN_TABLE_SOCKET`), if it runs one.
    pub table_socket: Option<PathBuf>,
    pub pipeline: String,
    pub run_id: String,
    /// `stage`, `aggregation`, `cleanup` or `barrier`.
    pub role: String,
    pub stage: Option<String>,
    /// Global index of this shard's child 0.
    pub index_offset: u64,
    /// `AWS_BATCH_JOB_ARRAY_INDEX`, 0 for a plain job.
    pub array_index: u64,
    pub attempt: u32,
    pub job_id: String,
    pub table: String,
    pub bucket: String,
    /// Run parameters (`BATCHFAN_PARAM_*`, names lowercased).
    pub params: BTreeMap<String, String>,
    /// The retry attempt whose rerun list maps this child to its global index (`BATCHFAN_RERUN`).
    pub rerun: Option<u32>,
    /// The run's stages in order (`BATCHFAN_STAGES`; empty when not set).
    pub stages: Vec<String>,
    /// The run's input (`BATCHFAN_INPUT`), set on stage jobs of a run that has one.
    pub input: Option<ObjectRef>,
    /// A `range` run's `(units, items per child)` (`BATCHFAN_RANGE`): its work items are computed.
    pub range: Option<(u64, u64)>,
    /// Days the rows this job writes to batchfan's table are kept (`BATCHFAN_SCRATCH_DAYS`).
    pub scratch_days: u32,
}

impl JobEnv {
    /// Reads the process environment.
    pub fn from_env() -> Result<JobEnv, JobError> {
        JobEnv::from_vars(std::env::vars())
    }

    /// Reads pointers from `vars` (for tests and `job exec`).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<JobEnv, JobError> {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        let need = |name: &str| {
            vars.get(name).cloned().ok_or_else(|| {
                JobError::permanent(format!(
                    "{name} is not set: batchfan jobs are started by a batchfan run (see `batchfan run`), which sets it"
                ))
            })
        };
        let num = |name: &str, default: u64| -> Result<u64, JobError> {
            match vars.get(name) {
                None => Ok(default),
                Some(v) => {
                    v.parse().map_err(|_| JobError::permanent(format!("{name}={v:?} is not a number")))
                }
            }
        };
        let backend = match vars.get(env::BACKEND).map(String::as_str) {
            None | Some("local") => BackendKind::Local,
            Some("aws") => BackendKind::Aws,
            Some(other) => {
                return Err(JobError::permanent(format!(
                    "{}={other:?} is not a backend: use local or aws",
                    env::BACKEND
                )))
            }
        };
        let state_dir = vars.get(env::STATE_DIR).map(PathBuf::from);
        if backend == BackendKind::Local && state_dir.is_none() {
            return Err(JobError::permanent(format!("{} is not set for the local backend", env::STATE_DIR)));
        }
        let params = vars
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(env::PARAM_PREFIX).map(|p| (p.to_ascii_lowercase(), v.clone()))
            })
            .collect();
        Ok(JobEnv {
            backend,
            state_dir,
            table_socket: vars.get(env::TABLE_SOCKET).map(PathBuf::from),
            pipeline: need(env::PIPELINE)?,
            run_id: need(env::RUN)?,
            role: vars.get(env::ROLE).cloned().unwrap_or_else(|| "stage".into()),
            stage: vars.get(env::STAGE).cloned(),
            index_offset: num(env::INDEX_OFFSET, 0)?,
            array_index: num(env::AWS_BATCH_JOB_ARRAY_INDEX, 0)?,
            attempt: num(env::AWS_BATCH_JOB_ATTEMPT, 1)? as u32,
            job_id: vars.get(env::AWS_BATCH_JOB_ID).cloned().unwrap_or_default(),
            table: need(env::TABLE)?,
            bucket: need(env::BUCKET)?,
            params,
            rerun: match vars.get(env::RERUN) {
                None => None,
                Some(_) => Some(num(env::RERUN, 1)? as u32),
            },
            stages: vars
                .get(env::STAGES)
                .map(|s| s.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
            input: match vars.get(env::INPUT) {
                None => None,
                Some(v) => Some(v.parse().map_err(|e| JobError::permanent(format!("{}: {e}", env::INPUT)))?),
            },
            range: match vars.get(env::RANGE) {
                None => None,
                Some(v) => Some(crate::plan::parse_range_pointer(v).ok_or_else(|| {
                    JobError::permanent(format!(
                        "{}={v:?} is not {{units}}:{{items per child}} (e.g. 1000:10)",
                        env::RANGE
                    ))
                })?),
            },
            scratch_days: num(env::SCRATCH_DAYS, u64::from(crate::spec::DEFAULT_SCRATCH_DAYS))?
                .clamp(1, u64::from(crate::spec::MAX_SCRATCH_DAYS)) as u32,
        })
    }

    /// The child's global index: shard offset + array index.
    pub fn index(&self) -> u64 {
        self.index_offset + self.array_index
    }
}

/// Whether a job failure is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Exit 75: the default retry rules retry it.
    Retryable,
    /// Exit 1: not retried.
    Permanent,
}

/// A job's failure: its kind decides the exit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    pub kind: FailureKind,
    pub message: String,
}

impl JobError {
    pub fn retryable(message: impl Into<String>) -> Self {
        JobError { kind: FailureKind::Retryable, message: message.into() }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        JobError { kind: FailureKind::Permanent, message: message.into() }
    }
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            FailureKind::Retryable => env::EXIT_RETRYABLE,
            FailureKind::Permanent => env::EXIT_PERMANENT,
        }
    }
}

impl From<PortError> for JobError {
    fn from(e: PortError) -> Self {
        let kind = if e.retryable() { FailureKind::Retryable } else { FailureKind::Permanent };
        JobError { kind, message: e.to_string() }
    }
}

impl From<std::io::Error> for JobError {
    fn from(e: std::io::Error) -> Self {
        JobError::retryable(format!("io: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let base = [
            (env::STATE_DIR, "/tmp/s"),
            (env::PIPELINE, "orders"),
            (env::RUN, "r1"),
            (env::TABLE, "batchfan"),
            (env::BUCKET, "b-1"),
        ];
        base.iter().chain(extra).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn missing_array_index_is_child_zero() {
        let e = JobEnv::from_vars(vars(&[(env::INDEX_OFFSET, "100")])).unwrap();
        assert_eq!(e.index(), 100);
        let e = JobEnv::from_vars(vars(&[(env::INDEX_OFFSET, "100"), (env::AWS_BATCH_JOB_ARRAY_INDEX, "7")]))
            .unwrap();
        assert_eq!(e.index(), 107);
        assert_eq!(e.attempt, 1);
    }

    #[test]
    fn errors_name_the_variable() {
        let err = JobEnv::from_vars(vars(&[(env::AWS_BATCH_JOB_ARRAY_INDEX, "x")])).unwrap_err();
        assert!(err.message.contains("AWS_BATCH_JOB_ARRAY_INDEX"), "{err}");
        let err = JobEnv::from_vars(vec![]).unwrap_err();
        assert!(err.message.contains("BATCHFAN_"), "{err}");
        let err = JobEnv::from_vars(vars(&[(env::BACKEND, "gcp")])).unwrap_err();
        assert!(err.message.contains("gcp"));
    }

    #[test]
    fn the_submitters_pointers_are_read_and_bad_ones_named() {
        let e = JobEnv::from_vars(vars(&[
            (env::STAGES, "a,b"),
            (env::INPUT, "s3://inputs/orders.csv"),
            (env::RANGE, "1000:10"),
            (env::SCRATCH_DAYS, "3"),
        ]))
        .unwrap();
        assert_eq!(e.stages, ["a", "b"]);
        assert_eq!(e.input, Some(ObjectRef::new("inputs", "orders.csv")));
        assert_eq!((e.range, e.scratch_days), (Some((1000, 10)), 3));
        let plain = JobEnv::from_vars(vars(&[])).unwrap();
        assert_eq!((plain.stages.len(), plain.input, plain.range), (0, None, None));
        assert_eq!(plain.scratch_days, crate::spec::DEFAULT_SCRATCH_DAYS);
        let err = JobEnv::from_vars(vars(&[(env::RANGE, "1000")])).unwrap_err();
        assert!(
            err.message.contains("BATCHFAN_RANGE=\"1000\"") && err.message.contains("e.g. 1000:10"),
            "{err}"
        );
        let err = JobEnv::from_vars(vars(&[(env::INPUT, "in/orders.csv")])).unwrap_err();
        assert!(err.message.contains("BATCHFAN_INPUT") && err.message.contains("s3://bucket/key"), "{err}");
    }

    #[test]
    fn params_are_lowercased() {
        let e = JobEnv::from_vars(vars(&[("BATCHFAN_PARAM_REGION", "eu")])).unwrap();
        assert_eq!(e.params["region"], "eu");
    }

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(JobError::retryable("x").exit_code(), 75);
        assert_eq!(JobError::permanent("x").exit_code(), 1);
        assert_eq!(JobError::from(PortError::throttled("t")).exit_code(), 75);
        assert_eq!(JobError::from(PortError::invalid("t")).exit_code(), 1);
    }
}
