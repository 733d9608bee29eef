//! SubmitJob, DescribeJobs, ListJobs, TerminateJob, CancelJob over the local
//! engine. A submission is resolved against its job definition (overrides and
//! `parameters` win over the definition's) into the library's
//! [`SubmitJob`](crate::batch::SubmitJob), which the engine checks once more
//! with AWS's limits ([`crate::batch::check_submit`]) and runs.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    environments::JQ,
    error::{ApiError, ApiResult},
    model::{DefinitionIn, SubmitJobRequest},
    name_of, page,
    store::JobExtras,
    validate, BatchApi,
};
use crate::batch::{
    Batch, DependencyKind, JobDependency, JobQuery, JobStatus, JobSummary, RetryStrategy, SubmitJob,
};

mod container;
mod views;

/// Most ids in one DescribeJobs request.
const MAX_DESCRIBE: usize = 100;

/// `DescribeJobsRequest`.
#[derive(Debug, Default, Deserialize)]
pub struct DescribeJobsRequest {
    jobs: Option<Vec<String>>,
}

/// `KeyValuesPair`: one ListJobs filter.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    name: Option<String>,
    values: Option<Vec<String>>,
}

/// `ListJobsRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobsRequest {
    job_queue: Option<String>,
    array_job_id: Option<String>,
    multi_node_job_id: Option<String>,
    job_status: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    filters: Option<Vec<Filter>>,
}

/// `TerminateJobRequest` / `CancelJobRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopRequest {
    job_id: Option<String>,
    reason: Option<String>,
}

/// What a ListJobs filter keeps besides the engine's query.
#[derive(Debug, Default)]
struct CreatedWindow {
    before: Option<i64>,
    after: Option<i64>,
}

fn dependency(i: usize, d: &super::model::DependencyIn) -> ApiResult<JobDependency> {
    let kind = match d.kind.as_deref() {
        None => DependencyKind::Standard,
        Some("N_TO_N") => DependencyKind::NToN,
        Some("SEQUENTIAL") => DependencyKind::Sequential,
        Some(other) => {
            return Err(ApiError::client(format!(
                "dependsOn[{i}].type {other:?} is not valid: use N_TO_N, SEQUENTIAL, or leave it out for a plain dependency"
            )))
        }
    };
    let job_id = d.job_id.as_deref().filter(|s| !s.is_empty()).map(|id| name_of(id, "job").to_string());
    if job_id.is_none() && kind != DependencyKind::Sequential {
        return Err(ApiError::client(format!(
            "dependsOn[{i}].jobId is required: give the id of the job to wait for"
        )));
    }
    Ok(JobDependency { job_id, kind })
}

impl BatchApi {
    pub(crate) async fn submit_job(&self, req: SubmitJobRequest) -> ApiResult<Value> {
        let name = validate::required(&req.job_name, "jobName")?;
        validate::name(name, "jobName")?;
        let (queue, detail) =
            self.existing(JQ, validate::required(&req.job_queue, "jobQueue")?, "jobQueue")?;
        if detail.get("state").and_then(Value::as_str) != Some("ENABLED") {
            return Err(ApiError::client(format!(
                "jobQueue {queue:?} is DISABLED: enable it with UpdateJobQueue (state ENABLED)"
            )));
        }
        let def_row =
            self.resolve_definition(validate::required(&req.job_definition, "jobDefinition")?, false)?;
        let def: DefinitionIn = serde_json::from_value(def_row.body.clone()).map_err(|e| {
            ApiError::Server(format!("stored job definition {} is unreadable: {e}", def_row.name))
        })?;
        let array_size =
            req.array_properties.as_ref().and_then(|a| a.size).map(validate::array_size).transpose()?;
        let deps = req.depends_on.as_deref().unwrap_or_default();
        validate::dependency_count(deps.len())?;
        let depends_on = deps.iter().enumerate().map(|(i, d)| dependency(i, d)).collect::<ApiResult<_>>()?;
        let mut parameters = def.parameters.clone().unwrap_or_default();
        parameters.extend(req.parameters.clone().unwrap_or_default());
        let container = container::resolve(
            &def_row.name,
            &def,
            req.container_overrides.as_ref(),
            &parameters,
            array_size,
        )?;
        let retry_strategy = match (&req.retry_strategy, &def.retry_strategy) {
            (Some(r), _) => validate::retry_strategy(r, "retryStrategy")?,
            (None, Some(r)) => validate::retry_strategy(r, "jobDefinition retryStrategy")?,
            (None, None) => RetryStrategy::default(),
        };
        let timeout_seconds = match (req.timeout.as_ref(), def.timeout.as_ref()) {
            (Some(t), _) => {
                t.attempt_duration_seconds.map(|s| validate::timeout(s, "timeout.attemptDurationSeconds"))
            }
            (None, Some(t)) => {
                t.attempt_duration_seconds.map(|s| validate::timeout(s, "jobDefinition timeout"))
            }
            (None, None) => None,
        }
        .transpose()?;
        let tags = req.tags.clone().unwrap_or_default();
        let request = SubmitJob {
            job_name: name.to_string(),
            job_queue: queue,
            job_definition: self.arn("job-definition", &format!("{}:{}", def_row.name, def_row.revision)),
            array_size,
            depends_on,
            container,
            retry_strategy,
            timeout_seconds,
            tags: tags.clone(),
        };
        let submitted = self.engine.submit_job(request).await?;
        // The job runs from here on; a crash before this write loses only its parameters in DescribeJobs.
        let propagate_tags = req.propagate_tags.or(def.propagate_tags).unwrap_or(false);
        self.store.put_job(&submitted.job_id, &JobExtras { parameters, propagate_tags })?;
        let job_arn = self.arn("job", &submitted.job_id);
        if !tags.is_empty() {
            self.store.tag(&job_arn, &tags)?;
        }
        Ok(json!({ "jobArn": job_arn, "jobName": submitted.job_name, "jobId": submitted.job_id }))
    }

