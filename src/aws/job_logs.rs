//! Job logs on CloudWatch Logs, read back: which log group a job writes to
//! (its job definition's `awslogs-group` option, else AWS Batch's
//! [`DEFAULT_LOG_GROUP`]) and the lines of one attempt's stream — from the
//! start, then onward from GetLogEvents' forward token (what
//! `batchfan logs --backend aws [--follow]` prints).
//!
//! The stream of an attempt is `attempts[].container.logStreamName` of
//! DescribeJobs ([`crate::batch::Attempt::log_stream_name`]). AWS creates it
//! when the container starts; until then reading it gives no lines (not an
//! error), so a follower can start before the job does.
//!
//! ```no_run
//! # async fn demo() -> Result<(), batchfan::error::PortError> {
//! use batchfan::aws::job_logs::CloudWatchLogs;
//! let logs = CloudWatchLogs::connect(None).await;
//! let group = logs.log_group("arn:aws:batch:eu-west-1:123456789012:job-definition/orders-confirm:3").await?;
//! let page = logs.read(&group, "orders-confirm/default/0f1e", None).await?;
//! for line in &page.lines {
//!     println!("{line}");
//! }
//! # Ok(()) }
//! ```

use aws_config::SdkConfig;

use super::{error::port_error, load_sdk_config, DEFAULT_LOG_GROUP};
use crate::{
    batch::JobStatus,
    error::{PortError, PortResult},
};

/// The job definition option naming its log group (`logConfiguration.options`).
const GROUP_OPTION: &str = "awslogs-group";
/// Most GetLogEvents pages one [`CloudWatchLogs::read`] takes (10,000 events
/// or 1 MB each): a follower reads the rest on its next look.
const MAX_PAGES: usize = 100;

/// Reads job logs: a CloudWatch Logs client, and a Batch client for the job
/// definitions. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CloudWatchLogs {
    logs: aws_sdk_cloudwatchlogs::Client,
    batch: aws_sdk_batch::Client,
}

/// A job's status and where its attempts' logs are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStreams {
    pub status: JobStatus,
    pub job_definition: String,
    /// The log stream of each attempt, oldest first (attempt 1 first); the
    /// attempt in flight last. `None` for an attempt that never got a container.
    pub streams: Vec<Option<String>>,
}

/// One read of a stream: the new lines, and the token the next read starts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogPage {
    pub lines: Vec<String>,
    /// `None` while the stream does not exist yet.
    pub next: Option<String>,
}

impl CloudWatchLogs {
    /// Loads the SDK's configuration (as [`super::connect`] does) in `region`, if given.
    pub async fn connect(region: Option<String>) -> CloudWatchLogs {
        CloudWatchLogs::from_sdk_config(&load_sdk_config(region.as_deref()).await)
    }

    /// The clients on a configuration the caller loaded.
    pub fn from_sdk_config(config: &SdkConfig) -> CloudWatchLogs {
        CloudWatchLogs {
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            batch: aws_sdk_batch::Client::new(config),
        }
    }

    /// DescribeJobs of `job_id`: its status and its attempts' streams. The
    /// attempt in flight is not in `attempts[]` yet: its stream is the
    /// job's `container.logStreamName`.
    pub async fn job_streams(&self, job_id: &str) -> PortResult<JobStreams> {
        let out = self
            .batch
            .describe_jobs()
            .jobs(job_id)
            .send()
            .await
            .map_err(|e| port_error(&format!("batch DescribeJobs of {job_id}"), e))?;
        let job = out.jobs().first().ok_or_else(|| PortError::not_found(format!("batch job {job_id}")))?;
        let raw = job.status().map(|s| s.as_str()).unwrap_or_default();
        let status = raw
            .parse::<JobStatus>()
            .map_err(|_| PortError::backend(format!("batch job {job_id} has an unknown status {raw:?}")))?;
        let mut streams: Vec<Option<String>> = job
            .attempts()
            .iter()
            .map(|a| a.container().and_then(|c| c.log_stream_name()).map(str::to_owned))
            .collect();
        let current = job.container().and_then(|c| c.log_stream_name());
        if matches!(status, JobStatus::Starting | JobStatus::Running)
            && current.is_some()
            && streams.last().map(Option::as_deref) != Some(current)
        {
            streams.push(current.map(str::to_owned));
        }
        let job_definition = job.job_definition().unwrap_or_default().to_owned();
        Ok(JobStreams { status, job_definition, streams })
    }

    /// The log group of jobs of `job_definition` (name, `name:revision` or ARN):
    /// its `awslogs-group` option, else [`DEFAULT_LOG_GROUP`].
    pub async fn log_group(&self, job_definition: &str) -> PortResult<String> {
        let out = self
            .batch
            .describe_job_definitions()
            .job_definitions(job_definition)
            .send()
            .await
            .map_err(|e| port_error(&format!("batch DescribeJobDefinitions of {job_definition}"), e))?;
        let group = out
            .job_definitions()
            .iter()
            .find_map(|d| d.container_properties()?.log_configuration()?.options()?.get(GROUP_OPTION))
            .cloned();
        Ok(group.unwrap_or_else(|| DEFAULT_LOG_GROUP.to_owned()))
    }

    /// The lines of `stream` in `group` after `from` (`None`: from the start),
    /// every page CloudWatch has now. A stream not created yet reads as no lines.
    pub async fn read(&self, group: &str, stream: &str, from: Option<String>) -> PortResult<LogPage> {
        let mut page = LogPage { lines: Vec::new(), next: from };
        for _ in 0..MAX_PAGES {
            let sent = page.next.clone();
            let answer = self
                .logs
                .get_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .start_from_head(true)
                .set_next_token(sent.clone())
                .send()
                .await
                .map_err(|e| port_error(&format!("logs GetLogEvents of {group} {stream}"), e));
            let out = match answer {
                Ok(out) => out,
                Err(PortError::NotFound(_)) if sent.is_none() => return Ok(page),
                Err(e) => return Err(e),
            };
            let events = out.events();
            page.lines.extend(events.iter().map(|e| e.message().unwrap_or_default().to_owned()));
            page.next = out.next_forward_token().map(str::to_owned).or(sent.clone());
            // AWS: the end of the stream answers the token it was sent.
            if events.is_empty() || page.next == sent {
                break;
            }
        }
        Ok(page)
    }

    /// The last `lines` events of `stream` in `group` (GetLogEvents from the
    /// end, one call), oldest first. A stream not created yet has none.
    pub async fn tail(&self, group: &str, stream: &str, lines: usize) -> PortResult<Vec<String>> {
        let limit = i32::try_from(lines.clamp(1, 10_000)).unwrap_or(10_000);
        let answer = self
            .logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(false)
            .limit(limit)
            .send()
            .await
            .map_err(|e| port_error(&format!("logs GetLogEvents of {group} {stream}"), e));
        match answer {
            Ok(out) => Ok(out.events().iter().map(|e| e.message().unwrap_or_default().to_owned()).collect()),
            Err(PortError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}
