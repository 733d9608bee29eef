//! ListJobs with AWS's rules: one of `jobQueue` / `arrayJobId`; without a
//! filter, the jobs in `jobStatus` (RUNNING by default), up to 1,000 a page;
//! with one filter (`JOB_NAME`, `JOB_DEFINITION`, `BEFORE_CREATED_AT`,
//! `AFTER_CREATED_AT`), every status, newest first, up to 100 a page.

use serde::Deserialize;
use serde_json::{json, Value};

use super::super::{
    environments::JQ,
    error::{ApiError, ApiResult},
    members, name_of, page, BatchApi,
};
use crate::batch::{Batch, JobQuery, JobStatus, JobSummary};

/// Largest page without a filter (AWS: "returns up to 1000 values").
const MAX_PAGE: i64 = 1000;
/// Largest page with a filter (AWS: "returns up to 100 values").
const MAX_FILTERED_PAGE: i64 = 100;
/// Most ids per DescribeJobs the JOB_DEFINITION filter reads at once.
const DESCRIBE_CHUNK: usize = 100;

/// `KeyValuesPair`: one ListJobs filter.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    name: Option<String>,
    values: Option<Vec<String>>,
}

/// `ListJobsRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListJobsRequest {
    job_queue: Option<String>,
    array_job_id: Option<String>,
    multi_node_job_id: Option<String>,
    job_status: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    filters: Option<Vec<Filter>>,
}

/// The one filter of a request, parsed.
#[derive(Debug, PartialEq)]
enum ListFilter {
    Name(String),
    Definition(String),
    Before(i64),
    After(i64),
}

fn parse_filter(filters: &[Filter]) -> ApiResult<Option<ListFilter>> {
    let f = match filters {
        [] => return Ok(None),
        [f] => f,
        more => {
            return Err(ApiError::client(format!(
                "filters has {} entries: AWS Batch takes one filter at a time",
                more.len()
            )))
        }
    };
    let value = match f.values.as_deref() {
        Some([v]) if !v.is_empty() => v.clone(),
        _ => return Err(ApiError::client("filters[0].values must hold exactly one non-empty value")),
    };
    let millis = || {
        value.parse::<i64>().map_err(|_| {
            ApiError::client(format!("filters[0].values {value:?} is not valid: give epoch milliseconds"))
        })
    };
    Ok(Some(match f.name.as_deref() {
        Some("JOB_NAME") => ListFilter::Name(value.clone()),
        Some("JOB_DEFINITION") => ListFilter::Definition(value.clone()),
        Some("BEFORE_CREATED_AT") => ListFilter::Before(millis()?),
        Some("AFTER_CREATED_AT") => ListFilter::After(millis()?),
        Some("SHARE_IDENTIFIER") => {
            return Err(ApiError::client(
                "filters[0].name SHARE_IDENTIFIER is not supported by batchfan batch-api: fair-share scheduling is not emulated",
            ))
        }
        other => {
            return Err(ApiError::client(format!(
                "filters[0].name {other:?} is not valid: use JOB_NAME, JOB_DEFINITION, BEFORE_CREATED_AT or AFTER_CREATED_AT"
            )))
        }
    }))
}

/// Whether a job's definition ARN (`…:job-definition/NAME:REV`) matches a
/// JOB_DEFINITION filter: an ARN exactly; a name for every revision; `prefix*`.
fn definition_matches(arn: &str, filter: &str) -> bool {
    if filter.starts_with("arn:") {
        return arn == filter;
    }
    let name = name_of(arn, "job-definition").rsplit_once(':').map_or(arn, |(n, _)| n);
    match filter.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == filter,
    }
}

