//! The environment batchfan gives each job of a pipeline (the job's own env
//! plus the run's pointers, never data), and the check, at load time, that
//! every job's container overrides will fit AWS's limit with it.

use std::collections::BTreeMap;

use super::{JobSpec, PipelineSpec};
use crate::{
    batch::{overrides_chars, MAX_OVERRIDE_CHARS},
    env,
};

/// Stands for a run id when checking a spec before any run exists (36 characters).
pub const PLACEHOLDER_RUN_ID: &str = "r00000000000000000000000000000000000";
/// Stands for the largest child offset when checking a spec.
const PLACEHOLDER_OFFSET: u64 = 3_999_999_999;

/// Where a job sits in a run, as far as its environment tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPlace {
    /// A shard of the stage at this position, whose first child has this global index.
    Stage { stage: usize, first_child: u64 },
    /// Another job of the run: `aggregation`, `cleanup` or `barrier`.
    Other(&'static str),
}

impl JobPlace {
    /// The `BATCHFAN_ROLE` value: `stage`, or the other job's kind.
    pub fn role(&self) -> &'static str {
        match self {
            JobPlace::Stage { .. } => "stage",
            JobPlace::Other(kind) => kind,
        }
    }
}

/// The environment of `job` at `place` in run `run_id`: its own env plus the
/// run's pointers (pipeline, run, role, stage and index offset, the stage
/// list, table, bucket, and how long the rows it writes are kept). The
/// submitter adds the run's input and, for a `range` run, its size.
pub fn job_env(
    spec: &PipelineSpec,
    run_id: &str,
    place: JobPlace,
    job: &JobSpec,
) -> BTreeMap<String, String> {
    let mut out = job.env.clone();
    out.insert(env::PIPELINE.into(), spec.name.clone());
    out.insert(env::RUN.into(), run_id.into());
    out.insert(env::ROLE.into(), place.role().into());
    if let JobPlace::Stage { stage, first_child } = place {
        if let Some(s) = spec.stages.get(stage) {
            out.insert(env::STAGE.into(), s.name.clone());
        }
        out.insert(env::INDEX_OFFSET.into(), first_child.to_string());
    }
    out.insert(env::STAGES.into(), stage_list(spec));
    out.insert(env::TABLE.into(), spec.storage.table.clone());
    out.insert(env::BUCKET.into(), spec.storage.bucket.clone());
    out.insert(env::SCRATCH_DAYS.into(), spec.storage.scratch_days.to_string());
    out
}

/// The spec's stage names in order, comma-separated ([`env::STAGES`]).
pub fn stage_list(spec: &PipelineSpec) -> String {
    spec.stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(",")
}

/// A job of a spec, for [`override_problems`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecJob {
    /// The stage at this position.
    Stage(usize),
    Aggregation,
    Cleanup,
}

fn override_problem(what: &str, job: &JobSpec, env: &BTreeMap<String, String>) -> Option<String> {
    let chars = overrides_chars(&job.command, env);
    (chars > MAX_OVERRIDE_CHARS).then(|| {
        format!(
            "{what}: container overrides (command and env, with batchfan's pointers) would be {chars} characters, over the AWS limit of {MAX_OVERRIDE_CHARS}: shorten the command and env, and pass data through the work item or the bucket"
        )
    })
}

/// The jobs of a spec whose container overrides would not fit, with a message
/// each (a placeholder run id stands for the real one).
pub fn override_problems(spec: &PipelineSpec) -> Vec<(SpecJob, String)> {
    let mut out = Vec::new();
    for (i, stage) in spec.stages.iter().enumerate() {
        let place = JobPlace::Stage { stage: i, first_child: PLACEHOLDER_OFFSET };
        let mut env = job_env(spec, PLACEHOLDER_RUN_ID, place, &stage.job);
        // What the submitter adds: the longest input pointer, the largest range.
        // (`s3://` + a 63-character bucket + `/` + a 1,024-byte key).
        env.insert(env::INPUT.into(), format!("s3://{}/{}", "b".repeat(63), "k".repeat(1024)));
        env.insert(env::RANGE.into(), format!("{PLACEHOLDER_OFFSET}0:{PLACEHOLDER_OFFSET}"));
        if let Some(m) = override_problem(&format!("stage {:?}", stage.name), &stage.job, &env) {
            out.push((SpecJob::Stage(i), m));
        }
    }
    for (which, role, job) in [
        (SpecJob::Aggregation, "aggregation", &spec.aggregation),
        (SpecJob::Cleanup, "cleanup", &spec.cleanup),
    ] {
        let env = job_env(spec, PLACEHOLDER_RUN_ID, JobPlace::Other(role), job);
        if let Some(m) = override_problem(role, job, &env) {
            out.push((which, m));
        }
    }
    out
}
