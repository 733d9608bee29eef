//! The embedded service: the local backend wired like AWS wires it.
//!
//! The plan topic's subscriber is the submitter (the SNS → Lambda arrow), the
//! engine's event stream feeds the monitor (the EventBridge → Lambda arrow),
//! and triggers go through the planner. `batchfan run` uses it for one run;
//! `batchfan serve` for many.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use tracing::{debug, info, warn};

use crate::{
    backend::LocalBackend,
    run::{
        monitor::Monitor,
        plan_topic,
        planner::{self, RunPlanned},
        submit, RunError, RunRecord, RunStore, TriggerEvent,
    },
    spec::PipelineSpec,
    topic::bus::{Delivery, DeliveryError, Subscriber},
};

/// A running embedded service.
pub struct Service {
    pub backend: LocalBackend,
    specs: BTreeMap<String, PipelineSpec>,
    monitor: Arc<Monitor>,
    events: tokio::task::JoinHandle<()>,
}

/// The plan topic's subscriber: submits planned runs.
struct Submitter {
    ports: crate::run::Ports,
    spec: PipelineSpec,
    owner: String,
}

#[async_trait]
impl Subscriber for Submitter {
    async fn deliver(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        let planned: RunPlanned = serde_json::from_str(&delivery.message.body).map_err(|e| {
            DeliveryError::caused_by(
                format_args!("plan message {} is not a RunPlanned", delivery.message_id),
                e,
            )
        })?;
        submit::submit(&self.ports, &self.spec, &planned.run_id, &self.owner)
            .await
            .map(drop)
            .map_err(|e| DeliveryError::caused_by(format_args!("submitting run {}", planned.run_id), e))
    }
}

impl Service {
    /// Wires the backend for `specs` and starts watching engine events.
    pub async fn start(backend: LocalBackend, specs: Vec<PipelineSpec>) -> Result<Service, RunError> {
        let owner = format!("local-{}", std::process::id());
        for spec in &specs {
            // Job processes then never close a table file last (see `hold_open`).
            backend.table.hold_open(&spec.storage.table).await?;
            let sub = Submitter { ports: backend.ports.clone(), spec: spec.clone(), owner: owner.clone() };
            backend.bus.subscribe(&plan_topic(&spec.name), "submitter", Arc::new(sub)).await?;
        }
        let monitor = Arc::new(Monitor::new(backend.ports.clone(), specs.clone()));
        let mut rx = backend.engine.subscribe();
        let m = monitor.clone();
        let events = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if let Err(e) = m.on_event(&ev).await {
                    // Reconciliation picks this up again; nothing is lost.
                    warn!(job = %ev.job_name, status = %ev.status, "monitor: {e}");
                }
            }
        });
        // The job processes leave WAL checkpoints of the held files to this one.
        let held = backend.table.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                held.checkpoint_open_files();
            }
        });
        // SQLite has no TTL: expired scratch rows are swept here, in the background.
        let (table, sweep) = (backend.table.clone(), specs.clone());
        tokio::spawn(async move {
            for spec in &sweep {
                match RunStore::of(&table, spec).sweep_expired(&spec.name, crate::run::record::now_ms()).await
                {
                    Ok(0) => {}
                    Ok(rows) => info!(pipeline = %spec.name, rows, "expired scratch rows deleted"),
                    Err(e) => warn!(pipeline = %spec.name, "sweeping expired scratch rows: {e}"),
                }
            }
        });
        let specs = specs.into_iter().map(|s| (s.name.clone(), s)).collect();
        Ok(Service { backend, specs, monitor, events })
    }

    pub fn spec(&self, pipeline: &str) -> Option<&PipelineSpec> {
        self.specs.get(pipeline)
    }

    fn store<'a>(&'a self, spec: &'a PipelineSpec) -> RunStore<'a> {
        RunStore::of(&self.backend.table, spec)
    }

    /// Plans a run for a trigger (a duplicate trigger gives the same run).
    pub async fn trigger(&self, trigger: TriggerEvent) -> Result<RunRecord, RunError> {
        let spec = self
            .spec(&trigger.pipeline)
            .ok_or_else(|| RunError::Invalid(format!("unknown pipeline {:?}", trigger.pipeline)))?;
        planner::plan(&self.backend.ports, spec, trigger).await
    }

    /// Brings every unfinished run of the served pipelines forward (after a restart).
    pub async fn resume_all(&self) -> Result<Vec<RunRecord>, RunError> {
        let mut resumed = Vec::new();
        for spec in self.specs.values() {
            for run_id in self.store(spec).list_runs(Some(&spec.name)).await? {
                if let Some(rec) = self.resume(spec, &run_id).await? {
                    resumed.push(rec);
                }
            }
        }
        Ok(resumed)
    }

    /// Moves one run forward from whatever step it stopped at.
    pub async fn resume(&self, spec: &PipelineSpec, run_id: &str) -> Result<Option<RunRecord>, RunError> {
        let Some(rec) = self.store(spec).get(run_id).await? else { return Ok(None) };
        match rec.state {
            crate::run::RunState::Planning | crate::run::RunState::Planned => {
                Ok(Some(planner::plan(&self.backend.ports, spec, rec.trigger.clone()).await?))
            }
            crate::run::RunState::Submitted => self.monitor.reconcile(&spec.name, run_id).await,
            _ => Ok(None),
        }
    }

    /// Waits until the run is terminal, calling `progress` about every
    /// `every`. The end is seen as soon as this service's monitor marks it
    /// ([`Monitor::finished`]): `batchfan run` used to notice it at its next
    /// 100 ms poll, 50 ms late on average.
    pub async fn wait(
        &self,
        pipeline: &str,
        run_id: &str,
        every: Duration,
        mut progress: impl FnMut(&RunRecord),
    ) -> Result<RunRecord, RunError> {
        let spec =
            self.spec(pipeline).ok_or_else(|| RunError::Invalid(format!("unknown pipeline {pipeline:?}")))?;
        let mut ticks = 0u32;
        loop {
            // Listening before the read: a run finished between the read and
            // the wait below still wakes it.
            let finished = self.monitor.finished().notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let rec =
                self.store(spec).get(run_id).await?.ok_or_else(|| RunError::UnknownRun(run_id.into()))?;
            progress(&rec);
            if rec.state.is_terminal() {
                return Ok(rec);
            }
            ticks += 1;
            // A safety net under the event path: reconcile now and then.
            if ticks.is_multiple_of(20) {
                if let Err(e) = self.resume(spec, run_id).await {
                    debug!(run_id, "reconcile: {e}");
                }
            }
            // The record is read again when the monitor finishes a run (the
            // end is seen at once, not up to `every` later) or after `every`.
            tokio::select! {
                () = &mut finished => {}
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// The served pipelines' specs.
    pub fn specs(&self) -> impl Iterator<Item = &PipelineSpec> {
        self.specs.values()
    }

    /// Stops: waits for the bus to deliver what it holds, then drains or abandons the engine.
    /// Calling it again with `Abandon` while a `Drain` waits kills what still runs.
    pub async fn shutdown(&self, mode: crate::engine::ShutdownMode) {
        self.backend.bus.wait_idle().await;
        self.backend.engine.shutdown(mode).await;
        self.events.abort();
    }
}
