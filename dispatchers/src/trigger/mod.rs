//! The `trigger` function: every way a run starts, normalised into a
//! [`TriggerEvent`], planned ([`batchfan::run::planner::plan`]: work items and
//! run record in DynamoDB, RunPlanned on the plan topic).
//!
//! One function takes four event shapes, told apart by their fields:
//!
//! | event | idempotency key | answer |
//! | --- | --- | --- |
//! | S3 notification (`Records[].eventSource = aws:s3`, several records) | `s3:{bucket}/{key}@{versionId or sequencer}` | `{"runs": [...]}` |
//! | scheduled event (`detail-type: Scheduled Event`, source `aws.events` or `aws.scheduler`) | `cron:{scheduled time}` | `{"runs": [...]}` |
//! | manual invoke `{"pipeline", "request_id", "params", "input"}` | `request:{request_id}` (default: the invocation's id) | `{"runs": [...]}` |
//! | Function URL request (a signed webhook) | `webhook:{X-Batchfan-Delivery}` | HTTP 202 / 400 / 401 / 404 / 405 / 413 / 5xx |
//!
//! A duplicate delivery of any of them finds the run its key already claimed.

pub mod manual;
pub mod s3;
pub mod schedule;
pub mod url;

use std::sync::Arc;

use aws_lambda_events::{
    eventbridge::EventBridgeEvent, lambda_function_urls::LambdaFunctionUrlRequest, s3::S3Event,
};
use batchfan::run::{planner, RunRecord, TriggerEvent};
use serde_json::{json, Value};
use tracing::{info, warn};

use self::schedule::SlotDecision;
use crate::{
    error::fold_records,
    held,
    secret::{CachedSecret, SecretStore},
    DispatchError, Dispatcher,
};

/// The trigger function's context, built once per cold start.
pub struct TriggerContext {
    pub dispatcher: Dispatcher,
    /// The webhook secret, when the spec enables the webhook and names where it is.
    pub webhook_secret: Option<CachedSecret>,
    /// Refused Function URL requests of this environment, logged at most once a minute.
    pub refusals: std::sync::Mutex<batchfan::trigger::refusals::Refusals>,
}

impl TriggerContext {
    /// The secret comes from `BATCHFAN_WEBHOOK_SECRET_PARAMETER`, else from the
    /// spec's `secret_ssm` or `secret_secretsmanager` (read through SSM's
    /// Secrets Manager reference); env and file secrets are not read on AWS.
    pub fn new(dispatcher: Dispatcher, secrets: Arc<dyn SecretStore>) -> Self {
        let webhook = dispatcher.spec.triggers.webhook.as_ref().filter(|w| w.enabled);
        let name = match (webhook, &dispatcher.config.webhook_secret_parameter) {
            (None, _) => None,
            (Some(_), Some(param)) => Some(param.clone()),
            (Some(w), None) => match w.secret.as_ref().and_then(batchfan::deploy::webhook_secret_parameter) {
                Some(name) => Some(name),
                None => {
                    warn!(secret = ?w.secret, "the webhook secret must be in SSM Parameter Store or Secrets Manager on AWS (secret_ssm, secret_secretsmanager): set BATCHFAN_WEBHOOK_SECRET_PARAMETER; webhooks answer 500 until then");
                    None
                }
            },
        };
        TriggerContext {
            dispatcher,
            webhook_secret: name.map(|n| CachedSecret::new(secrets, n)),
            refusals: Default::default(),
        }
    }
}

/// A trigger event, recognised.
#[derive(Debug)]
pub enum TriggerPayload {
    S3(S3Event),
    Scheduled(EventBridgeEvent<Value>),
    Manual(manual::ManualRun),
    FunctionUrl(Box<LambdaFunctionUrlRequest>),
    /// The test event S3 sends when a notification is configured: nothing to run.
    S3TestEvent,
}

/// Tells the event shapes apart; anything else is a [`DispatchError::BadEvent`] saying what was expected.
pub fn classify(payload: Value) -> Result<TriggerPayload, DispatchError> {
    let Value::Object(obj) = &payload else {
        return Err(bad(format!("expected a JSON object, got {}", kind_of(&payload))));
    };
    let parse_err = |what: &str, e: serde_json::Error| bad(format!("malformed {what}: {e}"));
    if let Some(records) = obj.get("Records") {
        let sources: Vec<String> = match records.as_array() {
            Some(rs) => {
                let source = |r: &Value| r.get("eventSource").or_else(|| r.get("EventSource")).cloned();
                rs.iter()
                    .map(|r| source(r).and_then(|s| s.as_str().map(str::to_owned)).unwrap_or_default())
                    .collect()
            }
            None => return Err(bad("Records is not an array".into())),
        };
        if let Some(other) = sources.iter().find(|s| *s != "aws:s3") {
            return Err(bad(format!(
                "records from {other:?}: the trigger function takes S3 notifications (eventSource aws:s3); plan-topic messages go to the submit function"
            )));
        }
        return serde_json::from_value(payload)
            .map(TriggerPayload::S3)
            .map_err(|e| parse_err("S3 notification", e));
    }
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(TriggerPayload::S3TestEvent);
    }
    if obj.get("requestContext").and_then(|c| c.get("http")).is_some() {
        return serde_json::from_value(payload)
            .map(|r| TriggerPayload::FunctionUrl(Box::new(r)))
            .map_err(|e| parse_err("Function URL request", e));
    }
    if let Some(detail_type) = obj.get("detail-type") {
        let source = obj.get("source").and_then(Value::as_str).unwrap_or("?");
        if detail_type.as_str() != Some(schedule::DETAIL_TYPE) || !schedule::SOURCES.contains(&source) {
            return Err(bad(format!(
                "EventBridge event {detail_type} from {source:?} is not a scheduled event: the trigger function takes \"Scheduled Event\" from aws.events or aws.scheduler; Batch job state changes go to the alert function"
            )));
        }
        return serde_json::from_value(payload)
            .map(TriggerPayload::Scheduled)
            .map_err(|e| parse_err("scheduled event", e));
    }
    if obj.contains_key("pipeline") {
        return serde_json::from_value(payload)
            .map(TriggerPayload::Manual)
            .map_err(|e| parse_err("manual run request", e));
    }
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    Err(bad(format!(
        "unrecognised event with keys [{}]: expected an S3 notification, a scheduled event, a Function URL request, or {{\"pipeline\": NAME, \"request_id\": ID, \"params\": {{}}, \"input\": \"s3://bucket/key\"}}",
        keys.join(", ")
    )))
}

