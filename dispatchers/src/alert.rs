//! The `alert` function: EventBridge `Batch Job State Change` events →
//! [`batchfan::run::monitor::Monitor`]: one alert per failed run on the alerts
//! topic (stage, index, exit code, status reason, log tail), the cleanup
//! submitted when the planned one failed by cascade, the run's final state.
//!
//! Events are at-least-once and gain fields over time: duplicates change
//! nothing (the alert is claimed with a conditional write, the failure
//! cleanup reconciled by name) and unknown fields are ignored.
//!
//! Two more duties:
//! - cron `overlap = "queue"`: an event that ends a run starts the oldest
//!   held schedule slot ([`held::start_held`]; a duplicate event finds the
//!   slot's run going and starts nothing);
//! - the **reconcile tick**, `{"batchfan": "reconcile"}` from a schedule rule
//!   ([`RECONCILE`]): failure cleanups waiting for children whose successes
//!   the rule does not deliver ([`Monitor::reconcile_waiting`]), and held slots.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use batchfan::{
    batch::{event, JobStateChange},
    run::monitor::{Monitor, TAG_PIPELINE},
};
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::{held, DispatchError, Dispatcher};

/// The reconcile tick's input (the module's schedule rule sends it as is).
pub const RECONCILE: &str = "reconcile";

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
    let mut out = json!({ "job_id": change.job_id, "status": change.status });
    let ours = change.tags.get(TAG_PIPELINE) == Some(&ctx.dispatcher.spec.name);
    if ours && change.status.is_terminal() {
        if let Some(started) = held::start_held(&ctx.dispatcher).await? {
            out["started"] =
                json!({ "run_id": started.run_id, "idempotency_key": started.trigger.idempotency_key });
        }
    }
    Ok(out)
}

/// Handles any payload the function gets: the reconcile tick, or an
/// EventBridge event ([`handle`]).
pub async fn handle_payload(ctx: &AlertContext, payload: Value) -> Result<Value, DispatchError> {
    if payload.get("batchfan").and_then(Value::as_str) == Some(RECONCILE) {
        return reconcile(ctx).await;
    }
    let event = serde_json::from_value(payload).map_err(|e| {
        let e = DispatchError::BadEvent(format!(
            "malformed event: {e}: the alert function takes EventBridge Batch Job State Change events and {{\"batchfan\": \"reconcile\"}}"
        ));
        warn!(error = %e, "rejected event");
        e
    })?;
    handle(ctx, event).await
}

/// The reconcile tick: re-checks runs whose failure cleanup waits, and starts
/// a held schedule slot whose run's end was missed.
pub async fn reconcile(ctx: &AlertContext) -> Result<Value, DispatchError> {
    let pipeline = &ctx.dispatcher.spec.name;
    let waiting = ctx.monitor.reconcile_waiting(pipeline).await?;
    let started = held::start_held(&ctx.dispatcher).await?;
    info!(pipeline = %pipeline, waiting, started = started.is_some(), "reconcile tick");
    Ok(json!({ "waiting": waiting, "started": started.map(|r| r.run_id) }))
}
