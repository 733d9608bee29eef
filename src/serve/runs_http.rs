//! The routes of runs' pages, behind the same guard as every page ([`super::guard`]):
//!
//! | route | what |
//! | --- | --- |
//! | `GET /runs/{id}` | a run: grids, timings, timeline, failed children, alert |
//! | `GET /runs/{id}/failed?page=N` | every failed child with its log tail, 10 a page |
//! | `GET /runs/{id}/children/{stage}/{index}?log=N` | a child: attempts, log tails, attempt N's whole log |
//! | `GET /history` | runs × stages of each pipeline ([`super::history`]) |
//! | `GET /fragments/...` | the live parts of those pages |
//! | `GET /api/runs/{id}`, `/api/runs/{id}/children/{stage}/{index}`, `/api/history` | the same as JSON |
//!
//! A store or Batch that cannot be read is a 503 naming what failed, never an
//! empty page.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::Deserialize;
use serde_json::json;

use super::{
    child_page, child_view, history, page, run_page, run_view,
    site::{SharedSite, Site},
    view::ViewError,
};

/// The routes, to merge in front of the guard.
pub fn routes() -> Router<SharedSite> {
    Router::new()
        .route("/runs/{id}", get(run_html))
        .route("/fragments/runs/{id}", get(run_fragment))
        .route("/api/runs/{id}", get(run_json))
        .route("/runs/{id}/failed", get(failed_html))
        .route("/runs/{id}/children/{stage}/{index}", get(child_html))
        .route("/fragments/runs/{id}/children/{stage}/{index}", get(child_fragment))
        .route("/api/runs/{id}/children/{stage}/{index}", get(child_json))
        .route("/history", get(history_html))
        .route("/fragments/history", get(history_fragment))
        .route("/api/history", get(history_json))
}

/// How a page answers: the whole page, its live part, or JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Page,
    Fragment,
    Json,
}

fn error(kind: Kind, status: StatusCode, message: &str) -> Response {
    match kind {
        Kind::Json => (status, Json(json!({ "error": message }))).into_response(),
        // The live part keeps the page's last good content: the script shows the error and backs off.
        Kind::Fragment => (status, message.to_owned()).into_response(),
        Kind::Page => (status, Html(page::error_page(status.as_u16(), message))).into_response(),
    }
}

fn unavailable(kind: Kind, e: &ViewError) -> Response {
    error(kind, StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
}

/// `?attempt=N`: the run as of attempt N (default: its current one).
#[derive(Debug, Deserialize)]
struct AttemptQuery {
    attempt: Option<u32>,
}

async fn run(app: &dyn Site, id: &str, kind: Kind, attempt: Option<u32>) -> Response {
    match run_view::run(app.source(), id, attempt).await {
        Ok(Some(v)) => match kind {
            Kind::Json => Json(v).into_response(),
            Kind::Fragment => Html(with_buttons(app, &v)).into_response(),
            Kind::Page => Html(run_page::run_page(&v, &with_buttons(app, &v))).into_response(),
        },
        Ok(None) => {
            error(kind, StatusCode::NOT_FOUND, &format!("run {id} is not a run of the pipelines served here"))
        }
        Err(e) => unavailable(kind, &e),
    }
}

/// The run's live part, with its Cancel or Retry button ([`super::actions::buttons`]).
fn with_buttons(app: &dyn Site, v: &run_view::RunView) -> String {
    super::actions::buttons(&app.gate().csrf, &v.row.run_id, v.row.state) + &run_page::run_fragment(v)
}

async fn run_html(
    State(app): State<SharedSite>,
    Path(id): Path<String>,
    Query(q): Query<AttemptQuery>,
) -> Response {
    run(app.as_ref(), &id, Kind::Page, q.attempt).await
}

async fn run_fragment(
    State(app): State<SharedSite>,
    Path(id): Path<String>,
    Query(q): Query<AttemptQuery>,
) -> Response {
    run(app.as_ref(), &id, Kind::Fragment, q.attempt).await
}

async fn run_json(
    State(app): State<SharedSite>,
    Path(id): Path<String>,
    Query(q): Query<AttemptQuery>,
) -> Response {
    run(app.as_ref(), &id, Kind::Json, q.attempt).await
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(default)]
    page: usize,
}

async fn failed_html(
    State(app): State<SharedSite>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    match run_view::run(app.source(), &id, None).await {
        Ok(Some(v)) => {
            let children = run_view::failed_page(app.source(), &v, q.page).await;
            Html(run_page::failed_page(&v, q.page, &children)).into_response()
        }
        Ok(None) => error(Kind::Page, StatusCode::NOT_FOUND, &format!("run {id} is not served here")),
        Err(e) => unavailable(Kind::Page, &e),
    }
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    log: Option<usize>,
}

async fn child(
    app: &dyn Site,
    (id, stage, index): (String, String, u64),
    log: Option<usize>,
    kind: Kind,
) -> Response {
    match child_view::child(app.source(), &id, &stage, index, log).await {
        Ok(Some(v)) => match kind {
            Kind::Json => Json(v).into_response(),
            Kind::Fragment => Html(child_page::fragment(&v)).into_response(),
            Kind::Page => Html(child_page::page(&v, &child_page::fragment(&v))).into_response(),
        },
        Ok(None) => error(
            kind,
            StatusCode::NOT_FOUND,
            &format!("run {id} has no child {stage}[{index}] submitted: check the run's page for its stages and children"),
        ),
        Err(e) => unavailable(kind, &e),
    }
}

async fn child_html(
    State(app): State<SharedSite>,
    Path(p): Path<(String, String, u64)>,
    Query(q): Query<LogQuery>,
) -> Response {
    child(app.as_ref(), p, q.log, Kind::Page).await
}

async fn child_fragment(
    State(app): State<SharedSite>,
    Path(p): Path<(String, String, u64)>,
    Query(q): Query<LogQuery>,
) -> Response {
    child(app.as_ref(), p, q.log, Kind::Fragment).await
}

async fn child_json(
    State(app): State<SharedSite>,
    Path(p): Path<(String, String, u64)>,
    Query(q): Query<LogQuery>,
) -> Response {
    child(app.as_ref(), p, q.log, Kind::Json).await
}

async fn history_html(State(app): State<SharedSite>) -> Response {
    Html(history::page(&history::fragment(&history::history(app.source()).await))).into_response()
}

async fn history_fragment(State(app): State<SharedSite>) -> Response {
    match history::history(app.source()).await {
        Ok(h) => Html(history::fragment(&Ok(h))).into_response(),
        Err(e) => unavailable(Kind::Fragment, &e),
    }
}

async fn history_json(State(app): State<SharedSite>) -> Response {
    match history::history(app.source()).await {
        Ok(h) => Json(h).into_response(),
        Err(e) => unavailable(Kind::Json, &e),
    }
}
