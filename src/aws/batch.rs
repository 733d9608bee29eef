//! The AWS Batch [`Batch`] port.
//!
//! | port | AWS Batch |
//! | --- | --- |
//! | `submit_job` | SubmitJob: array properties, `dependsOn` (plain, `N_TO_N`, `SEQUENTIAL`), container overrides (command, environment, vCPU and memory requirements), retry strategy with evaluateOnExit, timeout, tags with propagateTags, job definition, queue |
//! | `describe_jobs` | DescribeJobs, 100 ids per call |
//! | `list_jobs` | ListJobs, every page (nextToken): `ByName` → the `JOB_NAME` filter, `ByStatus` → `jobStatus`, `ArrayChildren` → `arrayJobId` (once per status when no status is given: without one, AWS lists only RUNNING jobs) |
//! | `cancel_job`, `terminate_job` | CancelJob, TerminateJob |
//!
//! Before a SubmitJob call the request is checked against AWS's limits
//! ([`check_submit`]: names, array size, dependencies, overrides ≤ 8,192
//! characters, request ≤ 30 KiB, retry rules, timeout), so a request AWS would
//! refuse fails with a message that says what to change.
//!
//! SubmitJob has no idempotency token, so it is never retried blindly: the
//! SDK's own retries are off for it. Only throttling (HTTP 429,
//! `TooManyRequestsException` and the SDK's other throttling codes) — an
//! answer that the job was not created — is retried here, with backoff and
//! full jitter. Every other retryable error (the SDK's transient codes such as
//! `RequestTimeout`, a 5xx, a timeout or a dropped connection) may come after
//! AWS created the job, so it is returned as [`PortError::Unavailable`]: the
//! submitter's step fails retryably, and its retry (Lambda's, or the bus's
//! redelivery) lists the run's jobs by name first and submits only the missing
//! ones (`run::submit`). Every SubmitJob call of the process waits for a token
//! of the shared [`RateLimiter`] first.
//!
//! Two deviations for AWS-compatible servers, harmless on AWS: an array
//! child's index is read from its id (`parent:index`) when the answer leaves
//! `arrayProperties.index` out, and queue listings (`ByName`, `ByStatus`) drop
//! array children (AWS never lists them there; moto does).

mod convert;

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_sdk_batch::{
    types::{ArrayProperties, JobTimeout, KeyValuesPair},
    Client,
};

use self::convert::{
    from_detail, from_summary, is_child_id, to_dependency, to_overrides, to_retry, to_status,
};
use crate::{
    aws::{error::port_error, limiter::RateLimiter},
    backoff::Backoff,
    batch::{check_submit, Batch, JobDetail, JobQuery, JobStatus, JobSummary, SubmitJob, SubmittedJob},
    error::{PortError, PortResult},
};

/// Most job ids one DescribeJobs call takes.
pub const DESCRIBE_BATCH: usize = 100;

/// The aws-sdk-batch implementation of [`Batch`]. Cheap to clone; clones share the rate limiter.
#[derive(Clone)]
pub struct AwsBatch {
    client: Client,
    limiter: Arc<RateLimiter>,
}

impl AwsBatch {
    pub(crate) fn new(client: Client, limiter: Arc<RateLimiter>) -> Self {
        AwsBatch { client, limiter }
    }

