//! The `trigger` Lambda: S3 notifications, scheduled events, manual invokes
//! and signed webhooks (Function URL) → planner → RunPlanned on the plan topic.

use std::sync::Arc;

use batchfan_dispatchers::{
    cold_start, counted, init_tracing,
    secret::SsmSecrets,
    trigger::{self, TriggerContext},
};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
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
