//! The Batch port: AWS Batch's job model in domain terms.
//!
//! Both backends implement [`Batch`]: the local engine ([`crate::engine`]) and,
//! later, the aws-sdk-batch adapter. The types mirror the AWS API closely (same
//! status strings, same dependency types, same retry rules) so a pipeline that
//! passes locally behaves the same on AWS.

pub mod attempt;
pub mod check;
pub mod event;
pub mod fsm;
pub mod retry;

use std::{collections::BTreeMap, fmt, str::FromStr};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use self::{
    attempt::{Attempt, AttemptContainer},
    check::{aws_request_json, check_submit, overrides_chars},
    event::JobStateChange,
    retry::{EvaluateOnExit, RetryAction, RetryStrategy},
};
use crate::error::{PortError, PortResult};

/// Smallest array size AWS Batch accepts.
pub const MIN_ARRAY_SIZE: u32 = 2;
/// Largest array size AWS Batch accepts.
pub const MAX_ARRAY_SIZE: u32 = 10_000;
/// Most dependencies one job may have.
pub const MAX_DEPENDENCIES: usize = 20;
/// Largest SubmitJob request body, in bytes.
pub const MAX_SUBMIT_BYTES: usize = 30 * 1024;
/// Largest container overrides, in characters.
pub const MAX_OVERRIDE_CHARS: usize = 8_192;
/// Smallest attemptDurationSeconds.
pub const MIN_TIMEOUT_SECS: u64 = 60;
/// Seconds between SIGTERM and SIGKILL when a job times out or is terminated.
pub const KILL_GRACE_SECS: u64 = 30;

/// A job's status, with the exact AWS strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// A job's first status (also [`Default`]).
    #[default]
    Submitted,
    Pending,
    Runnable,
    Starting,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Submitted,
        JobStatus::Pending,
        JobStatus::Runnable,
        JobStatus::Starting,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
    ];

    /// The AWS string for this status.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Submitted => "SUBMITTED",
            JobStatus::Pending => "PENDING",
            JobStatus::Runnable => "RUNNABLE",
            JobStatus::Starting => "STARTING",
            JobStatus::Running => "RUNNING",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
        }
    }

    /// SUCCEEDED or FAILED: the job will not change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!("unknown job status {s:?}: expected one of SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED")
            })
    }
}

/// How a job depends on another (AWS `dependsOn[].type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DependencyKind {
    /// Wait for the whole job (no `type` on AWS).
    #[default]
    #[serde(rename = "STANDARD")]
    Standard,
    /// Child i waits for child i of the other array job.
    #[serde(rename = "N_TO_N")]
    NToN,
    /// Child i waits for child i-1 of the same array job (no job id).
    #[serde(rename = "SEQUENTIAL")]
    Sequential,
}

impl DependencyKind {
    /// A plain dependency, written without `type` as AWS does.
    pub fn is_standard(&self) -> bool {
        *self == DependencyKind::Standard
    }
}

/// One entry of `dependsOn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDependency {
    /// The job depended on; `None` only for [`DependencyKind::Sequential`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Absent on AWS for a plain dependency (DescribeJobs, state change events).
    #[serde(rename = "type", default, skip_serializing_if = "DependencyKind::is_standard")]
    pub kind: DependencyKind,
}

impl JobDependency {
    /// Wait for the whole of `job_id`.
    pub fn on(job_id: impl Into<String>) -> Self {
        JobDependency { job_id: Some(job_id.into()), kind: DependencyKind::Standard }
    }
    /// Child i waits for child i of `job_id`.
    pub fn n_to_n(job_id: impl Into<String>) -> Self {
        JobDependency { job_id: Some(job_id.into()), kind: DependencyKind::NToN }
    }
    /// Child i waits for child i-1 of the same array.
    pub fn sequential() -> Self {
        JobDependency { job_id: None, kind: DependencyKind::Sequential }
    }
}

/// What the container runs and with which resources (job definition plus overrides).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    /// Image (AWS only; the local engine runs `command` as a process).
    #[serde(default)]
    pub image: String,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Environment added to the job's.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// vCPUs reserved for each child (fractions for Fargate: 0.25, 0.5, ...).
    pub vcpus: f64,
    /// Memory reserved for each child, MiB.
    pub memory_mib: u64,
}

/// A SubmitJob request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitJob {
    /// Deterministic name: the key for reconciliation after a crash (1-128 chars, `[A-Za-z0-9_-]`).
    pub job_name: String,
    pub job_queue: String,
    pub job_definition: String,
    /// `Some(n)` makes an array job of n children (2..=10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_size: Option<u32>,
    #[serde(default)]
    pub depends_on: Vec<JobDependency>,
    pub container: ContainerSpec,
    #[serde(default)]
    pub retry_strategy: RetryStrategy,
    /// attemptDurationSeconds (≥ 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// What SubmitJob answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedJob {
    pub job_id: String,
    pub job_name: String,
}

/// Array information: the parent has a size and a status summary, a child an index.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArrayProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Count of children per status (parents only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub status_summary: BTreeMap<JobStatus, u32>,
}

