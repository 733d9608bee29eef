//! What the Jobs view shows of the jobs submitted through `--batch-api`, like
//! the AWS console's Batch jobs page: a list by queue and status (name, id,
//! status, array progress from `statusSummary`, times, attempts), and a page
//! per job with its attempts and their log tails, and an array's children.
//! Read from the engine the API runs on; the log tails from the local copy of
//! each attempt's output under `STATE/logs/`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::{
    batch::{Batch, JobDetail, JobQuery, JobStatus},
    batchapi::BatchApi,
    error::PortError,
};

/// Jobs listed at most (newest first).
pub const LIST_LIMIT: usize = 200;
/// Children listed at most on an array job's page.
pub const CHILDREN_LIMIT: usize = 500;
/// Log lines shown per attempt.
const LOG_TAIL_LINES: usize = 40;
/// Most ids in one describe call.
const DESCRIBE_CHUNK: usize = 100;

/// A request the Jobs view cannot answer as asked (HTTP 400 or 404).
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// A filter value is not valid (the message names it and the fix).
    #[error("{0}")]
    Invalid(String),
    /// No such job.
    #[error("job {0} is not a job of the Batch API: check the id (children are ID:INDEX)")]
    NotFound(String),
    /// The engine or the API's database failed.
    #[error("cannot read the jobs: {0}")]
    Unavailable(String),
}

impl JobsError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            JobsError::Invalid(_) => 400,
            JobsError::NotFound(_) => 404,
            JobsError::Unavailable(_) => 503,
        }
    }
}

impl From<PortError> for JobsError {
    fn from(e: PortError) -> Self {
        JobsError::Unavailable(e.to_string())
    }
}

/// One row of a list: a job, or a child of an array job.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub job_id: String,
    pub job_name: String,
    pub queue: String,
    pub status: JobStatus,
    pub status_reason: Option<String>,
    /// Epoch milliseconds.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub attempts: usize,
    /// The last attempt's exit code.
    pub exit_code: Option<i32>,
    /// Array size (a parent).
    pub array_size: Option<u32>,
    /// Index (a child).
    pub array_index: Option<u32>,
    /// Children per status (a parent): AWS's `statusSummary`.
    pub status_summary: BTreeMap<JobStatus, u32>,
    /// The job's page.
    pub url: String,
}

impl From<&JobDetail> for JobRow {
    fn from(d: &JobDetail) -> Self {
        let array = d.array_properties.clone().unwrap_or_default();
        JobRow {
            job_id: d.job_id.clone(),
            job_name: d.job_name.clone(),
            queue: d.job_queue.clone(),
            status: d.status,
            status_reason: d.status_reason.clone(),
            created_at: d.created_at,
            started_at: d.started_at,
            stopped_at: d.stopped_at,
            attempts: d.attempts.len(),
            exit_code: d.attempts.last().and_then(|a| a.exit_code),
            array_size: array.size,
            array_index: array.index,
            status_summary: array.status_summary,
            url: format!("/jobs/{}", d.job_id),
        }
    }
}

/// The list: which queues there are, the filter applied, the jobs it keeps.
#[derive(Debug, Clone, Serialize)]
pub struct JobList {
    /// The job queues created through the API.
    pub queues: Vec<String>,
    pub queue: Option<String>,
    pub status: Option<JobStatus>,
    /// Newest first, at most [`LIST_LIMIT`].
    pub jobs: Vec<JobRow>,
    /// Jobs matching the filter (more than `jobs` holds when over the limit).
    pub total: usize,
}

/// One attempt, with the tail of its output.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptView {
    /// From 1.
    pub number: usize,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub status_reason: Option<String>,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub log_stream_name: Option<String>,
    pub log_tail: String,
}

/// A job's page.
#[derive(Debug, Clone, Serialize)]
pub struct JobPage {
    #[serde(flatten)]
    pub row: JobRow,
    /// The array job of a child.
    pub parent: Option<String>,
    pub job_definition: String,
    pub image: String,
    pub command: Vec<String>,
    pub depends_on: Vec<String>,
    pub attempts: Vec<AttemptView>,
    /// An array job's children (at most [`CHILDREN_LIMIT`]), by index.
    pub children: Vec<JobRow>,
}

/// Parses the list's filter (`queue` must be a queue of the API, `status` an
/// AWS status) into an empty list of the API's queues.
pub fn filter(api: &BatchApi, queue: Option<&str>, status: Option<&str>) -> Result<JobList, JobsError> {
    let queues = api.queue_names().map_err(|e| JobsError::Unavailable(e.to_string()))?;
    let queue = queue.filter(|q| !q.is_empty()).map(str::to_owned);
    if let Some(q) = queue.as_ref().filter(|q| !queues.contains(q)) {
        return Err(JobsError::Invalid(format!(
            "queue {q:?} is not a job queue of the Batch API: pick one of {queues:?}, or create it with CreateJobQueue"
        )));
    }
    let status = match status.filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<JobStatus>().map_err(|e| JobsError::Invalid(format!("status: {e}")))?),
        None => None,
    };
    Ok(JobList { queues, queue, status, jobs: Vec::new(), total: 0 })
}