impl BatchApi {
    pub(crate) async fn list_jobs(&self, req: ListJobsRequest) -> ApiResult<Value> {
        members::check_list(req.multi_node_job_id.as_ref())?;
        let status = req
            .job_status
            .as_deref()
            .map(|s| {
                s.parse::<JobStatus>().map_err(|e| ApiError::client(format!("jobStatus is not valid: {e}")))
            })
            .transpose()?;
        let filter = parse_filter(req.filters.as_deref().unwrap_or_default())?;
        let cap = if filter.is_some() { MAX_FILTERED_PAGE } else { MAX_PAGE };
        let max = match req.max_results {
            Some(n) if n < 1 => {
                return Err(ApiError::client(format!("maxResults {n} is out of range: give 1 or more")))
            }
            Some(n) => n.min(cap),
            None => cap,
        };
        // As AWS: with a filter every status is listed; without, jobStatus or else RUNNING.
        let status = if filter.is_some() { None } else { Some(status.unwrap_or(JobStatus::Running)) };
        let mut jobs = match (&req.array_job_id, &req.job_queue) {
            (Some(_), Some(_)) => return Err(ApiError::client(
                "jobQueue and arrayJobId are both set: give only one (the queue to list, or an array job)",
            )),
            (Some(array_job_id), None) => {
                let array_job_id = name_of(array_job_id, "job").to_string();
                self.engine.list_jobs(&JobQuery::ArrayChildren { array_job_id, status }).await?
            }
            (None, Some(queue)) => {
                let (queue, _) = self.existing(JQ, queue, "jobQueue")?;
                let name = match &filter {
                    Some(ListFilter::Name(n)) => Some(n.clone()),
                    _ => None,
                };
                self.queue_jobs(queue, status, name).await?
            }
            (None, None) => {
                return Err(ApiError::client(
                    "jobQueue or arrayJobId is required: give the queue to list, or an array job",
                ))
            }
        };
        match &filter {
            Some(ListFilter::Before(t)) => jobs.retain(|j| j.created_at < *t),
            Some(ListFilter::After(t)) => jobs.retain(|j| j.created_at > *t),
            Some(ListFilter::Definition(d)) => jobs = self.with_definition(jobs, d).await?,
            Some(ListFilter::Name(_)) | None => {}
        }
        let (jobs, next) = page(jobs, Some(max), req.next_token.as_deref())?;
        let list: Vec<Value> = jobs.iter().map(|j| self.summary_json(j)).collect();
        Ok(json!({ "jobSummaryList": list, "nextToken": next }))
    }

    /// The jobs whose definition matches a JOB_DEFINITION filter, in order.
    async fn with_definition(&self, jobs: Vec<JobSummary>, filter: &str) -> ApiResult<Vec<JobSummary>> {
        let mut keep = std::collections::HashSet::new();
        for chunk in jobs.chunks(DESCRIBE_CHUNK) {
            let ids: Vec<String> = chunk.iter().map(|j| j.job_id.clone()).collect();
            for d in self.engine.describe_jobs(&ids).await? {
                if definition_matches(&d.job_definition, filter) {
                    keep.insert(d.job_id);
                }
            }
        }
        Ok(jobs.into_iter().filter(|j| keep.contains(&j.job_id)).collect())
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(name: &str, value: &str) -> Filter {
        Filter { name: Some(name.into()), values: Some(vec![value.into()]) }
    }

    #[test]
    fn one_filter_at_a_time_with_aws_names() {
        assert_eq!(parse_filter(&[]).unwrap(), None);
        assert_eq!(parse_filter(&[filter("JOB_NAME", "a*")]).unwrap(), Some(ListFilter::Name("a*".into())));
        assert_eq!(parse_filter(&[filter("AFTER_CREATED_AT", "5")]).unwrap(), Some(ListFilter::After(5)));
        let two = parse_filter(&[filter("JOB_NAME", "a"), filter("JOB_NAME", "b")]).unwrap_err();
        assert!(two.to_string().starts_with("filters has 2 entries"), "{two}");
        let bad = parse_filter(&[filter("BEFORE_CREATED_AT", "yesterday")]).unwrap_err();
        assert!(bad.to_string().contains("\"yesterday\""), "{bad}");
        assert!(parse_filter(&[filter("SHARE_IDENTIFIER", "s")])
            .unwrap_err()
            .to_string()
            .contains("fair-share"));
        assert!(parse_filter(&[filter("STATUS", "s")]).unwrap_err().to_string().contains("\"STATUS\""));
    }

    #[test]
    fn definition_filters_match_as_aws_documents() {
        let arn = "arn:aws:batch:us-east-1:123456789012:job-definition/jd1:3";
        assert!(definition_matches(arn, "jd1"));
        assert!(!definition_matches(arn, "jd"));
        assert!(definition_matches(arn, "jd*"));
        assert!(definition_matches(arn, arn));
        assert!(!definition_matches(arn, "arn:aws:batch:us-east-1:123456789012:job-definition/jd1:2"));
    }
}
