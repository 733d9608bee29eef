//! The `alert` Lambda: EventBridge Batch Job State Change events → one alert
//! per failed run, cleanup after a failure, the run's final state; and the
//! reconcile tick.

use std::sync::Arc;

use batchfan_dispatchers::{
    alert::{self, AlertContext},
    cold_start, counted, init_tracing,
};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let cold = cold_start("alert").await?;
    let (ctx, clients) = (Arc::new(AlertContext::new(cold.dispatcher)), cold.clients);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (ctx, clients) = (ctx.clone(), clients.clone());
        async move { counted(&clients, alert::handle_payload(&ctx, event.payload)).await }
    }))
    .await
}
