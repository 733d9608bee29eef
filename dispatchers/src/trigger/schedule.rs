//! Scheduled events: EventBridge Scheduler or a schedule rule, one run per
//! scheduled time.
//!
//! A schedule rule (`source: aws.events`) sends its event as is. An
//! EventBridge Scheduler schedule should send the same shape as its input:
//!
//! ```json
//! {"source": "aws.scheduler", "detail-type": "Scheduled Event",
//!  "time": "<aws.scheduler.scheduled-time>", "detail": {}}
//! ```

use aws_lambda_events::eventbridge::EventBridgeEvent;
use batchfan::trigger::cron::{Held, MAX_QUEUED};
use batchfan::{
    objects::ObjectRef,
    run::{RunStore, TriggerEvent, TriggerSource},
    spec::{OverlapPolicy, PipelineSpec},
};
use serde_json::Value;
use tracing::info;

use crate::{held::HeldSlots, DispatchError, Dispatcher};

/// What the spec's `overlap` policy does with a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotDecision {
    /// Plan the slot's run now.
    Run,
    /// No run: the reason (also recorded, so a redelivery is skipped too).
    Skipped(String),
    /// The slot waits in the table until the last run ends (`overlap = "queue"`).
    Held(String),
}

/// What slot `trigger` does under the spec's `overlap` policy.
///
/// The last slot that started a run is kept in the table
/// ([`RunStore::last_scheduled`]). While that run is going, `skip` skips the
/// slot, and records it, so a redelivery of it is skipped too; `queue` holds
/// it ([`crate::held`]: the alert function starts it when the run ends), and
/// skips it only when [`batchfan::trigger::cron::MAX_QUEUED`] slots wait
/// already; `allow` runs it. The same slot delivered again is never skipped:
/// it answers its own run. Catch-up has no meaning here: EventBridge
/// Scheduler does not miss slots while batchfan is "down".
pub async fn decide(d: &Dispatcher, trigger: &TriggerEvent) -> Result<SlotDecision, DispatchError> {
    let spec = &d.spec;
    let Some(cron) = &spec.triggers.cron else { return Ok(SlotDecision::Run) };
    let store = RunStore::new(d.ports.table.as_ref(), &spec.storage.table);
    let key = &trigger.idempotency_key;
    if let Some(reason) = store.slot_skipped(&spec.name, key).await? {
        return Ok(SlotDecision::Skipped(reason));
    }
    if cron.overlap == OverlapPolicy::Allow {
        return Ok(SlotDecision::Run);
    }
    let Some((last_key, run_id)) = store.last_scheduled(&spec.name).await? else {
        return Ok(SlotDecision::Run);
    };
    if &last_key == key {
        return Ok(SlotDecision::Run);
    }
    let going = store.get(&run_id).await?.is_some_and(|r| !r.state.is_terminal());
    let queue = cron.overlap == OverlapPolicy::Queue;
    let why = if going {
        format!("run {run_id} of {last_key} is still going (overlap = queue): the slot waits")
    } else if queue && !HeldSlots::of(d).list().await?.0.is_empty() {
        // Slots held earlier go first: this one takes its place in the queue.
        format!("run {run_id} of {last_key} has ended but older slots wait (overlap = queue)")
    } else {
        return Ok(SlotDecision::Run);
    };
    let reason = match cron.overlap {
        OverlapPolicy::Queue => match HeldSlots::of(d).hold(key).await? {
            Held::Now | Held::Already => {
                info!(pipeline = %spec.name, slot = %key, %why, "schedule slot held");
                return Ok(SlotDecision::Held(why));
            }
            Held::Full => format!(
                "run {run_id} of {last_key} is still going and {MAX_QUEUED} slots already wait (overlap = queue): runs take longer than the schedule's period"
            ),
        },
        _ => format!("run {run_id} of {last_key} is still going (overlap = skip)"),
    };
    store.mark_slot_skipped(&spec.name, key, &reason).await?;
    info!(pipeline = %spec.name, slot = %key, %reason, "schedule slot skipped");
    Ok(SlotDecision::Skipped(reason))
}

/// After slot `trigger` planned `run_id`: it is now the last scheduled run.
pub async fn started(d: &Dispatcher, trigger: &TriggerEvent, run_id: &str) -> Result<(), DispatchError> {
    let store = RunStore::new(d.ports.table.as_ref(), &d.spec.storage.table);
    store.set_last_scheduled(&d.spec.name, &trigger.idempotency_key, run_id).await?;
    Ok(())
}

/// `detail-type` of a scheduled event.
pub const DETAIL_TYPE: &str = "Scheduled Event";
/// Sources of scheduled events.
pub const SOURCES: [&str; 2] = ["aws.events", "aws.scheduler"];

/// The trigger a scheduled event starts: keyed by the scheduled time, so a
/// retried or duplicated delivery of the same slot is the same run.
pub fn trigger_of(
    spec: &PipelineSpec,
    event: &EventBridgeEvent<Value>,
) -> Result<TriggerEvent, DispatchError> {
    if spec.triggers.cron.is_none() {
        return Err(DispatchError::BadEvent(format!(
            "pipeline {} has no [triggers.cron]: add one, or delete the schedule that invokes this function",
            spec.name
        )));
    }
    let time = event.time.ok_or_else(|| {
        DispatchError::BadEvent(
            "scheduled event has no \"time\": set the schedule's input time to <aws.scheduler.scheduled-time>".into(),
        )
    })?;
    slot_trigger(spec, format!("cron:{}", time.format("%Y-%m-%dT%H:%M:%SZ")))
}

/// The trigger of the slot whose idempotency key is `key` (`cron:{time}`):
/// the spec's cron input, the spec's params.
pub fn slot_trigger(spec: &PipelineSpec, key: String) -> Result<TriggerEvent, DispatchError> {
    let input = match spec.triggers.cron.as_ref().and_then(|c| c.input.as_ref()) {
        Some(uri) => Some(
            uri.parse::<ObjectRef>()
                .map_err(|e| DispatchError::Config(format!("[triggers.cron] input {uri:?}: {e}")))?,
        ),
        None => None,
    };
    Ok(TriggerEvent {
        pipeline: spec.name.clone(),
        source: TriggerSource::Cron,
        idempotency_key: key,
        input,
        params: Default::default(),
    })
}
