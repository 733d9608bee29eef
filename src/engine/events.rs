//! Job state change events in EventBridge's `Batch Job State Change` detail
//! shape, one per status change of every job (parents and children) — but,
//! as on AWS, none for the initial SUBMITTED. They are queued while a change
//! is made and sent after it is committed, under the state lock, so each
//! job's events arrive in order.

use tokio::sync::mpsc::UnboundedSender;

use super::state::{JobIx, State, UnitIx};
use crate::batch::{event::ContainerDetail, ArrayProperties, JobStateChange, JobStatus};

/// Subscribers and the events of the change in progress.
#[derive(Debug, Default)]
pub(crate) struct Events {
    subscribers: Vec<UnboundedSender<JobStateChange>>,
    pending: Vec<JobStateChange>,
}

impl Events {
    pub(crate) fn subscribe(&mut self, tx: UnboundedSender<JobStateChange>) {
        self.subscribers.push(tx);
    }

    /// Whether anyone listens (events are not built otherwise).
    pub(crate) fn wanted(&self) -> bool {
        !self.subscribers.is_empty()
    }

    /// How many events are queued; see [`Events::truncate`].
    pub(crate) fn mark(&self) -> usize {
        self.pending.len()
    }

    /// Drops events queued after `mark` (their change was rolled back).
    pub(crate) fn truncate(&mut self, mark: usize) {
        self.pending.truncate(mark);
    }

    /// Sends the queued events to every live subscriber.
    pub(crate) fn flush(&mut self) {
        self.subscribers.retain(|s| !s.is_closed());
        if self.subscribers.is_empty() {
            self.pending.clear();
            return;
        }
        for event in self.pending.drain(..) {
            for s in &self.subscribers {
                let _ = s.send(event.clone());
            }
        }
    }
}

/// The AWS status summary: every status, with zeros.
pub(crate) fn status_summary(counts: &[u32; 7]) -> std::collections::BTreeMap<JobStatus, u32> {
    JobStatus::ALL.into_iter().map(|s| (s, counts[s as usize])).collect()
}

impl State {
    /// Queues the event for unit `u`'s current status (a plain job or a child).
    pub(crate) fn emit_unit(&mut self, u: UnitIx) {
        // AWS: "Events aren't created for the initial job submission."
        if !self.events.wanted() || self.unit(u).status == JobStatus::Submitted {
            return;
        }
        let unit = self.unit(u);
        let mut event = self.job_event_base(unit.job);
        let last = unit.attempts.last();
        match &unit.run {
            Some(run) => event.container.log_stream_name = Some(run.log.clone()),
            None => {
                event.container.exit_code = last.and_then(|a| a.exit_code);
                event.container.reason = last.and_then(|a| a.reason.clone());
                event.container.log_stream_name = last.and_then(|a| a.log_stream_name.clone());
            }
        }
        if self.job(unit.job).size.is_some() {
            event.array_properties =
                Some(ArrayProperties { index: Some(unit.index), ..ArrayProperties::default() });
        }
        event.job_id = self.unit_id(u);
        event.status = unit.status;
        event.status_reason = unit.reason.clone();
        event.attempts = unit.attempts.clone();
        event.started_at = unit.started_at;
        event.stopped_at = unit.stopped_at;
        self.events.pending.push(event);
    }

    /// Queues the event for array parent `j`'s current status.
    pub(crate) fn emit_parent(&mut self, j: JobIx) {
        if !self.events.wanted() || self.job(j).status == JobStatus::Submitted {
            return;
        }
        let job = self.job(j);
        let event = JobStateChange {
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
            ..self.job_event_base(j)
        };
        self.events.pending.push(event);
    }

    /// The fields a job's events share.
    fn job_event_base(&self, j: JobIx) -> JobStateChange {
        let job = self.job(j);
        let req = &job.request;
        JobStateChange {
            job_arn: String::new(),
            job_name: req.job_name.clone(),
            job_id: job.id.clone(),
            job_queue: job.queue.clone(),
            status: job.status,
            status_reason: None,
            attempts: Vec::new(),
            created_at: Some(job.created_at),
            started_at: None,
            stopped_at: None,
            retry_strategy: Some(req.retry_strategy.clone()),
            depends_on: req.depends_on.clone(),
            job_definition: req.job_definition.clone(),
            parameters: Default::default(),
            container: ContainerDetail {
                image: Some(req.container.image.clone()).filter(|i| !i.is_empty()),
                command: req.container.command.clone(),
                ..ContainerDetail::default()
            },
            array_properties: None,
            tags: req.tags.clone(),
            propagate_tags: None,
        }
    }
}