    /// The SubmitJob rate limiter (shared by every port made from the same clients).
    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// One SubmitJob call, without the SDK's retries.
    async fn submit_once(&self, req: &SubmitJob) -> PortResult<SubmittedJob> {
        let mut call = self
            .client
            .submit_job()
            .job_name(&req.job_name)
            .job_queue(&req.job_queue)
            .job_definition(&req.job_definition)
            .set_depends_on(
                (!req.depends_on.is_empty()).then(|| req.depends_on.iter().map(to_dependency).collect()),
            )
            .container_overrides(to_overrides(&req.container))
            .retry_strategy(to_retry(&req.retry_strategy))
            .propagate_tags(convert::PROPAGATE_TAGS)
            .set_tags(
                (!req.tags.is_empty()).then(|| req.tags.clone().into_iter().collect::<HashMap<_, _>>()),
            );
        if let Some(size) = req.array_size {
            call = call.array_properties(ArrayProperties::builder().size(size as i32).build());
        }
        if let Some(secs) = req.timeout_seconds {
            let secs = i32::try_from(secs).unwrap_or(i32::MAX);
            call = call.timeout(JobTimeout::builder().attempt_duration_seconds(secs).build());
        }
        let no_retries = aws_sdk_batch::config::Builder::default().retry_config(RetryConfig::disabled());
        let out = call
            .customize()
            .config_override(no_retries)
            .send()
            .await
            .map_err(|e| port_error(&convert::describe(req), e))?;
        let job_id = out.job_id.filter(|id| !id.is_empty()).ok_or_else(|| {
            PortError::backend(format!("{}: the answer has no job id", convert::describe(req)))
        })?;
        Ok(SubmittedJob { job_id, job_name: out.job_name.unwrap_or_else(|| req.job_name.clone()) })
    }

    /// Every page of one ListJobs query.
    async fn list_pages(
        &self,
        what: &str,
        build: impl Fn() -> aws_sdk_batch::operation::list_jobs::builders::ListJobsFluentBuilder,
    ) -> PortResult<Vec<JobSummary>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = build().set_next_token(token).send().await.map_err(|e| port_error(what, e))?;
            for j in page.job_summary_list.unwrap_or_default() {
                out.push(from_summary(j).map_err(|m| PortError::backend(format!("{what}: {m}")))?);
            }
            match page.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(out),
            }
        }
    }
}

/// Calls `call` until it is not throttled, waiting with backoff and full
/// jitter between tries; after `backoff.max_attempts` throttled tries, the
/// last error, saying so. Any other outcome is returned at once.
pub(crate) async fn retry_throttled<T, F, Fut>(backoff: Backoff, mut call: F) -> PortResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = PortResult<T>>,
{
    let mut retry = 0;
    loop {
        match call().await {
            Err(PortError::Throttled(m)) if retry + 1 < backoff.max_attempts => {
                tracing::debug!(retry, error = %m, "throttled; retrying");
                tokio::time::sleep(backoff.jittered(retry)).await;
                retry += 1;
            }
            Err(PortError::Throttled(m)) => {
                return Err(PortError::throttled(format!(
                    "{m} (still throttled after {} attempts: lower the submission rate or retry later)",
                    backoff.max_attempts
                )))
            }
            other => return other,
        }
    }
}

/// One SubmitJob through the process's limiter: every try (the first and
/// each retry after throttling) waits for a token first.
pub(crate) async fn paced<T, F, Fut>(limiter: &RateLimiter, backoff: Backoff, mut call: F) -> PortResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = PortResult<T>>,
{
    retry_throttled(backoff, || {
        let attempt = call();
        async move {
            limiter.acquire().await;
            attempt.await
        }
    })
    .await
}

#[async_trait]
impl Batch for AwsBatch {
    async fn submit_job(&self, request: SubmitJob) -> PortResult<SubmittedJob> {
        check_submit(&request)
            .map_err(|e| PortError::invalid(format!("job {}: {}", request.job_name, e.message())))?;
        paced(&self.limiter, Backoff::SUBMIT_JOB, || self.submit_once(&request)).await
    }

    async fn describe_jobs(&self, job_ids: &[String]) -> PortResult<Vec<JobDetail>> {
        let mut jobs = Vec::with_capacity(job_ids.len());
        for chunk in job_ids.chunks(DESCRIBE_BATCH) {
            let what = format!("batch DescribeJobs ({} ids, first {})", chunk.len(), chunk[0]);
            let out = self
                .client
                .describe_jobs()
                .set_jobs(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| port_error(&what, e))?;
            for j in out.jobs.unwrap_or_default() {
                jobs.push(from_detail(j).map_err(|m| PortError::backend(format!("{what}: {m}")))?);
            }
        }
        // In the order asked for (AWS answers in any order).
        let position: HashMap<&str, usize> =
            job_ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        jobs.sort_by_key(|j| position.get(j.job_id.as_str()).copied().unwrap_or(usize::MAX));
        jobs.dedup_by(|a, b| a.job_id == b.job_id);
        Ok(jobs)
    }

