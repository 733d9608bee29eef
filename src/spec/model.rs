//! The validated pipeline spec: what a pipeline's TOML file says, after
//! [`super::load`] has checked it. Everything downstream (planner, job graph,
//! engine, tfvars) reads these types, never the raw TOML.

use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::batch::RetryStrategy;

/// One pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineSpec {
    /// Pipeline name: 1-40 of lowercase letters, digits, '-'; starts with a letter.
    pub name: String,
    pub description: String,
    /// The directory the spec file is in: relative commands resolve against it.
    pub base_dir: PathBuf,
    pub triggers: Triggers,
    pub planner: Planner,
    /// Stages in order; at least one.
    pub stages: Vec<Stage>,
    pub aggregation: JobSpec,
    pub cleanup: JobSpec,
    pub alerts: Alerts,
    pub storage: Storage,
    /// Largest array per shard (2..=10,000; default 10,000).
    pub max_array_size: u32,
    /// Declared run parameters and their defaults; `--param k=v` may set only these
    /// (and the planner's own parameters).
    pub params: BTreeMap<String, String>,
    /// Job queue name (AWS; informational locally).
    pub job_queue: String,
    /// Job definitions are named `{prefix}{stage}`, `{prefix}aggregation`,
    /// `{prefix}cleanup` and `{prefix}barrier` ([`crate::deploy::job_definition_name`]).
    /// Default `{name}-`; on AWS the deployment's `BATCHFAN_JOB_DEFINITION_PREFIX` wins.
    pub job_definition_prefix: String,
    /// The compute jobs are sized for (default Fargate): [`PipelineSpec::compute_problems`].
    #[serde(default)]
    pub compute: super::Compute,
    /// `[local]`: what only the embedded backend uses.
    #[serde(default)]
    pub local: super::LocalSettings,
}

/// The run parameter that overrides every stage's `items_per_child`.
pub const ITEMS_PER_CHILD: &str = "items_per_child";

impl PipelineSpec {
    /// The run parameters of a request: the declared `[params]` with their
    /// defaults, overridden by `given`. A name that is neither declared nor a
    /// planner parameter (`lines_per_item`, `count`, `items_per_child`) is an
    /// error naming it and the known ones.
    pub fn resolve_params(
        &self,
        given: impl IntoIterator<Item = (String, String)>,
    ) -> Result<BTreeMap<String, String>, String> {
        let mut params = self.params.clone();
        let planner_keys: &[&str] = match self.planner {
            Planner::Lines { .. } => &["lines_per_item", ITEMS_PER_CHILD],
            Planner::Range { .. } => &["count", ITEMS_PER_CHILD],
            _ => &[ITEMS_PER_CHILD],
        };
        for (k, v) in given {
            if !params.contains_key(&k) && !planner_keys.contains(&k.as_str()) {
                let mut known: Vec<&str> = self.params.keys().map(String::as_str).collect();
                known.extend(planner_keys);
                return Err(format!(
                    "unknown parameter {k:?}: declare it under [params] in the spec (known: {})",
                    if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                ));
            }
            params.insert(k, v);
        }
        Ok(params)
    }
}

/// How runs start.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Triggers {
    pub cron: Option<CronTrigger>,
    pub s3: Option<S3Trigger>,
    pub webhook: Option<WebhookTrigger>,
    /// Manual runs (CLI, Run button); on by default.
    pub manual: bool,
}

/// A cron schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronTrigger {
    /// Cron expression with seconds: `sec min hour day-of-month month day-of-week [year]`.
    pub schedule: String,
    /// IANA time zone name, e.g. `Europe/Paris`; default `UTC`.
    pub timezone: String,
    pub overlap: OverlapPolicy,
    pub catch_up: CatchUpPolicy,
    /// The input each scheduled run reads, if any.
    pub input: Option<String>,
}

/// What a scheduled run does when the previous run is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverlapPolicy {
    Skip,
    Queue,
    Allow,
}

/// Which slots missed while the service was down are run on start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUpPolicy {
    None,
    Latest,
}

