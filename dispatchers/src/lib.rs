//! The Lambda dispatchers of a batchfan pipeline on AWS.
//!
//! Three functions (names fixed by [`batchfan::deploy::COMPONENTS`]), one
//! binary, `batchfan-lambda`, deployed as `bootstrap`; the function's handler
//! names the dispatcher it runs ([`HANDLERS`]):
//!
//! | handler | event | does |
//! | --- | --- | --- |
//! | `trigger` | S3 notification, scheduled event, manual invoke, Function URL (signed webhook) | [`trigger::handle`]: planner → RunPlanned on the plan topic |
//! | `submit` | SNS (the plan topic) | [`submit::handle`]: the run's job graph, submitted exactly once |
//! | `alert` | EventBridge `Batch Job State Change`; the reconcile tick | [`alert::handle_payload`]: one alert per failed run, cleanup after failure, final state, held schedule slots started |
//!
//! The binary builds a [`Dispatcher`] once per cold start ([`Dispatcher::from_env`]:
//! the AWS adapters, the spec loaded from `BATCHFAN_SPEC_URI`, the deployment's
//! names applied over it) and calls the handler with each event. Handlers take
//! the parsed event and the context, so tests call them directly with recorded
//! events against any [`batchfan::run::Ports`].

pub mod alert;
pub mod config;
pub mod error;
pub mod held;
pub mod secret;
pub mod ssm;
pub mod submit;
pub mod trigger;

pub use self::{
    config::{ColdStart, Config, Dispatcher},
    error::DispatchError,
};

/// The handlers `batchfan-lambda` serves: the function's `handler` setting
/// (Lambda's `_HANDLER`) is one of these.
pub const HANDLERS: [&str; 3] = ["trigger", "submit", "alert"];

/// The Runtime API path a runtime reports a failed initialisation to.
const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";

/// A Lambda binary's cold start: [`Dispatcher::from_env`], with a failure
/// reported to the Lambda Runtime API as an init error before `main` exits.
///
/// lambda_runtime 1.x reports only SnapStart hook failures to `/init/error`:
/// a binary whose set-up fails before `lambda_runtime::run` would just exit,
/// and Lambda would answer the invocation `Runtime.ExitError` with the cause
/// left in the logs. Reported, the invocation fails with `Runtime.InitError`
/// and the error's message (e.g. the spec that cannot be read).
pub async fn cold_start(component: &str) -> Result<ColdStart, lambda_runtime::Error> {
    match Dispatcher::from_env(component).await {
        Ok(cold) => Ok(cold),
        Err(e) => Err(init_failed(component, e).await),
    }
}

/// A failed cold start: logs `error`, reports it to the Runtime API as the
/// init error, and returns it for `main` to exit with.
pub async fn init_failed(component: &str, error: DispatchError) -> lambda_runtime::Error {
    tracing::error!(component, error = %error, "cold start failed");
    report_init_error(&error).await;
    error.into()
}

/// Posts `error` to the Runtime API's `/init/error` (when running under one:
/// `AWS_LAMBDA_RUNTIME_API` set); a failure to report is logged, never hidden.
async fn report_init_error(error: &DispatchError) {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return;
    }
    let diagnostic = serde_json::json!({
        "errorType": error.error_type(),
        "errorMessage": error.to_string(),
    });
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri(INIT_ERROR_PATH)
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .header("content-type", "application/json")
        .body(lambda_runtime_api_client::body::Body::from(diagnostic.to_string()));
    let sent = match request {
        Ok(request) => lambda_runtime_api_client::PooledClient::builder().build().call(request).await,
        Err(e) => Err(e.into()),
    };
    match sent {
        Ok(answer) if answer.status().is_success() => {}
        Ok(answer) => tracing::error!(status = %answer.status(), "the Runtime API refused the init error"),
        Err(e) => tracing::error!(error = %e, "cannot report the init error to the Runtime API"),
    }
}

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

/// Installs JSON logs on stdout (CloudWatch picks them up), filtered by
/// `BATCHFAN_LOG` or `RUST_LOG` (default `info`). Binaries only.
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
