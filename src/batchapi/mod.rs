//! `batchfan batch-api`: the AWS Batch REST API (restJson1) served over the
//! local engine, so that anything that speaks Batch — aws-sdk-batch, boto3,
//! the AWS CLI — runs jobs on this machine with only `endpoint_url` changed.
//! SigV4 is not checked: any region and credentials are accepted.
//!
//! | route | operation |
//! | --- | --- |
//! | `POST /v1/submitjob`, `describejobs`, `listjobs`, `terminatejob`, `canceljob` | jobs ([`jobs`]) |
//! | `POST /v1/registerjobdefinition`, `describejobdefinitions`, `deregisterjobdefinition` | definitions |
//! | `POST /v1/{create,describe,update,delete}computeenvironment(s)`, `…jobqueue(s)` | [`environments`], [`queues`] ([`resources`]: their statuses) |
//! | `GET`/`POST`/`DELETE /v1/tags/{arn}` | ListTagsForResource, TagResource, UntagResource |
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use batchfan::{batchapi::{BatchApi, BatchApiConfig}, engine::{EngineConfig, LocalEngine}};
//! let engine = LocalEngine::open(EngineConfig::new("/tmp/state")).await?;
//! let api = BatchApi::open(engine, BatchApiConfig::new("/tmp/state"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! batchfan::batchapi::serve(listener, std::sync::Arc::new(api), std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod awsjson;
pub mod capacity;
pub mod definitions;
pub mod environments;
pub mod error;
pub mod events;
pub mod jobs;
pub mod logs;
pub mod members;
pub mod model;
pub mod queues;
pub mod resources;
pub mod server;
pub mod store;
pub mod tags;
pub mod validate;

use std::{future::Future, path::PathBuf, sync::Arc};

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::Uri,
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use self::error::{ApiError, ApiResult};
use self::store::Store;
use crate::{batch::MAX_SUBMIT_BYTES, engine::LocalEngine};

/// Where the API keeps its state and how it names things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchApiConfig {
    /// The engine's state directory; the API's own database sits beside the engine's.
    pub state_dir: PathBuf,
    /// Region in the ARNs answered.
    pub region: String,
    /// Account id in the ARNs answered.
    pub account: String,
}

impl BatchApiConfig {
    /// Region `us-east-1`, account `123456789012`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        BatchApiConfig {
            state_dir: state_dir.into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
        }
    }
}

/// The Batch API over one local engine.
#[derive(Debug)]
pub struct BatchApi {
    engine: LocalEngine,
    store: Store,
    config: BatchApiConfig,
}

/// An error opening the API's database.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {path}: {source}: check the --state directory, or move the file away")]
pub struct OpenError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

impl BatchApi {
    /// Opens the API's database in `config.state_dir` over `engine`.
    pub fn open(engine: LocalEngine, config: BatchApiConfig) -> Result<BatchApi, OpenError> {
        let store = Store::open(&config.state_dir)
            .map_err(|source| OpenError { path: config.state_dir.join(store::DB_FILE), source })?;
        let api = BatchApi { engine, store, config };
        // A database the API itself wrote stays readable; if not, jobs wait until the next change.
        if let Err(e) = api.sync_capacity() {
            tracing::error!(error = %e, "cannot read compute environments and queues for their capacity");
        }
        Ok(api)
    }

    /// The engine the API runs jobs on.
    pub fn engine(&self) -> &LocalEngine {
        &self.engine
    }

    /// `arn:aws:batch:REGION:ACCOUNT:KIND/REST`.
    pub(crate) fn arn(&self, kind: &str, rest: &str) -> String {
        format!("arn:aws:batch:{}:{}:{kind}/{rest}", self.config.region, self.config.account)
    }
}

/// `name` itself, or the part after `KIND/` of an ARN of this kind.
pub(crate) fn name_of<'a>(value: &'a str, kind: &str) -> &'a str {
    match value.strip_prefix("arn:") {
        Some(rest) => rest.split_once(&format!(":{kind}/")).map_or(value, |(_, name)| name),
        None => value,
    }
}

type Shared = Arc<BatchApi>;

/// `maxResults` when none is given.
const DEFAULT_PAGE: i64 = 100;
/// Largest `maxResults` accepted.
const MAX_PAGE: i64 = 1000;

/// One page of `items` from the offset in `token` (`None`: the first page),
/// and the token of the next page when there is one.
pub(crate) fn page<T>(
    items: Vec<T>,
    max_results: Option<i64>,
    token: Option<&str>,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let max = max_results.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&max) {
        return Err(ApiError::client(format!("maxResults {max} is out of range: use 1 to {MAX_PAGE}")));
    }
    let start = match token.filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t.strip_prefix("o").and_then(|n| n.parse::<usize>().ok()).ok_or_else(|| {
            ApiError::client(format!(
                "nextToken {t:?} is not valid: pass the nextToken of the previous response"
            ))
        })?,
    };
    let end = start.saturating_add(max as usize);
    let next = (end < items.len()).then(|| format!("o{end}"));
    Ok((items.into_iter().skip(start).take(max as usize).collect(), next))
}

