//! The `submit` Lambda: RunPlanned from the plan topic (SNS) → the run's job
//! graph on AWS Batch, each job submitted exactly once.

use std::sync::Arc;

use aws_lambda_events::sns::SnsEvent;
use batchfan_dispatchers::{init_tracing, submit, Dispatcher};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let dispatcher = Arc::new(Dispatcher::from_env("submit").await?.dispatcher);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| {
        let dispatcher = dispatcher.clone();
        async move { submit::handle(&dispatcher, event.payload, &event.context.request_id).await }
    }))
    .await
}
