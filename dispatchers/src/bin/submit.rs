//! The `submit` Lambda: RunPlanned from the plan topic (SNS) → the run's job
//! graph on AWS Batch, each job submitted exactly once.

use std::sync::Arc;

use aws_lambda_events::sns::SnsEvent;
use batchfan_dispatchers::{cold_start, counted, init_tracing, submit};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
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
