//! The [`Batch`] port on the local engine.

use std::sync::MutexGuard;

use async_trait::async_trait;

use super::{
    admit,
    deps::Found,
    state::{State, Stop},
    LocalEngine,
};
use crate::{
    batch::{fsm::Event, Batch, JobDetail, JobQuery, JobStatus, JobSummary, SubmitJob, SubmittedJob},
    error::{PortError, PortResult},
};

/// Longest cancel/terminate reason AWS accepts.
const MAX_REASON_CHARS: usize = 1024;

impl LocalEngine {
    /// The state, unless the engine has shut down.
    fn state(&self) -> PortResult<MutexGuard<'_, State>> {
        let state = self.inner.shared.lock();
        if state.store.is_none() {
            return Err(PortError::unavailable(format!(
                "the local engine on {} is shut down: open it again",
                self.inner.settings.state_dir.display()
            )));
        }
        Ok(state)
    }
}

#[async_trait]
impl Batch for LocalEngine {
    async fn submit_job(&self, request: SubmitJob) -> PortResult<SubmittedJob> {
        admit::check_request(&request, &self.inner.settings).map_err(PortError::invalid)?;
        let submitted = self.state()?.submit(request)?;
        self.wake();
        Ok(submitted)
    }

    async fn describe_jobs(&self, job_ids: &[String]) -> PortResult<Vec<JobDetail>> {
        Ok(self.state()?.describe(job_ids))
    }

    async fn list_jobs(&self, query: &JobQuery) -> PortResult<Vec<JobSummary>> {
        self.state()?.list(query)
    }

    async fn cancel_job(&self, job_id: &str, reason: &str) -> PortResult<()> {
        self.state()?.stop_job(job_id, reason, false)?;
        self.wake();
        Ok(())
    }

    async fn terminate_job(&self, job_id: &str, reason: &str) -> PortResult<()> {
        self.state()?.stop_job(job_id, reason, true)?;
        self.wake();
        Ok(())
    }
}

impl State {
    /// CancelJob (`terminate: false`) or TerminateJob on a plain job, an array
    /// (all its children) or one child. Units not started fail with `reason`;
    /// with terminate, started ones get SIGTERM, then SIGKILL after the grace.
    fn stop_job(&mut self, job_id: &str, reason: &str, terminate: bool) -> PortResult<()> {
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(PortError::invalid(format!(
                "reason is {} characters, over the AWS limit of {MAX_REASON_CHARS}: shorten it",
                reason.chars().count()
            )));
        }
        let found = self.find(job_id).ok_or_else(|| PortError::not_found(format!("job {job_id}")))?;
        let units = match found {
            Found::Job(j) => {
                if self.job(j).size.is_some() && !self.job(j).status.is_terminal() {
                    self.job_mut(j).reason = Some(reason.to_string());
                    self.mark_job(j);
                }
                self.job(j).units()
            }
            Found::Child(j, i) => self.job(j).first + i..self.job(j).first + i + 1,
        };
        let event = if terminate { Event::Terminate } else { Event::Cancel };
        for u in units {
            match self.unit(u).status {
                JobStatus::Submitted | JobStatus::Pending | JobStatus::Runnable => {
                    self.apply_or_log(u, event, Some(reason.to_string()));
                }
                JobStatus::Starting | JobStatus::Running if terminate => {
                    self.stop_run(u, Stop::Terminate(reason.to_string()));
                }
                _ => {}
            }
        }
        self.propagate();
        self.commit()?;
        self.events.flush();
        Ok(())
    }
}