    pub(crate) async fn describe_jobs(&self, req: DescribeJobsRequest) -> ApiResult<Value> {
        let Some(ids) = req.jobs else {
            return Err(ApiError::client("jobs is required: give a list of up to 100 job ids"));
        };
        if ids.len() > MAX_DESCRIBE {
            return Err(ApiError::client(format!(
                "jobs has {} ids, over the AWS limit of {MAX_DESCRIBE}: describe them in batches of {MAX_DESCRIBE}",
                ids.len()
            )));
        }
        let ids: Vec<String> = ids.iter().map(|id| name_of(id, "job").to_string()).collect();
        let details = self.engine.describe_jobs(&ids).await?;
        let jobs = details.iter().map(|d| self.detail_json(d)).collect::<ApiResult<Vec<_>>>()?;
        Ok(json!({ "jobs": jobs }))
    }

    pub(crate) async fn list_jobs(&self, req: ListJobsRequest) -> ApiResult<Value> {
        if req.multi_node_job_id.is_some() {
            return Err(ApiError::client(
                "multiNodeJobId is not emulated: the local engine runs no multi-node jobs",
            ));
        }
        let status = req
            .job_status
            .as_deref()
            .map(|s| {
                s.parse::<JobStatus>().map_err(|e| ApiError::client(format!("jobStatus is not valid: {e}")))
            })
            .transpose()?;
        let mut name = None;
        let mut window = CreatedWindow::default();
        for (i, f) in req.filters.iter().flatten().enumerate() {
            let value = match f.values.as_deref() {
                Some([v]) => v.clone(),
                _ => {
                    return Err(ApiError::client(format!("filters[{i}].values must hold exactly one value")))
                }
            };
            let millis = || {
                value.parse::<i64>().map_err(|_| {
                    ApiError::client(format!(
                        "filters[{i}].values {value:?} is not valid: give epoch milliseconds"
                    ))
                })
            };
            match f.name.as_deref() {
                Some("JOB_NAME") => name = Some(value.clone()),
                Some("BEFORE_CREATED_AT") => window.before = Some(millis()?),
                Some("AFTER_CREATED_AT") => window.after = Some(millis()?),
                other => {
                    return Err(ApiError::client(format!(
                        "filters[{i}].name {other:?} is not valid here: use JOB_NAME, BEFORE_CREATED_AT or AFTER_CREATED_AT"
                    )))
                }
            }
        }
        // As AWS: with filters every status is listed; without, jobStatus or else RUNNING.
        let filtered = req.filters.as_ref().is_some_and(|f| !f.is_empty());
        let status = if filtered { None } else { Some(status.unwrap_or(JobStatus::Running)) };
        let mut jobs = match (&req.array_job_id, &req.job_queue) {
            (Some(array_job_id), _) => {
                let array_job_id = name_of(array_job_id, "job").to_string();
                self.engine.list_jobs(&JobQuery::ArrayChildren { array_job_id, status }).await?
            }
            (None, Some(queue)) => {
                let (queue, _) = self.existing(JQ, queue, "jobQueue")?;
                self.queue_jobs(queue, status, name).await?
            }
            (None, None) => {
                return Err(ApiError::client(
                    "jobQueue or arrayJobId is required: give the queue to list, or an array job",
                ))
            }
        };
        jobs.retain(|j| {
            window.before.is_none_or(|t| j.created_at < t) && window.after.is_none_or(|t| j.created_at > t)
        });
        let (jobs, next) = page(jobs, req.max_results, req.next_token.as_deref())?;
        let list: Vec<Value> = jobs.iter().map(|j| self.summary_json(j)).collect();
        Ok(json!({ "jobSummaryList": list, "nextToken": next }))
    }

    async fn queue_jobs(
        &self,
        queue: String,
        status: Option<JobStatus>,
        name: Option<String>,
    ) -> ApiResult<Vec<JobSummary>> {
        if let Some(pattern) = name {
            return Ok(self.engine.list_jobs(&JobQuery::ByName { queue, pattern }).await?);
        }
        let statuses: Vec<JobStatus> = status.map_or_else(|| JobStatus::ALL.to_vec(), |s| vec![s]);
        let mut jobs = Vec::new();
        for status in statuses {
            jobs.extend(self.engine.list_jobs(&JobQuery::ByStatus { queue: queue.clone(), status }).await?);
        }
        if status.is_none() {
            // Several statuses merged: newest first, as AWS lists filtered results.
            jobs.sort_by_key(|j| std::cmp::Reverse(j.created_at));
        }
        Ok(jobs)
    }

    async fn stop(&self, req: StopRequest, terminate: bool) -> ApiResult<Value> {
        let id = validate::required(&req.job_id, "jobId")?;
        let reason = validate::required(&req.reason, "reason")?;
        let id = name_of(id, "job");
        if terminate {
            self.engine.terminate_job(id, reason).await?;
        } else {
            self.engine.cancel_job(id, reason).await?;
        }
        Ok(json!({}))
    }

    pub(crate) async fn terminate_job(&self, req: StopRequest) -> ApiResult<Value> {
        self.stop(req, true).await
    }

    pub(crate) async fn cancel_job(&self, req: StopRequest) -> ApiResult<Value> {
        self.stop(req, false).await
    }
}