async fn describe(api: &BatchApi, ids: &[String]) -> Result<Vec<JobDetail>, JobsError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(DESCRIBE_CHUNK) {
        out.extend(api.engine().describe_jobs(chunk).await?);
    }
    Ok(out)
}

/// The jobs of `queue` (every API queue when `None`) in `status` (any when `None`), newest first.
pub async fn list(api: &BatchApi, queue: Option<&str>, status: Option<&str>) -> Result<JobList, JobsError> {
    let mut list = filter(api, queue, status)?;
    let mut found = Vec::new();
    for q in list.queues.iter().filter(|q| list.queue.as_ref().is_none_or(|want| want == *q)) {
        for st in JobStatus::ALL.into_iter().filter(|s| list.status.is_none_or(|want| want == *s)) {
            found.extend(api.engine().list_jobs(&JobQuery::ByStatus { queue: q.clone(), status: st }).await?);
        }
    }
    found.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.job_id.cmp(&a.job_id)));
    list.total = found.len();
    let ids: Vec<String> = found.into_iter().take(LIST_LIMIT).map(|j| j.job_id).collect();
    list.jobs = describe(api, &ids).await?.iter().map(JobRow::from).collect();
    Ok(list)
}

/// The page of job `id` (`ID:INDEX` for a child).
pub async fn job(api: &BatchApi, id: &str) -> Result<JobPage, JobsError> {
    let detail = describe(api, &[id.to_owned()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| JobsError::NotFound(id.to_owned()))?;
    let state_dir = &api.config().state_dir;
    let mut attempts = Vec::with_capacity(detail.attempts.len());
    for (i, a) in detail.attempts.iter().enumerate() {
        let log_tail = match a.log_stream_name.as_deref().and_then(|s| local_log(state_dir, s)) {
            Some(path) => tail(&path, LOG_TAIL_LINES).await,
            None => String::new(),
        };
        attempts.push(AttemptView {
            number: i + 1,
            exit_code: a.exit_code,
            reason: a.reason.clone(),
            status_reason: a.status_reason.clone(),
            started_at: a.started_at,
            stopped_at: a.stopped_at,
            log_stream_name: a.log_stream_name.clone(),
            log_tail,
        });
    }
    let children = match detail.array_properties.as_ref().and_then(|a| a.size) {
        Some(_) => {
            let query = JobQuery::ArrayChildren { array_job_id: detail.job_id.clone(), status: None };
            let ids: Vec<String> = api
                .engine()
                .list_jobs(&query)
                .await?
                .into_iter()
                .take(CHILDREN_LIMIT)
                .map(|c| c.job_id)
                .collect();
            describe(api, &ids).await?.iter().map(JobRow::from).collect()
        }
        None => Vec::new(),
    };
    Ok(JobPage {
        row: JobRow::from(&detail),
        parent: detail.job_id.split_once(':').map(|(p, _)| p.to_owned()),
        job_definition: detail.job_definition.clone(),
        image: detail.container.image.clone(),
        command: detail.container.command.clone(),
        depends_on: detail.depends_on.iter().filter_map(|d| d.job_id.clone()).collect(),
        attempts,
        children,
    })
}

/// The local file of a log stream: the engine names an attempt's log by its
/// path under `STATE/logs/`; a stream name that is not a path (a CloudWatch
/// stream name) is looked up under `STATE/logs/` too. Nothing outside
/// `STATE/logs/` is ever read.
pub fn local_log(state_dir: &Path, stream: &str) -> Option<PathBuf> {
    let logs = state_dir.join("logs").canonicalize().ok()?;
    let candidate = if Path::new(stream).is_absolute() { PathBuf::from(stream) } else { logs.join(stream) };
    let path = candidate.canonicalize().ok()?;
    (path.starts_with(&logs) && path.is_file()).then_some(path)
}

/// The last `lines` lines of a file (of its last 64 KiB), lossily decoded.
async fn tail(path: &Path, lines: usize) -> String {
    let Ok(bytes) = tokio::fs::read(path).await else { return String::new() };
    let from = bytes.len().saturating_sub(64 * 1024);
    let text = String::from_utf8_lossy(&bytes[from..]);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_under_the_logs_directory_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs/job1");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("attempt-1.log"), "hello\n").unwrap();
        std::fs::write(dir.path().join("secret"), "no\n").unwrap();
        let inside = logs.join("attempt-1.log");
        assert_eq!(local_log(dir.path(), inside.to_str().unwrap()), Some(inside.canonicalize().unwrap()));
        assert!(local_log(dir.path(), "job1/attempt-1.log").is_some(), "a stream name under logs/");
        assert_eq!(local_log(dir.path(), dir.path().join("secret").to_str().unwrap()), None);
        assert_eq!(local_log(dir.path(), "../secret"), None);
        assert_eq!(local_log(dir.path(), "job1"), None, "a directory is not a log");
    }

    #[tokio::test]
    async fn a_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let text: String = (1..=50).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let t = tail(&path, 3).await;
        assert_eq!(t, "line 48\nline 49\nline 50");
        assert_eq!(tail(&dir.path().join("missing"), 3).await, "");
    }
}
