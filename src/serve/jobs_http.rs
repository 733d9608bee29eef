//! The Jobs view's routes, behind the same guard as every page ([`super::guard`]):
//!
//! | route | what |
//! | --- | --- |
//! | `GET /jobs?queue=Q&status=S` | the jobs submitted through `--batch-api`, filtered |
//! | `GET /jobs/{id}` | a job (`ID:INDEX` for a child): attempts, log tails, children |
//! | `GET /fragments/jobs…` | the live parts of those pages |
//! | `GET /api/jobs?queue=Q&status=S`, `/api/jobs/{id}` | the same as JSON |
//!
//! Without `--batch-api`, the pages say how to turn it on and the JSON is a 404.

use std::sync::Arc;

use axum::{
    extract::{Path, Query, RawQuery, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::Deserialize;
use serde_json::json;

use super::{
    app::App,
    jobs::{self, JobsError},
    jobs_page, page,
};
use crate::batchapi::BatchApi;

type Shared = Arc<App>;

/// The routes, to merge in front of the guard.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/jobs", get(list_page))
        .route("/fragments/jobs", get(list_fragment))
        .route("/jobs/{id}", get(job_page))
        .route("/fragments/jobs/{id}", get(job_fragment))
        .route("/api/jobs", get(api_list))
        .route("/api/jobs/{id}", get(api_job))
}

/// The list's filter.
#[derive(Debug, Default, Deserialize)]
struct Filter {
    queue: Option<String>,
    status: Option<String>,
}

/// How a page answers: HTML, or JSON under `/api/`.
#[derive(Clone, Copy)]
enum Kind {
    Html,
    Json,
}

fn not_served(kind: Kind) -> Response {
    match kind {
        Kind::Html => (StatusCode::NOT_FOUND, Html(jobs_page::not_served())).into_response(),
        Kind::Json => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "the AWS Batch API is not served here: start batchfan serve with --batch-api" })),
        )
            .into_response(),
    }
}

fn error(kind: Kind, e: &JobsError) -> Response {
    let code = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match kind {
        Kind::Html => (code, Html(page::error_page(e.status(), &e.to_string()))).into_response(),
        Kind::Json => (code, Json(json!({ "error": e.to_string() }))).into_response(),
    }
}

/// Runs `f` on the API, or answers that it is not served / the error.
async fn with_api<F, Fut, T>(app: &App, kind: Kind, f: F, ok: impl FnOnce(T) -> Response) -> Response
where
    F: FnOnce(Arc<BatchApi>) -> Fut,
    Fut: std::future::Future<Output = Result<T, JobsError>>,
{
    let Some(api) = app.batch_api() else { return not_served(kind) };
    match f(api).await {
        Ok(v) => ok(v),
        Err(e) => error(kind, &e),
    }
}

async fn list_page(State(app): State<Shared>, Query(q): Query<Filter>, RawQuery(raw): RawQuery) -> Response {
    let list =
        |api: Arc<BatchApi>| async move { jobs::list(&api, q.queue.as_deref(), q.status.as_deref()).await };
    with_api(&app, Kind::Html, list, |l| {
        Html(jobs_page::list_page(&l, &jobs_page::list_fragment(&l), raw.as_deref().unwrap_or("")))
            .into_response()
    })
    .await
}

async fn list_fragment(State(app): State<Shared>, Query(q): Query<Filter>) -> Response {
    let list =
        |api: Arc<BatchApi>| async move { jobs::list(&api, q.queue.as_deref(), q.status.as_deref()).await };
    with_api(&app, Kind::Html, list, |l| Html(jobs_page::list_fragment(&l)).into_response()).await
}

async fn api_list(State(app): State<Shared>, Query(q): Query<Filter>) -> Response {
    let list =
        |api: Arc<BatchApi>| async move { jobs::list(&api, q.queue.as_deref(), q.status.as_deref()).await };
    with_api(&app, Kind::Json, list, |l| Json(l).into_response()).await
}

async fn job_page(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    let job = |api: Arc<BatchApi>| async move { jobs::job(&api, &id).await };
    with_api(&app, Kind::Html, job, |p| {
        Html(jobs_page::job_page(&p, &jobs_page::job_fragment(&p))).into_response()
    })
    .await
}

async fn job_fragment(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    let job = |api: Arc<BatchApi>| async move { jobs::job(&api, &id).await };
    with_api(&app, Kind::Html, job, |p| Html(jobs_page::job_fragment(&p)).into_response()).await
}

async fn api_job(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    let job = |api: Arc<BatchApi>| async move { jobs::job(&api, &id).await };
    with_api(&app, Kind::Json, job, |p| Json(p).into_response()).await
}
