//! The Lambda dispatchers of a batchfan pipeline on AWS.
//!
//! Three functions, one binary each (names fixed by [`batchfan::deploy::COMPONENTS`]):
//!
//! | binary | event | does |
//! | --- | --- | --- |
//! | `trigger` | S3 notification, scheduled event, manual invoke, Function URL (signed webhook) | [`trigger::handle`]: planner → RunPlanned on the plan topic |
//! | `submit` | SNS (the plan topic) | [`submit::handle`]: the run's job graph, submitted exactly once |
//! | `alert` | EventBridge `Batch Job State Change` | [`alert::handle`]: one alert per failed run, cleanup after failure, final state |
//!
//! Each binary builds a [`Dispatcher`] once per cold start ([`Dispatcher::from_env`]:
//! the AWS adapters, the spec loaded from `BATCHFAN_SPEC_URI`, the deployment's
//! names applied over it) and calls the handler with each event. Handlers take
//! the parsed event and the context, so tests call them directly with recorded
//! events against any [`batchfan::run::Ports`].

pub mod alert;
pub mod config;
pub mod error;
pub mod secret;
pub mod submit;
pub mod trigger;

pub use self::{
    config::{Config, Dispatcher},
    error::DispatchError,
};

/// Installs JSON logs on stdout (CloudWatch picks them up), filtered by
/// `BATCHFAN_LOG` or `RUST_LOG` (default `info`). Binaries only.
/// Runs one invocation and logs the AWS API calls it made, by kind (a Lambda
/// instance runs one invocation at a time, so the difference is this one's).
pub async fn counted<T>(
    clients: &batchfan::aws::AwsClients,
    invocation: impl std::future::Future<Output = T>,
) -> T {
    let before = clients.api_calls();
    let out = invocation.await;
    tracing::info!(api_calls = %clients.api_calls().since(&before), "invocation done");
    out
}

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATCHFAN_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}
