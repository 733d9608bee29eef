//! A Batch port that reports chosen jobs FAILED early, as AWS may (it does
//! not document that an array parent fails only after its children ended):
//! the jobs in `failed` read FAILED in DescribeJobs and listings, while
//! everything else, their children included, keeps its real status.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use batchfan::{
    batch::{Batch, JobDetail, JobQuery, JobStatus, JobSummary, SubmitJob, SubmittedJob},
    error::PortResult,
};

/// `inner`, but the jobs in `failed` read FAILED.
pub struct ParentFailsEarly {
    pub inner: Arc<dyn Batch>,
    pub failed: Mutex<BTreeSet<String>>,
}

impl ParentFailsEarly {
    pub fn new(inner: Arc<dyn Batch>) -> Self {
        ParentFailsEarly { inner, failed: Mutex::default() }
    }

    /// From now on, `ids` read FAILED.
    pub fn fail(&self, ids: impl IntoIterator<Item = String>) {
        self.failed.lock().expect("not poisoned").extend(ids);
    }

    fn is_failed(&self, id: &str) -> bool {
        self.failed.lock().expect("not poisoned").contains(id)
    }
}

#[async_trait]
impl Batch for ParentFailsEarly {
    async fn submit_job(&self, request: SubmitJob) -> PortResult<SubmittedJob> {
        self.inner.submit_job(request).await
    }
    async fn describe_jobs(&self, job_ids: &[String]) -> PortResult<Vec<JobDetail>> {
        let mut jobs = self.inner.describe_jobs(job_ids).await?;
        for j in jobs.iter_mut().filter(|j| self.is_failed(&j.job_id)) {
            j.status = JobStatus::Failed;
        }
        Ok(jobs)
    }
    async fn list_jobs(&self, query: &JobQuery) -> PortResult<Vec<JobSummary>> {
        let mut jobs = self.inner.list_jobs(query).await?;
        for j in jobs.iter_mut().filter(|j| self.is_failed(&j.job_id)) {
            j.status = JobStatus::Failed;
        }
        Ok(jobs)
    }
    async fn cancel_job(&self, job_id: &str, reason: &str) -> PortResult<()> {
        self.inner.cancel_job(job_id, reason).await
    }
    async fn terminate_job(&self, job_id: &str, reason: &str) -> PortResult<()> {
        self.inner.terminate_job(job_id, reason).await
    }
}

/// Polls job `id` until it is `status` (2 minutes at most: a loaded machine).
pub async fn wait_status(batch: &dyn Batch, id: &str, status: JobStatus) -> JobDetail {
    for _ in 0..2400 {
        let d = batch.describe_jobs(&[id.to_owned()]).await.expect("describe").remove(0);
        if d.status == status {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{id} never reached {status}");
}