/// DescribeJobs' view of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDetail {
    pub job_id: String,
    pub job_name: String,
    pub job_queue: String,
    pub job_definition: String,
    pub status: JobStatus,
    #[serde(default)]
    pub status_reason: Option<String>,
    pub created_at: i64,
    #[serde(default)]
    pub started_at: Option<i64>,
    #[serde(default)]
    pub stopped_at: Option<i64>,
    #[serde(default)]
    pub depends_on: Vec<JobDependency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_properties: Option<ArrayProperties>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    pub container: ContainerSpec,
    #[serde(default)]
    pub retry_strategy: RetryStrategy,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// ListJobs' view of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub job_id: String,
    pub job_name: String,
    pub status: JobStatus,
    #[serde(default)]
    pub status_reason: Option<String>,
    pub created_at: i64,
    #[serde(default)]
    pub started_at: Option<i64>,
    #[serde(default)]
    pub stopped_at: Option<i64>,
    /// Array size (parents) or index (children).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_properties: Option<ArrayProperties>,
    /// The last attempt's exit code.
    #[serde(default)]
    pub exit_code: Option<i32>,
}

/// The ListJobs query forms AWS supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobQuery {
    /// `filters: [{name: JOB_NAME, values: [pattern]}]` in a queue; a trailing `*`
    /// matches by prefix. Returns jobs in every status (as AWS does with filters).
    ByName { queue: String, pattern: String },
    /// Jobs of a queue in one status.
    ByStatus { queue: String, status: JobStatus },
    /// Children of an array job, optionally in one status.
    ArrayChildren { array_job_id: String, status: Option<JobStatus> },
}

/// The Batch capability. Implementations: the local engine; aws-sdk-batch.
#[async_trait]
pub trait Batch: Send + Sync {
    /// Submits one job (array or plain). Checks AWS's limits ([`check_submit`])
    /// and rejects a request that breaks one with [`crate::error::PortError::Invalid`].
    async fn submit_job(&self, request: SubmitJob) -> PortResult<SubmittedJob>;
    /// Describes jobs by id (parents, children `parent:index`, plain jobs); unknown ids are omitted.
    async fn describe_jobs(&self, job_ids: &[String]) -> PortResult<Vec<JobDetail>>;
    /// Lists jobs, following every page.
    async fn list_jobs(&self, query: &JobQuery) -> PortResult<Vec<JobSummary>>;
    /// Cancels a job that has not started (SUBMITTED, PENDING, RUNNABLE); a started job is left alone.
    async fn cancel_job(&self, job_id: &str, reason: &str) -> PortResult<()>;
    /// Terminates a job in any non-terminal status: running children get SIGTERM, then SIGKILL.
    async fn terminate_job(&self, job_id: &str, reason: &str) -> PortResult<()>;
}

/// Checks that a job name follows AWS's rules (1–128 of letters, digits, `-`, `_`, starting with a letter or digit).
pub fn check_job_name(name: &str) -> PortResult<()> {
    let ok_len = !name.is_empty() && name.len() <= 128;
    let ok_first = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok_len && ok_first && ok_chars {
        Ok(())
    } else {
        Err(PortError::invalid(format!(
            "job name {name:?} is not valid: use 1-128 letters, digits, '-' or '_', starting with a letter or digit"
        )))
    }
}

/// One child (or plain job) as the backend reports it. Times in ms since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChildTime {
    /// `parent:index` for an array child, else the job id.
    pub job_id: String,
    /// Array index (0 for a plain job).
    pub index: u32,
    pub status: JobStatus,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
    /// The last attempt's exit code, when the backend says.
    pub exit_code: Option<i32>,
}

impl ChildTime {
    /// It started (a failure of its own, not a dependency's cascade).
    pub fn ran(&self) -> bool {
        self.started_at.is_some() || self.exit_code.is_some()
    }

    /// How long it ran (until `now` while it runs).
    pub fn run_ms(&self, now: i64) -> Option<i64> {
        self.started_at.map(|s| self.stopped_at.unwrap_or(now).max(s) - s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_strings_round_trip() {
        for st in JobStatus::ALL {
            assert_eq!(st.as_str().parse::<JobStatus>(), Ok(st));
            assert_eq!(serde_json::to_string(&st).unwrap(), format!("\"{st}\""));
        }
        assert!("DONE".parse::<JobStatus>().unwrap_err().contains("DONE"));
    }

    #[test]
    fn dependency_serialises_like_aws() {
        let d = JobDependency::n_to_n("abc");
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"{"jobId":"abc","type":"N_TO_N"}"#);
        let s = JobDependency::sequential();
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"type":"SEQUENTIAL"}"#);
        // Regression: AWS leaves `type` out of a plain dependency in DescribeJobs and events.
        let plain: JobDependency = serde_json::from_str(r#"{"jobId":"abc"}"#).unwrap();
        assert_eq!(plain, JobDependency::on("abc"));
        assert_eq!(serde_json::to_string(&plain).unwrap(), r#"{"jobId":"abc"}"#);
    }

    #[test]
    fn job_names_follow_aws_rules() {
        assert!(check_job_name("orders-r1a2-confirm-s0").is_ok());
        assert!(check_job_name("").is_err());
        assert!(check_job_name("-x").is_err());
        assert!(check_job_name("a b").is_err());
        assert!(check_job_name(&"a".repeat(129)).is_err());
    }
}
