//! The planner step: trigger → run record + work items → RunPlanned.

use serde::{Deserialize, Serialize};
use tracing::info;

use super::{
    layout, plan_topic,
    record::{now_ms, RunRecord, RunState, RunStore, TriggerEvent},
    Ports, RunError,
};
use crate::{
    graph,
    plan::{self, PlanError, Sizing},
    spec::{PipelineSpec, Planner},
    topic::Message,
};

/// The message the planner publishes on the plan topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPlanned {
    pub pipeline: String,
    pub run_id: String,
}

impl RunPlanned {
    pub fn to_message(&self) -> Message {
        Message::new(serde_json::to_string(self).expect("RunPlanned always serialises"))
            .with_subject("RunPlanned")
            .with_attribute("pipeline", self.pipeline.as_str())
            .with_attribute("run_id", self.run_id.as_str())
    }
}

/// Plans the run a trigger names; a duplicate trigger returns the same run.
///
/// Checks the input exists before claiming anything, so a bad input leaves no run.
pub async fn plan(ports: &Ports, spec: &PipelineSpec, trigger: TriggerEvent) -> Result<RunRecord, RunError> {
    if trigger.pipeline != spec.name {
        return Err(RunError::Invalid(format!(
            "trigger is for pipeline {:?} but the spec is {:?}",
            trigger.pipeline, spec.name
        )));
    }
    let needs_input = matches!(spec.planner, Planner::Lines { .. } | Planner::Objects);
    if trigger.input.is_none() && needs_input {
        return Err(PlanError::NoInput(planner_name(&spec.planner).into()).into());
    }
    if let (Some(input), Planner::Lines { header, columns, .. }) = (&trigger.input, &spec.planner) {
        if ports.objects.head(input).await?.is_none() {
            return Err(PlanError::MissingInput(input.to_string()).into());
        }
        if *header && !columns.is_empty() {
            plan::lines::check_input_header(ports.objects.as_ref(), input, columns).await?;
        }
    }
    let store = RunStore::of(ports.table.as_ref(), spec);
    let run_id = store.claim(&spec.name, &trigger.idempotency_key, &trigger.run_id()).await?;
    let now = now_ms();
    let fresh = RunRecord {
        run_id: run_id.clone(),
        pipeline: spec.name.clone(),
        state: RunState::Planning,
        trigger: trigger.clone(),
        sizing: None,
        jobs: Default::default(),
        failure: None,
        alerted: false,
        summary: None,
        lease: None,
        output: layout::run_output(&spec.storage.bucket, &spec.name, &run_id),
        stages: spec.stages.iter().map(|s| s.name.clone()).collect(),
        tolerated_failure_percent: spec.alerts.tolerated_failure_percent,
        created_at: now,
        updated_at: now,
        times: [("plan_start".to_owned(), now)].into(),
        version: 0,
        attempt: 1,
        retry: None,
        past_retries: Vec::new(),
        cancel: None,
    };
    let record = store.create(&fresh).await?;
    let record = match record.state {
        RunState::Planning => plan_items(ports, spec, &store, record).await?,
        _ => record,
    };
    if record.state == RunState::Planned {
        // Published again on a duplicate trigger: the submitter is idempotent,
        // and this covers a planner that died between its write and its publish.
        let msg = RunPlanned { pipeline: spec.name.clone(), run_id: run_id.clone() };
        ports.topic.publish(&plan_topic(&spec.name), msg.to_message()).await?;
    }
    Ok(record)
}

async fn plan_items(
    ports: &Ports,
    spec: &PipelineSpec,
    store: &RunStore<'_>,
    record: RunRecord,
) -> Result<RunRecord, RunError> {
    let trigger = &record.trigger;
    let units =
        plan::strategies::plan_units(spec, trigger.input.as_ref(), &trigger.params, ports.objects.as_ref())
            .await?;
    let sizing =
        Sizing::new(units.len() as u64, items_per_child(spec, &trigger.params)?, spec.max_array_size);
    let graph = graph::build(spec, &record.run_id, &sizing)?;
    let problems = graph::check_limits(spec, &graph);
    if !problems.is_empty() {
        return Err(RunError::Invalid(problems.join("\n")));
    }
    // A `range` run's work items are computed by each child from its index
    // (`BATCHFAN_RANGE`), so none is stored: a write and a read per child saved.
    if spec.planner.stores_work_items() {
        let items = plan::pack(units, &sizing);
        store.put_work_items(&record.run_id, &items).await?;
    }
    info!(run_id = %record.run_id, units = sizing.units, children = sizing.children, shards = sizing.shards, "planned");
    let record = store
        .update(&record.run_id, |r| {
            if r.state != RunState::Planning {
                return false;
            }
            r.state = RunState::Planned;
            r.sizing = Some(sizing);
            r.times.insert("plan_end".into(), now_ms());
            true
        })
        .await?;
    Ok(record)
}

/// Units per child: the spec's, or the run's `items_per_child` parameter.
pub fn items_per_child(
    spec: &PipelineSpec,
    params: &std::collections::BTreeMap<String, String>,
) -> Result<u64, RunError> {
    match params.get(ITEMS_PER_CHILD) {
        Some(v) => v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            RunError::Invalid(format!(
                "parameter {ITEMS_PER_CHILD}={v:?} is not a whole number of at least 1"
            ))
        }),
        None => Ok(spec.stages.first().map_or(1, |s| s.items_per_child)),
    }
}

pub use crate::spec::ITEMS_PER_CHILD;

fn planner_name(p: &Planner) -> &'static str {
    match p {
        Planner::Lines { .. } => "lines",
        Planner::Objects => "objects",
        Planner::Range { .. } => "range",
        Planner::Custom { .. } => "custom",
    }
}
