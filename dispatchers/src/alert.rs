//! The `alert` function: EventBridge `Batch Job State Change` events →
//! [`batchfan::run::monitor::Monitor`]: one alert per failed run on the alerts
//! topic (stage, index, exit code, status reason, log tail), the cleanup
//! submitted when the planned one failed by cascade, the run's final state.
//!
//! Events are at-least-once and gain fields over time: duplicates change
//! nothing (the alert is claimed with a conditional write, the failure
//! cleanup reconciled by name) and unknown fields are ignored.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use batchfan::{
    batch::{event, JobStateChange},
    run::monitor::Monitor,
};
use serde_json::{json, Value};
use tracing::{debug, warn};

use crate::{DispatchError, Dispatcher};

/// The alert function's context: the monitor over the dispatcher's ports.
pub struct AlertContext {
    pub dispatcher: Dispatcher,
    pub monitor: Monitor,
}

impl AlertContext {
    pub fn new(dispatcher: Dispatcher) -> Self {
        let monitor = Monitor::new(dispatcher.ports.clone(), [dispatcher.spec.clone()]);
        AlertContext { dispatcher, monitor }
    }
}

/// The job state change an EventBridge event carries.
pub fn state_change(event: EventBridgeEvent<Value>) -> Result<JobStateChange, DispatchError> {
    if event.source != event::SOURCE || event.detail_type != event::DETAIL_TYPE {
        return Err(DispatchError::BadEvent(format!(
            "event {:?} from {:?} is not a Batch job state change: the alert function's rule must match source aws.batch, detail-type \"Batch Job State Change\"",
            event.detail_type, event.source
        )));
    }
    serde_json::from_value(event.detail)
        .map_err(|e| DispatchError::BadEvent(format!("malformed Batch Job State Change detail: {e}")))
}

/// Handles one event. Events of jobs batchfan did not submit (no
/// `batchfan:run` tag) or of other pipelines are ignored.
pub async fn handle(ctx: &AlertContext, event: EventBridgeEvent<Value>) -> Result<Value, DispatchError> {
    let id = event.id.clone().unwrap_or_default();
    let change = match state_change(event) {
        Ok(c) => c,
        Err(e) => {
            warn!(event_id = %id, error = %e, "rejected event");
            return Err(e);
        }
    };
    debug!(event_id = %id, job = %change.job_name, job_id = %change.job_id, status = %change.status, "job state change");
    ctx.monitor.on_event(&change).await?;
    Ok(json!({ "job_id": change.job_id, "status": change.status }))
}
