//! The Cancel and Retry buttons of a run's page, and the same actions in the
//! JSON API ([`crate::run::cancel`], [`crate::run::retry`]).
//!
//! | route | what |
//! | --- | --- |
//! | `POST /runs/{id}/cancel`, `POST /runs/{id}/retry` | the buttons: a form with the page's CSRF token, same origin only (as the Run button), then back to the run's page |
//! | `POST /api/runs/{id}/cancel`, `POST /api/runs/{id}/retry` | the same for scripts (`Authorization: Bearer`), 202 + the run as JSON; cross-site requests refused |
//!
//! Both need the login ([`super::guard`]). A cancel of a run that has ended
//! or a retry of a run that has not failed is refused with 409, naming why.
//! The run is then followed in the background until it ends (the engine's
//! events, plus a reconciliation every 2 s that also applies the cancel).

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::post,
    Form, Json, Router,
};
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use super::{app::App, http, page::esc};
use crate::run::{cancel, retry, RunRecord, RunState, RunStore};

type Shared = Arc<App>;

/// The buttons' routes (merged into [`super::http::router`]).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/runs/{id}/cancel", post(cancel_button))
        .route("/runs/{id}/retry", post(retry_button))
        .route("/api/runs/{id}/cancel", post(api_cancel))
        .route("/api/runs/{id}/retry", post(api_retry))
}

/// The buttons for a run in `state`: Cancel while it runs, Retry once it FAILED or was CANCELLED.
pub fn buttons(csrf: &str, run_id: &str, state: RunState) -> String {
    let (action, label) = match state {
        RunState::Failed | RunState::Cancelled => ("retry", "Retry what failed"),
        s if !s.is_terminal() => ("cancel", "Cancel"),
        _ => return String::new(),
    };
    format!(
        "<form class=\"run-action\" method=post action=\"/runs/{0}/{action}\"><input type=hidden name=csrf value=\"{1}\">\
         <button type=submit id=\"{action}-button\">{label}</button></form>",
        esc(run_id),
        esc(csrf)
    )
}

/// The buttons' form.
#[derive(Debug, Deserialize)]
struct ActionForm {
    csrf: String,
}

/// Why an action was refused.
struct Refused(u16, String);

async fn act(app: &Shared, run_id: &str, action: &'static str) -> Result<RunRecord, Refused> {
    let rec = app
        .find_run(run_id)
        .await
        .ok_or_else(|| Refused(404, format!("run {run_id} is not a run of the pipelines served here")))?;
    let spec = app
        .spec(&rec.pipeline)
        .ok_or_else(|| Refused(404, format!("pipeline {} is not served here", rec.pipeline)))?
        .clone();
    let ports = app.service.backend.ports.clone();
    let rec = if action == "cancel" {
        if rec.state.is_terminal() && rec.cancel.is_none() {
            return Err(Refused(409, format!("run {run_id} already ended {}: nothing to cancel", rec.state)));
        }
        let store = RunStore::new(ports.table.as_ref(), &spec.storage.table);
        cancel::request(&store, run_id, "serve").await.map_err(|e| Refused(500, e.to_string()))?
    } else {
        retry::start(&ports, &spec, run_id).await.map_err(|e| match e {
            retry::RetryError::NotRetryable { .. } => Refused(409, e.to_string()),
            e => Refused(500, e.to_string()),
        })?
    };
    // Follow the run until it ends: resume applies the cancel, the submitter takes the retry.
    let (app, id) = (app.clone(), run_id.to_owned());
    tokio::spawn(async move {
        if let Err(e) = app.service.resume(&spec, &id).await {
            warn!(run_id = %id, "after the {action} button: {e}");
        }
        if let Err(e) = app.service.wait(&spec.name, &id, std::time::Duration::from_millis(100), |_| {}).await
        {
            warn!(run_id = %id, "following the run: {e}");
        }
    });
    Ok(rec)
}

async fn button(app: Shared, headers: HeaderMap, id: String, csrf: String, action: &'static str) -> Response {
    if let Some(r) = http::refuse_cross_site(&app.gate, &headers, &csrf) {
        return r;
    }
    match act(&app, &id, action).await {
        Ok(_) => Redirect::to(&format!("/runs/{id}")).into_response(),
        Err(Refused(code, message)) => http::html_error(code, &message),
    }
}

async fn cancel_button(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    button(app, headers, id, f.csrf, "cancel").await
}

async fn retry_button(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    button(app, headers, id, f.csrf, "retry").await
}

async fn api(app: Shared, headers: HeaderMap, id: String, action: &'static str) -> Response {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| s != "same-origin" && s != "none");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let foreign = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o != format!("http://{host}"));
    if cross_site || foreign {
        return (StatusCode::FORBIDDEN, Json(json!({ "error": "cross-site request refused" })))
            .into_response();
    }
    match act(&app, &id, action).await {
        Ok(rec) => (
            StatusCode::ACCEPTED,
            Json(json!({ "run_id": rec.run_id, "state": rec.state, "attempt": rec.attempt(), "url": format!("/runs/{}", rec.run_id) })),
        )
            .into_response(),
        Err(Refused(code, message)) => {
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (code, Json(json!({ "error": message }))).into_response()
        }
    }
}

async fn api_cancel(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    api(app, headers, id, "cancel").await
}

async fn api_retry(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    api(app, headers, id, "retry").await
}