/// A new object under bucket/prefix starts a run with it as input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3Trigger {
    pub bucket: String,
    pub prefix: String,
    /// Only keys ending with this suffix (e.g. `.csv`); empty for all.
    pub suffix: String,
    /// `batchfan serve`: how long a file dropped into the bucket's directory by another
    /// program must stay unchanged before it counts as complete (default 2 s).
    #[serde(default = "default_settle_secs")]
    pub settle_secs: u64,
}

fn default_settle_secs() -> u64 {
    super::triggers::DEFAULT_SETTLE_SECS
}

/// An HMAC-signed webhook starts a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookTrigger {
    pub enabled: bool,
    /// Where the secret is: never the secret itself. Always set when enabled;
    /// a disabled webhook may leave it out.
    pub secret: Option<SecretSource>,
    /// Largest accepted body, bytes.
    pub max_body_bytes: usize,
}

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// An environment variable's name.
    Env(String),
    /// A file's path.
    File(PathBuf),
    /// An SSM parameter name (AWS).
    Ssm(String),
    /// A Secrets Manager secret id (AWS).
    SecretsManager(String),
}

/// How the planner sizes the work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "lowercase")]
pub enum Planner {
    /// Record-aligned byte ranges of the input object, `lines_per_item`
    /// records each (a record is a line, unless quoted fields hold newlines).
    Lines {
        lines_per_item: u64,
        /// Skip the first record (a CSV header) of the input.
        header: bool,
        /// With `header`: the columns the header row must name, in order
        /// (empty: not checked).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        columns: Vec<String>,
    },
    /// One unit per object under the input prefix (`s3://bucket/prefix`).
    Objects,
    /// Items 0..count.
    Range { count: u64 },
    /// A command that prints one JSON item per line on stdout.
    Custom { command: Vec<String> },
}

impl Planner {
    /// Whether a run stores its work items: a `range` run's are `0..count`
    /// packed by index, so each child computes its own ([`crate::plan::range_item`]).
    pub fn stores_work_items(&self) -> bool {
        !matches!(self, Planner::Range { .. })
    }
}

/// What every job (stage child, aggregation, cleanup) runs with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Program and arguments: any executable. A relative path containing '/'
    /// is resolved against the spec's directory; a bare name is looked up in
    /// PATH, with the directory of the `batchfan` binary first.
    pub command: Vec<String>,
    /// Container image (AWS).
    pub image: String,
    pub vcpus: f64,
    pub memory_mib: u64,
    pub env: BTreeMap<String, String>,
    pub retry: RetryStrategy,
    /// attemptDurationSeconds; `None` for no timeout.
    pub timeout_secs: Option<u64>,
}

/// How a stage's children wait on the previous stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageDependency {
    /// Child i waits for child i of the previous stage (AWS N_TO_N).
    NToN,
    /// The stage waits for all of the previous stage, then runs its children
    /// one after another (AWS SEQUENTIAL).
    Sequential,
}

/// One stage: an array job with one child per work item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// 1-20 of lowercase letters, digits, '-'; unique in the pipeline.
    pub name: String,
    pub job: JobSpec,
    /// Planner units packed into one child (every stage has the same value: N_TO_N needs equal arrays).
    pub items_per_child: u64,
    pub dependency: StageDependency,
}

/// Failure alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alerts {
    /// Topic alerts are published on.
    pub topic: String,
    /// Percentage (0..=100) of failed items (e.g. malformed rows) a run tolerates
    /// before the aggregation fails it.
    pub tolerated_failure_percent: f64,
}

/// Where runs keep their scratch data and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Storage {
    /// Bucket for child outputs, rejects and the final output.
    pub bucket: String,
    /// Table for work items, results, runs and leases.
    pub table: String,
    /// Days a run's scratch rows (work items, results, retry lists) are kept
    /// after they are written: they carry `expires_at` and expire (DynamoDB's
    /// TTL on AWS, the local sweep on one machine); cleanup deletes none.
    #[serde(default = "default_scratch_days")]
    pub scratch_days: u32,
}

fn default_scratch_days() -> u32 {
    DEFAULT_SCRATCH_DAYS
}

/// Scratch rows' lifetime when `[storage]` sets no `scratch_days`: two weeks to retry a failed run.
pub const DEFAULT_SCRATCH_DAYS: u32 = 14;
/// Longest `scratch_days`.
pub const MAX_SCRATCH_DAYS: u32 = 365;