    async fn list_jobs(&self, query: &JobQuery) -> PortResult<Vec<JobSummary>> {
        match query {
            JobQuery::ByName { queue, pattern } => {
                let what = format!("batch ListJobs on queue {queue} named {pattern:?}");
                let filter = KeyValuesPair::builder().name("JOB_NAME").values(pattern).build();
                let jobs = self
                    .list_pages(&what, || self.client.list_jobs().job_queue(queue).filters(filter.clone()))
                    .await?;
                Ok(jobs.into_iter().filter(|j| !is_child_id(&j.job_id)).collect())
            }
            JobQuery::ByStatus { queue, status } => {
                let what = format!("batch ListJobs on queue {queue} in status {status}");
                let jobs = self
                    .list_pages(&what, || {
                        self.client.list_jobs().job_queue(queue).job_status(to_status(*status))
                    })
                    .await?;
                Ok(jobs.into_iter().filter(|j| !is_child_id(&j.job_id)).collect())
            }
            JobQuery::ArrayChildren { array_job_id, status: Some(status) } => {
                let what = format!("batch ListJobs of array job {array_job_id} in status {status}");
                self.list_pages(&what, || {
                    self.client.list_jobs().array_job_id(array_job_id).job_status(to_status(*status))
                })
                .await
            }
            JobQuery::ArrayChildren { array_job_id, status: None } => {
                // In lifecycle order, so a child that moves on while we list is
                // seen again in its later status; the last sighting wins.
                let mut seen: HashMap<String, JobSummary> = HashMap::new();
                for status in JobStatus::ALL {
                    let what = format!("batch ListJobs of array job {array_job_id} in status {status}");
                    let jobs = self
                        .list_pages(&what, || {
                            self.client.list_jobs().array_job_id(array_job_id).job_status(to_status(status))
                        })
                        .await?;
                    for j in jobs {
                        seen.insert(j.job_id.clone(), j);
                    }
                }
                let mut children: Vec<JobSummary> = seen.into_values().collect();
                children.sort_by_key(|c| c.array_properties.as_ref().and_then(|a| a.index));
                Ok(children)
            }
        }
    }

    async fn cancel_job(&self, job_id: &str, reason: &str) -> PortResult<()> {
        self.client
            .cancel_job()
            .job_id(job_id)
            .reason(reason)
            .send()
            .await
            .map_err(|e| port_error(&format!("batch CancelJob {job_id}"), e))?;
        Ok(())
    }

    async fn terminate_job(&self, job_id: &str, reason: &str) -> PortResult<()> {
        self.client
            .terminate_job()
            .job_id(job_id)
            .reason(reason)
            .send()
            .await
            .map_err(|e| port_error(&format!("batch TerminateJob {job_id}"), e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const FAST: Backoff =
        Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(1), max_attempts: 4 };

    #[tokio::test(start_paused = true)]
    async fn throttled_calls_are_retried_then_succeed() {
        let mut calls = 0;
        let start = tokio::time::Instant::now();
        let out = retry_throttled(FAST, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(PortError::throttled("429"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(out, Ok(3));
        // Two waits, each at most its ceiling (100 ms, 200 ms).
        assert!(start.elapsed() <= Duration::from_millis(300), "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_gives_up_after_the_last_attempt() {
        let mut calls = 0;
        let out: PortResult<()> = retry_throttled(FAST, || {
            calls += 1;
            async { Err(PortError::throttled("TooManyRequestsException")) }
        })
        .await;
        assert_eq!(calls, 4);
        assert!(
            matches!(&out, Err(PortError::Throttled(m)) if m.contains("TooManyRequestsException") && m.contains("4 attempts")),
            "{out:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_are_not_retried() {
        // A timeout may have created the job: SubmitJob is never re-sent for it.
        let mut calls = 0;
        let out: PortResult<()> = retry_throttled(FAST, || {
            calls += 1;
            async { Err(PortError::unavailable("timed out")) }
        })
        .await;
        assert_eq!((calls, out), (1, Err(PortError::unavailable("timed out"))));
    }
}
