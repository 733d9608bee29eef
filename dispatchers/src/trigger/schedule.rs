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
    run::{TriggerEvent, TriggerSource},
    spec::PipelineSpec,
};
use serde_json::Value;

use crate::DispatchError;

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
