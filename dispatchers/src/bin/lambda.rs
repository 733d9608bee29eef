//! `batchfan-lambda`: the three dispatcher Lambdas in one binary, deployed as
//! `bootstrap` in each function's zip. The function's handler (`_HANDLER`,
//! which Lambda sets from the function's configuration) names the dispatcher:
//!
//! - `trigger`: S3 notifications, scheduled events, manual invokes and signed
//!   webhooks (Function URL) → planner → RunPlanned on the plan topic;
//! - `submit`: RunPlanned from the plan topic (SNS) → the run's job graph on
//!   AWS Batch, each job submitted exactly once;
//! - `alert`: EventBridge Batch Job State Change events → one alert per
//!   failed run, cleanup after a failure, the run's final state; and the
//!   reconcile tick.
//!
//! One binary instead of three: the release build links the AWS SDK once.

use std::sync::Arc;

use aws_lambda_events::sns::SnsEvent;
use batchfan_dispatchers::{
    alert::{self, AlertContext},
    cold_start, counted, init_failed, init_tracing,
    secret::SsmSecrets,
    submit,
    trigger::{self, TriggerContext},
    DispatchError, HANDLERS,
};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let handler = std::env::var("_HANDLER").unwrap_or_default();
    match handler.as_str() {
        "trigger" => run_trigger().await,
        "submit" => run_submit().await,
        "alert" => run_alert().await,
        other => {
            let error = DispatchError::Config(format!(
                "the function's handler is {other:?}: set it to one of {} (one binary serves the three dispatchers; the handler names which)",
                HANDLERS.join(", ")
            ));
            Err(init_failed("batchfan-lambda", error).await)
        }
    }
}

async fn run_trigger() -> Result<(), lambda_runtime::Error> {
    let cold = cold_start("trigger").await?;
    let secrets = Arc::new(SsmSecrets::new(&cold.sdk_config));
    let clients = cold.clients;
    let ctx = Arc::new(TriggerContext::new(cold.dispatcher, secrets));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (ctx, clients) = (ctx.clone(), clients.clone());
        async move {
            let now = chrono::Utc::now().timestamp();
            counted(&clients, trigger::handle(&ctx, event.payload, &event.context.request_id, now)).await
        }
    }))
    .await
}

async fn run_submit() -> Result<(), lambda_runtime::Error> {
    let cold = cold_start("submit").await?;
    let (dispatcher, clients) = (Arc::new(cold.dispatcher), cold.clients);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| {
        let (dispatcher, clients) = (dispatcher.clone(), clients.clone());
        async move {
            counted(&clients, submit::handle(&dispatcher, event.payload, &event.context.request_id)).await
        }
    }))
    .await
}

async fn run_alert() -> Result<(), lambda_runtime::Error> {
    let cold = cold_start("alert").await?;
    let (ctx, clients) = (Arc::new(AlertContext::new(cold.dispatcher)), cold.clients);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (ctx, clients) = (ctx.clone(), clients.clone());
        async move { counted(&clients, alert::handle_payload(&ctx, event.payload)).await }
    }))
    .await
}