/// Parses a JSON body (an empty one is `{}`); the error names the field at fault.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::client(format!("request body is not valid JSON for this operation: {inner}"))
        } else {
            ApiError::client(format!("{path} is not valid: {inner}"))
        }
    })
}

fn reply(result: ApiResult<Value>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => e.into_response(),
    }
}

macro_rules! op {
    ($method:ident) => {
        post(|State(api): State<Shared>, body: Bytes| async move {
            reply(async { api.$method(parse_body(&body)?).await }.await)
        })
    };
}

/// An operation on compute environments or queues: the engine learns the
/// capacity it leaves (every time, so a status changed later is seen too).
macro_rules! op_capacity {
    ($method:ident) => {
        post(|State(api): State<Shared>, body: Bytes| async move {
            let result = async { api.$method(parse_body(&body)?).await }.await;
            reply(result.and_then(|value| api.sync_capacity().map(|()| value)))
        })
    };
}

/// The API's routes.
pub fn router(api: Shared) -> Router {
    Router::new()
        .route(
            "/v1/submitjob",
            post(|State(api): State<Shared>, body: Bytes| async move {
                reply(
                    async {
                        if body.len() > MAX_SUBMIT_BYTES {
                            return Err(ApiError::client(format!(
                                "request is {} bytes, over the SubmitJob limit of {MAX_SUBMIT_BYTES}: \
                                 pass pointers (ids, keys), not data, in parameters and overrides",
                                body.len()
                            )));
                        }
                        api.submit_job(parse_body(&body)?).await
                    }
                    .await,
                )
            }),
        )
        .route("/v1/describejobs", op!(describe_jobs))
        .route("/v1/listjobs", op!(list_jobs))
        .route("/v1/terminatejob", op!(terminate_job))
        .route("/v1/canceljob", op!(cancel_job))
        .route("/v1/registerjobdefinition", op!(register_job_definition))
        .route("/v1/describejobdefinitions", op!(describe_job_definitions))
        .route("/v1/deregisterjobdefinition", op!(deregister_job_definition))
        .route("/v1/createcomputeenvironment", op_capacity!(create_compute_environment))
        .route("/v1/describecomputeenvironments", op_capacity!(describe_compute_environments))
        .route("/v1/updatecomputeenvironment", op_capacity!(update_compute_environment))
        .route("/v1/deletecomputeenvironment", op_capacity!(delete_compute_environment))
        .route("/v1/createjobqueue", op_capacity!(create_job_queue))
        .route("/v1/describejobqueues", op_capacity!(describe_job_queues))
        .route("/v1/updatejobqueue", op_capacity!(update_job_queue))
        .route("/v1/deletejobqueue", op_capacity!(delete_job_queue))
        .route(
            "/v1/tags/{*arn}",
            axum::routing::get(|State(api): State<Shared>, Path(arn): Path<String>| async move {
                reply(api.list_tags(&arn).await)
            })
            .post(|State(api): State<Shared>, Path(arn): Path<String>, body: Bytes| async move {
                reply(async { api.tag_resource(&arn, parse_body(&body)?).await }.await)
            })
            .delete(
                |State(api): State<Shared>, Path(arn): Path<String>, RawQuery(q): RawQuery| async move {
                    reply(api.untag_resource(&arn, q.as_deref().unwrap_or("")).await)
                },
            ),
        )
        .fallback(|uri: Uri| async move {
            ApiError::client(format!(
                "{} is not an operation batchfan batch-api serves: see the README's Local AWS Batch table",
                uri.path()
            ))
            .into_response()
        })
        .with_state(api)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Shared,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(api)).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_out_of_arns() {
        let arn = "arn:aws:batch:us-east-1:123456789012:job-queue/q1";
        assert_eq!(name_of(arn, "job-queue"), "q1");
        assert_eq!(name_of("q1", "job-queue"), "q1");
        assert_eq!(name_of(arn, "compute-environment"), arn, "an ARN of another kind is kept whole");
    }

    #[test]
    fn pages_follow_tokens_to_the_end() {
        let (first, next) = page((0..5).collect(), Some(2), None).unwrap();
        assert_eq!((first, next.as_deref()), (vec![0, 1], Some("o2")));
        let (last, next) = page((0..5).collect(), Some(2), Some("o4")).unwrap();
        assert_eq!((last, next), (vec![4], None));
        assert!(page((0..5).collect::<Vec<_>>(), Some(0), None)
            .unwrap_err()
            .to_string()
            .contains("maxResults 0"));
        assert!(page((0..5).collect::<Vec<_>>(), None, Some("x"))
            .unwrap_err()
            .to_string()
            .contains("nextToken \"x\""));
    }

    #[test]
    fn body_errors_name_the_field() {
        let e =
            parse_body::<model::SubmitJobRequest>(br#"{"arrayProperties": {"size": "ten"}}"#).unwrap_err();
        assert!(e.to_string().starts_with("arrayProperties.size is not valid"), "{e}");
        let ok: model::SubmitJobRequest = parse_body(b"").unwrap();
        assert!(ok.job_name.is_none());
    }
}