/// Handles one invocation. `invocation_id` is the Lambda request id (the
/// same on Lambda's own retries); `now_unix` is the clock the webhook's replay
/// window is checked against.
pub async fn handle(
    ctx: &TriggerContext,
    payload: Value,
    invocation_id: &str,
    now_unix: i64,
) -> Result<Value, DispatchError> {
    let payload = match classify(payload) {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "rejected trigger event: no run");
            return Err(e);
        }
    };
    let spec = &ctx.dispatcher.spec;
    let triggers: Vec<Result<TriggerEvent, DispatchError>> = match payload {
        TriggerPayload::FunctionUrl(request) => {
            let response = url::handle(ctx, &request, now_unix).await;
            return serde_json::to_value(response)
                .map_err(|e| DispatchError::Config(format!("cannot serialise the HTTP response: {e}")));
        }
        TriggerPayload::S3TestEvent => {
            info!("S3 test event: the bucket notification is set up; nothing to run");
            return Ok(json!({ "runs": [], "ignored": "s3:TestEvent" }));
        }
        TriggerPayload::S3(event) => event.records.iter().map(|r| s3::trigger_of(spec, r)).collect(),
        TriggerPayload::Scheduled(event) => {
            let outcome = scheduled(ctx, &event).await;
            if let Err(e) = &outcome {
                warn!(error = %e, retryable = e.retryable(), "schedule slot not planned: no run");
            }
            return outcome;
        }
        TriggerPayload::Manual(run) => vec![manual::trigger_of(spec, run, invocation_id)],
    };
    let total = triggers.len();
    let mut runs = Vec::new();
    let mut errors = Vec::new();
    for trigger in triggers {
        let outcome = match trigger {
            Ok(t) => plan(ctx, t).await.map(|r| runs.push(run_summary(&r))),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            warn!(error = %e, retryable = e.retryable(), "trigger not planned: no run");
            errors.push(e);
        }
    }
    if total == 1 {
        if let Some(e) = errors.pop() {
            return Err(e);
        }
    }
    fold_records(total, errors)?;
    Ok(json!({ "runs": runs }))
}

/// One schedule slot: skipped or held under the overlap policy, or planned
/// and recorded as the last scheduled run. A held slot is started here at
/// once if the last run ended meanwhile ([`held::start_held`]).
async fn scheduled(ctx: &TriggerContext, event: &EventBridgeEvent<Value>) -> Result<Value, DispatchError> {
    let d = &ctx.dispatcher;
    let trigger = schedule::trigger_of(&d.spec, event)?;
    let key = trigger.idempotency_key.clone();
    match schedule::decide(d, &trigger).await? {
        SlotDecision::Skipped(reason) => Ok(json!({ "runs": [], "skipped": key, "reason": reason })),
        SlotDecision::Held(reason) => {
            let started = held::start_held(d).await?;
            let runs: Vec<Value> = started.iter().map(run_summary).collect();
            Ok(json!({ "runs": runs, "held": key, "reason": reason }))
        }
        SlotDecision::Run => {
            let record = plan(ctx, trigger.clone()).await?;
            schedule::started(d, &trigger, &record.run_id).await?;
            if held::queues(d) {
                // A slot held earlier and delivered again once its turn came: it ran now.
                held::HeldSlots::of(d).release(&key).await?;
            }
            Ok(json!({ "runs": [run_summary(&record)] }))
        }
    }
}

/// Plans one trigger: its params resolved against the spec, then the planner.
pub async fn plan(ctx: &TriggerContext, trigger: TriggerEvent) -> Result<RunRecord, DispatchError> {
    plan_with(&ctx.dispatcher, trigger).await
}

/// [`plan`] with a dispatcher (the alert function starts held schedule slots).
pub async fn plan_with(d: &Dispatcher, mut trigger: TriggerEvent) -> Result<RunRecord, DispatchError> {
    let spec = &d.spec;
    trigger.params =
        spec.resolve_params(std::mem::take(&mut trigger.params)).map_err(DispatchError::BadEvent)?;
    let record = planner::plan(&d.ports, spec, trigger).await?;
    info!(run_id = %record.run_id, state = %record.state, key = %record.trigger.idempotency_key, "run planned");
    Ok(record)
}

fn run_summary(r: &RunRecord) -> Value {
    json!({
        "run_id": r.run_id, "pipeline": r.pipeline, "state": r.state,
        "idempotency_key": r.trigger.idempotency_key,
        "children": r.sizing.map(|s| s.children),
    })
}

fn bad(message: String) -> DispatchError {
    DispatchError::BadEvent(message)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
