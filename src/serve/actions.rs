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
//! The run is then followed in the background until it ends ([`Actor::follow`]:
//! on the embedded backend the engine's events plus a reconciliation every
//! 2 s that also applies the cancel; on AWS, `batchfan serve --backend aws`,
//! the retry's jobs submitted from here as `batchfan retry --backend aws`
//! does, then a reconciliation every few seconds — the deployed alert Lambda
//! moves the run too, and whichever looks first applies each change once).

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

use super::{http, page::esc, site::Site, view};
use crate::{
    run::{cancel, retry, Ports, RunRecord, RunState, RunStore},
    spec::PipelineSpec,
};

/// A serving process that can cancel and retry its pipelines' runs.
pub trait Actor: Site {
    /// The ports that act on `pipeline`'s runs, and its spec.
    fn acting(&self, pipeline: &str) -> Option<(Ports, PipelineSpec)>;
    /// After `action` was recorded on run `run_id`: moves the run forward
    /// until it ends, in the background.
    fn follow(self: Arc<Self>, spec: PipelineSpec, run_id: String, action: &'static str);
}

/// The buttons' routes (merged into the serving process's router).
pub fn routes<S: Actor>() -> Router<Arc<S>> {
    Router::new()
        .route("/runs/{id}/cancel", post(cancel_button::<S>))
        .route("/runs/{id}/retry", post(retry_button::<S>))
        .route("/api/runs/{id}/cancel", post(api_cancel::<S>))
        .route("/api/runs/{id}/retry", post(api_retry::<S>))
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

async fn act<S: Actor>(site: &Arc<S>, run_id: &str, action: &'static str) -> Result<RunRecord, Refused> {
    let rec = view::find_run(site.source(), run_id)
        .await
        .map_err(|e| Refused(503, e.to_string()))?
        .ok_or_else(|| Refused(404, format!("run {run_id} is not a run of the pipelines served here")))?;
    let (ports, spec) = site
        .acting(&rec.pipeline)
        .ok_or_else(|| Refused(404, format!("pipeline {} is not served here", rec.pipeline)))?;
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
    site.clone().follow(spec, run_id.to_owned(), action);
    Ok(rec)
}

async fn button<S: Actor>(
    app: Arc<S>,
    headers: HeaderMap,
    id: String,
    csrf: String,
    action: &'static str,
) -> Response {
    if let Some(r) = http::refuse_cross_site(app.gate(), &headers, &csrf) {
        return r;
    }
    match act(&app, &id, action).await {
        Ok(_) => Redirect::to(&format!("/runs/{id}")).into_response(),
        Err(Refused(code, message)) => http::html_error(code, &message),
    }
}

async fn cancel_button<S: Actor>(
    State(app): State<Arc<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    button(app, headers, id, f.csrf, "cancel").await
}

async fn retry_button<S: Actor>(
    State(app): State<Arc<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    button(app, headers, id, f.csrf, "retry").await
}

async fn api<S: Actor>(app: Arc<S>, headers: HeaderMap, id: String, action: &'static str) -> Response {
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

async fn api_cancel<S: Actor>(
    State(app): State<Arc<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    api(app, headers, id, "cancel").await
}

async fn api_retry<S: Actor>(
    State(app): State<Arc<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    api(app, headers, id, "retry").await
}

/// The embedded service: its own ports; the service follows the run.
impl Actor for super::App {
    fn acting(&self, pipeline: &str) -> Option<(Ports, PipelineSpec)> {
        Some((self.service.backend.ports.clone(), self.spec(pipeline)?.clone()))
    }

    fn follow(self: Arc<Self>, spec: PipelineSpec, run_id: String, action: &'static str) {
        // Resume applies the cancel, the submitter takes the retry; then wait for the end.
        tokio::spawn(async move {
            if let Err(e) = self.service.resume(&spec, &run_id).await {
                warn!(run_id = %run_id, "after the {action} button: {e}");
            }
            let every = std::time::Duration::from_millis(100);
            if let Err(e) = self.service.wait(&spec.name, &run_id, every, |_| {}).await {
                warn!(run_id = %run_id, "following the run: {e}");
            }
        });
    }
}
