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
use batchfan::{
    objects::ObjectRef,
    run::{RunStore, TriggerEvent, TriggerSource},
    spec::{OverlapPolicy, PipelineSpec},
};
use serde_json::Value;
use tracing::{info, warn};

use crate::{DispatchError, Dispatcher};

/// Why slot `trigger` starts no run under the spec's `overlap` policy, or
/// `None` when it may run.
///
/// The last slot that started a run is kept in the table
/// ([`RunStore::last_scheduled`]). While that run is going, `skip` (and
/// `queue`, which AWS has no place to hold a slot for: it skips, with a
/// warning) skip the slot, and record it, so a redelivery of it is skipped
/// too; `allow` runs it. The same slot delivered again is never skipped:
/// it answers its own run. Catch-up has no meaning here: EventBridge
/// Scheduler does not miss slots while batchfan is "down".
pub async fn skip_reason(d: &Dispatcher, trigger: &TriggerEvent) -> Result<Option<String>, DispatchError> {
    let spec = &d.spec;
    let Some(cron) = &spec.triggers.cron else { return Ok(None) };
    let store = RunStore::new(d.ports.table.as_ref(), &spec.storage.table);
    let key = &trigger.idempotency_key;
    if let Some(reason) = store.slot_skipped(&spec.name, key).await? {
        return Ok(Some(reason));
    }
    if cron.overlap == OverlapPolicy::Allow {
        return Ok(None);
    }
    let Some((last_key, run_id)) = store.last_scheduled(&spec.name).await? else { return Ok(None) };
    if &last_key == key {
        return Ok(None);
    }
    let going = store.get(&run_id).await?.is_some_and(|r| !r.state.is_terminal());
    if !going {
        return Ok(None);
    }
    if cron.overlap == OverlapPolicy::Queue {
        warn!(pipeline = %spec.name, "overlap = \"queue\" cannot hold a slot on AWS: the slot is skipped (use skip or allow)");
    }
    let policy = if cron.overlap == OverlapPolicy::Queue { "queue (skip on AWS)" } else { "skip" };
    let reason = format!("run {run_id} of {last_key} is still going (overlap = {policy})");
    store.mark_slot_skipped(&spec.name, key, &reason).await?;
    info!(pipeline = %spec.name, slot = %key, %reason, "schedule slot skipped");
    Ok(Some(reason))
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
    let Some(cron) = &spec.triggers.cron else {
        return Err(DispatchError::BadEvent(format!(
            "pipeline {} has no [triggers.cron]: add one, or delete the schedule that invokes this function",
            spec.name
        )));
    };
    let time = event.time.ok_or_else(|| {
        DispatchError::BadEvent(
            "scheduled event has no \"time\": set the schedule's input time to <aws.scheduler.scheduled-time>".into(),
        )
    })?;
    let input = match &cron.input {
        Some(uri) => Some(
            uri.parse::<ObjectRef>()
                .map_err(|e| DispatchError::Config(format!("[triggers.cron] input {uri:?}: {e}")))?,
        ),
        None => None,
    };
    Ok(TriggerEvent {
        pipeline: spec.name.clone(),
        source: TriggerSource::Cron,
        idempotency_key: format!("cron:{}", time.format("%Y-%m-%dT%H:%M:%SZ")),
        input,
        params: Default::default(),
    })
}
