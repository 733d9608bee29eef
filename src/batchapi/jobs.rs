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
    members,
    model::{DefinitionIn, SubmitJobRequest},
    name_of,
    store::JobExtras,
    validate, BatchApi,
};
use crate::{
    batch::{Batch, DependencyKind, JobDependency, RetryStrategy, SubmitJob},
    error::PortError,
};

mod container;
mod list;
mod views;

pub use self::list::{Filter, ListJobsRequest};

/// Most ids in one DescribeJobs request.
const MAX_DESCRIBE: usize = 100;

/// `DescribeJobsRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescribeJobsRequest {
    jobs: Option<Vec<String>>,
}

/// `TerminateJobRequest` / `CancelJobRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopRequest {
    job_id: Option<String>,
    reason: Option<String>,
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
        members::check_submit(&req)?;
        let name = validate::required(&req.job_name, "jobName")?;
        validate::name(name, "jobName")?;
        if let Some(p) = req.scheduling_priority_override {
            validate::scheduling_priority(p)?;
        }
        let tags = req.tags.clone().unwrap_or_default();
        validate::tags(&tags)?;
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
            req.container_overrides.as_ref().map(|o| o.to_container()).as_ref(),
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

    async fn stop(&self, req: StopRequest, terminate: bool) -> ApiResult<Value> {
        let id = validate::required(&req.job_id, "jobId")?;
        let reason = validate::required(&req.reason, "reason")?;
        let id = name_of(id, "job");
        let stopped = if terminate {
            self.engine.terminate_job(id, reason).await
        } else {
            self.engine.cancel_job(id, reason).await
        };
        stopped.map_err(|e| match e {
            PortError::NotFound(_) => {
                ApiError::client(format!("jobId {id:?} does not exist: give the id SubmitJob returned"))
            }
            other => other.into(),
        })?;
        Ok(json!({}))
    }

    pub(crate) async fn terminate_job(&self, req: StopRequest) -> ApiResult<Value> {
        self.stop(req, true).await
    }

    pub(crate) async fn cancel_job(&self, req: StopRequest) -> ApiResult<Value> {
        self.stop(req, false).await
    }
}
