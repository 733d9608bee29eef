//! DescribeJobs and ListJobs views of the state.

use super::{
    deps::Found,
    events::status_summary,
    state::{JobIx, State, UnitIx},
};
use crate::{
    batch::{ArrayProperties, JobDetail, JobQuery, JobSummary},
    error::{PortError, PortResult},
};

impl State {
    /// Details of the known ids, in the order asked; unknown ids are omitted.
    pub(crate) fn describe(&self, ids: &[String]) -> Vec<JobDetail> {
        ids.iter()
            .filter_map(|id| match self.find(id)? {
                Found::Job(j) if self.job(j).size.is_some() => Some(self.parent_detail(j)),
                found => Some(self.unit_detail(self.found_unit(found)?)),
            })
            .collect()
    }

    fn parent_detail(&self, j: JobIx) -> JobDetail {
        let job = self.job(j);
        JobDetail {
            job_id: job.id.clone(),
            status: job.status,
            status_reason: job.reason.clone(),
            started_at: job.started_at,
            stopped_at: job.stopped_at,
            array_properties: Some(ArrayProperties {
                size: job.size,
                index: None,
                status_summary: status_summary(&job.counts),
            }),
            attempts: Vec::new(),
            ..self.detail_base(j)
        }
    }

    fn unit_detail(&self, u: UnitIx) -> JobDetail {
        let unit = self.unit(u);
        let job = self.job(unit.job);
        JobDetail {
            job_id: self.unit_id(u),
            status: unit.status,
            status_reason: unit.reason.clone(),
            started_at: unit.started_at,
            stopped_at: unit.stopped_at,
            array_properties: job
                .size
                .map(|_| ArrayProperties { index: Some(unit.index), ..ArrayProperties::default() }),
            attempts: unit.attempts.clone(),
            ..self.detail_base(unit.job)
        }
    }

    fn detail_base(&self, j: JobIx) -> JobDetail {
        let job = self.job(j);
        let req = &job.request;
        JobDetail {
            job_id: String::new(),
            job_name: req.job_name.clone(),
            job_queue: job.queue.clone(),
            job_definition: req.job_definition.clone(),
            status: job.status,
            status_reason: None,
            created_at: job.created_at,
            started_at: None,
            stopped_at: None,
            depends_on: req.depends_on.clone(),
            array_properties: None,
            attempts: Vec::new(),
            container: req.container.clone(),
            retry_strategy: req.retry_strategy.clone(),
            timeout_seconds: req.timeout_seconds,
            tags: req.tags.clone(),
        }
    }

    /// ListJobs for one of its query forms: by name newest first (as AWS),
    /// otherwise in submission order.
    pub(crate) fn list(&self, query: &JobQuery) -> PortResult<Vec<JobSummary>> {
        match query {
            JobQuery::ByName { queue, pattern } => {
                // As AWS: case-insensitive, a trailing '*' matches by prefix, newest first.
                let pattern = pattern.to_lowercase();
                let (prefix, exact) = match pattern.strip_suffix('*') {
                    Some(prefix) => (prefix, false),
                    None => (pattern.as_str(), true),
                };
                let start = (queue.clone(), prefix.to_string());
                let mut jobs: Vec<JobIx> = self
                    .by_name
                    .range(start..)
                    .take_while(|((q, name), _)| q == queue && name.starts_with(prefix))
                    .filter(|((_, name), _)| !exact || name == prefix)
                    .flat_map(|(_, js)| js.iter().copied())
                    .collect();
                jobs.sort_unstable_by(|a, b| b.cmp(a));
                Ok(jobs.into_iter().map(|j| self.job_summary(j)).collect())
            }
            JobQuery::ByStatus { queue, status } => Ok((0..self.jobs.len() as JobIx)
                .filter(|&j| self.job(j).queue == *queue && self.job(j).status == *status)
                .map(|j| self.job_summary(j))
                .collect()),
            JobQuery::ArrayChildren { array_job_id, status } => {
                let j = match self.find(array_job_id) {
                    Some(Found::Job(j)) if self.job(j).size.is_some() => j,
                    Some(_) => {
                        return Err(PortError::invalid(format!(
                            "{array_job_id} is not an array job: list its children with the array job's id"
                        )))
                    }
                    None => return Err(PortError::not_found(format!("array job {array_job_id}"))),
                };
                Ok(self
                    .job(j)
                    .units()
                    .filter(|&u| status.is_none() || *status == Some(self.unit(u).status))
                    .map(|u| self.unit_summary(u))
                    .collect())
            }
        }
    }

    fn job_summary(&self, j: JobIx) -> JobSummary {
        let job = self.job(j);
        match job.size {
            None => self.unit_summary(job.first),
            Some(size) => JobSummary {
                job_id: job.id.clone(),
                job_name: job.request.job_name.clone(),
                status: job.status,
                status_reason: job.reason.clone(),
                created_at: job.created_at,
                started_at: job.started_at,
                stopped_at: job.stopped_at,
                array_properties: Some(ArrayProperties { size: Some(size), ..ArrayProperties::default() }),
                exit_code: None,
            },
        }
    }

    fn unit_summary(&self, u: UnitIx) -> JobSummary {
        let unit = self.unit(u);
        let job = self.job(unit.job);
        JobSummary {
            job_id: self.unit_id(u),
            job_name: job.request.job_name.clone(),
            status: unit.status,
            status_reason: unit.reason.clone(),
            created_at: job.created_at,
            started_at: unit.started_at,
            stopped_at: unit.stopped_at,
            array_properties: job
                .size
                .map(|_| ArrayProperties { index: Some(unit.index), ..ArrayProperties::default() }),
            exit_code: unit.attempts.last().and_then(|a| a.exit_code),
        }
    }
}
