//! The `alert` Lambda: EventBridge Batch Job State Change events → one alert
//! per failed run, cleanup after a failure, the run's final state.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use batchfan_dispatchers::{
    alert::{self, AlertContext},
    init_tracing, Dispatcher,
};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let ctx = Arc::new(AlertContext::new(Dispatcher::from_env("alert").await?.dispatcher));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent<Value>>| {
        let ctx = ctx.clone();
        async move { alert::handle(&ctx, event.payload).await }
    }))
    .await
}
