//! The HTTP server of `batchfan serve` (axum).
//!
//! | route | what |
//! | --- | --- |
//! | `GET /login?token=T`, `POST /login` | the login: sets the session cookie, redirects to `/` ([`guard`]) |
//! | `GET /` | status page: pipelines (next slot, Run button), runs, alerts, notices |
//! | `GET /runs/…`, `/history` | a run, its failed children, a child, the history grid ([`super::runs_http`]) |
//! | `GET /fragments/...` | the live parts of those pages (HTML), re-fetched by the page |
//! | `POST /pipelines/{name}/run` | the Run button (form with the page's CSRF token, same origin only) |
//! | `POST /hooks/{name}` | the signed webhook ([`crate::trigger::webhook`]) |
//! | `GET /api/service` | when this process started, whether it takes triggers |
//! | `GET /api/pipelines`, `/api/runs`, `/api/alerts`, `/api/notices` | the same data as JSON |
//! | `POST /api/pipelines/{name}/runs` | a manual run |
//! | `GET /jobs…`, `/api/jobs…` | the Jobs view of `--batch-api` ([`super::jobs_http`]) |
//! | `GET /static/...` | the pages' stylesheet and script ([`assets`]) |
//! | `GET /healthz` | `ok` |
//!
//! One middleware ([`guard`]) stands in front of every route: everything but
//! the webhook and `/healthz` answers only to the `Host` names of the listen
//! address (127.0.0.1, localhost, plus `--allow-host`), so a web page cannot
//! reach it through DNS rebinding, and only with the login (the session
//! cookie, or `Authorization: Bearer` the token in `serve.json`); every
//! response carries the security headers.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
    Form, Json, Router,
};
use serde::Deserialize;
use serde_json::json;

use super::{
    actions,
    app::{App, TriggerError},
    assets, guard, jobs_http, page, runs_http,
    site::{Gate, SharedSite},
    view,
};
use crate::{
    inputs,
    run::RunRecord,
    trigger::webhook::{self, WebhookRequest, DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER},
};

type Shared = Arc<App>;

/// Runs listed on the home page and by default in `/api/runs`.
const RUNS_SHOWN: usize = 50;

/// The routes every serve has, the embedded one and `--backend aws`'s
/// ([`super::deployed`]): the login, the static files, the runs' pages and
/// their JSON ([`runs_http`]), `/api/runs`, `/healthz`.
pub fn shared_routes<S: Clone + Send + Sync + 'static>(site: SharedSite) -> Router<S> {
    Router::new()
        .route("/login", get(guard::login).post(guard::login_form))
        .route(assets::CSS_PATH, get(assets::css))
        .route(assets::JS_PATH, get(assets::js))
        .route("/api/runs", get(api_runs))
        .route("/healthz", get(|| async { "ok" }))
        .merge(runs_http::routes())
        .with_state(site)
}

/// The whole router.
pub fn router(app: Shared) -> Router {
    let site: SharedSite = app.clone();
    Router::new()
        .route("/", get(home))
        .route("/fragments/home", get(home_fragment))
        .route("/pipelines/{name}/run", post(run_button))
        .route("/hooks/{name}", post(hook))
        .route("/api/service", get(api_service))
        .route("/api/pipelines", get(api_pipelines))
        .route("/api/alerts", get(api_alerts))
        .route("/api/notices", get(api_notices))
        .route("/api/pipelines/{name}/runs", post(api_trigger))
        .merge(jobs_http::routes())
        .merge(actions::routes::<App>())
        .merge(shared_routes(site.clone()))
        .layer(axum::middleware::from_fn_with_state(site, guard::guard))
        .with_state(app)
}

fn json_error(status: u16, message: impl Into<String>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(json!({ "error": message.into() }))).into_response()
}

pub(super) fn html_error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Html(page::error_page(status, message))).into_response()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn run_json(rec: &RunRecord) -> serde_json::Value {
    json!({
        "run_id": rec.run_id, "pipeline": rec.pipeline, "state": rec.state,
        "source": rec.trigger.source, "idempotency_key": rec.trigger.idempotency_key,
        "url": format!("/runs/{}", rec.run_id),
    })
}

async fn home(State(app): State<Shared>) -> Response {
    let fragment = home_html(&app).await;
    let pipelines = view::pipelines(app.specs(), |p| app.next_slot(p));
    let run = page::RunControl::Button { csrf: &app.gate.csrf, input_hint: &app.inputs.hint() };
    Html(page::home(&pipelines, &run, &fragment)).into_response()
}

async fn home_html(app: &App) -> String {
    let runs = view::runs(&app.source, None, RUNS_SHOWN).await;
    let alerts = view::alerts(&app.source, 20).await;
    page::home_fragment(&runs, &app.notices(), Some(&alerts)) + &page::refused_webhooks(&app.refusals())
}

async fn home_fragment(State(app): State<Shared>) -> Response {
    Html(home_html(&app).await).into_response()
}

/// The Run button's form.
#[derive(Debug, Deserialize)]
struct RunForm {
    csrf: String,
    request_id: String,
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    params: Option<String>,
}

/// Refuses a form post that another site could have made. With the login,
/// the SameSite=Strict cookie already keeps other sites out; the form's token
/// and the origin checks also keep out other origins of this site (another
/// port of 127.0.0.1), and protect `--no-auth`.
pub(super) fn refuse_cross_site(gate: &Gate, headers: &HeaderMap, token: &str) -> Option<Response> {
    if let Some(site) = header_str(headers, "sec-fetch-site") {
        if site != "same-origin" && site != "none" {
            return Some(html_error(403, &format!("cross-site request refused (Sec-Fetch-Site: {site})")));
        }
    }
    if let Some(origin) = header_str(headers, header::ORIGIN.as_str()) {
        let host = header_str(headers, header::HOST.as_str()).unwrap_or("");
        if origin != format!("http://{host}") {
            return Some(html_error(
                403,
                &format!("cross-site request refused: origin {origin} is not http://{host}"),
            ));
        }
    }
    (!guard::same_token(token, &gate.csrf)).then(|| {
        html_error(
            403,
            "the form's token is not this server's (it restarted?): reload the page and press Run again",
        )
    })
}

/// A manual run: checks the input and parameters against the spec, then triggers.
async fn manual(
    app: &App,
    pipeline: &str,
    input: Option<&str>,
    params: Vec<String>,
    request_id: &str,
) -> Result<RunRecord, TriggerError> {
    let spec = app.spec(pipeline).ok_or_else(|| TriggerError::UnknownPipeline(pipeline.to_owned()))?;
    crate::trigger::check_request_id(request_id).map_err(|e| TriggerError::Rejected(e.to_string()))?;
    let params = inputs::resolve_params(spec, &params).map_err(|e| TriggerError::Rejected(e.0))?;
    let input = match input.map(str::trim).filter(|i| !i.is_empty()) {
        Some(raw) => {
            // The allow-list first: nothing outside it is read, linked or imported.
            let allowed = app.inputs.check(raw).map_err(|e| {
                if e.is_forbidden() {
                    TriggerError::InputNotAllowed(e.to_string())
                } else {
                    TriggerError::Rejected(e.to_string())
                }
            })?;
            Some(
                inputs::resolve_input(&allowed, &app.service.backend.objects)
                    .await
                    .map_err(|e| TriggerError::Rejected(e.0))?,
            )
        }
        None => None,
    };
    let trigger = inputs::manual_trigger(spec, input.as_ref(), params, Some(request_id));
    let rec = app.trigger(trigger.clone()).await?;
    // The same request id with another input is not a resume of that run.
    inputs::check_same_input(&rec, &trigger).map_err(|e| TriggerError::Conflict(e.0))?;
    Ok(rec)
}

async fn run_button(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<RunForm>,
) -> Response {
    if let Some(r) = refuse_cross_site(&app.gate, &headers, &form.csrf) {
        return r;
    }
    let params: Vec<String> =
        form.params.as_deref().unwrap_or("").split_whitespace().map(str::to_owned).collect();
    match manual(&app, &name, form.input.as_deref(), params, &form.request_id).await {
        Ok(rec) => Redirect::to(&format!("/runs/{}", rec.run_id)).into_response(),
        Err(e) => html_error(e.status(), &e.to_string()),
    }
}

/// Body of `POST /api/pipelines/{name}/runs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// `s3://bucket/key` of the local buckets, or an absolute path under an `--allow-input` directory.
    #[serde(default)]
    pub input: Option<String>,
    /// Idempotency key: the same id always means the same run.
    pub request_id: String,
}

async fn api_trigger(State(app): State<Shared>, Path(name): Path<String>, body: Body) -> Response {
    let bytes = match axum::body::to_bytes(body, 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return json_error(413, "request body over 1 MiB"),
    };
    let req: TriggerRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return json_error(400, format!("body is not a trigger request: {e} (expected {{\"request_id\": \"...\", \"params\": {{}}, \"input\": \"s3://...\"}})"))
        }
    };
    let params = req.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    match manual(&app, &name, req.input.as_deref(), params, &req.request_id).await {
        Ok(rec) => (StatusCode::ACCEPTED, Json(run_json(&rec))).into_response(),
        Err(e) => json_error(e.status(), e.to_string()),
    }
}

async fn hook(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    let Some(spec) = app.spec(&name) else {
        return json_error(404, format!("no pipeline {name:?} here"));
    };
    let Some(hook) = spec.triggers.webhook.as_ref().filter(|w| w.enabled) else {
        return json_error(
            404,
            format!("pipeline {name} has no webhook: add [triggers.webhook] to its spec"),
        );
    };
    let limit = hook.max_body_bytes;
    let declared =
        header_str(&headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared.filter(|s| *s > limit) {
        let e = webhook::WebhookError::TooLarge { size, limit };
        app.refused(&name, e.reason());
        return json_error(413, e.to_string());
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            app.refused(&name, "too-large");
            return json_error(413, format!("body is over the {limit}-byte limit"));
        }
    };
    let secret = match app.webhook_secret(spec) {
        Ok(s) => s,
        Err(e) => return json_error(503, e.to_string()),
    };
    let request = WebhookRequest {
        timestamp: header_str(&headers, TIMESTAMP_HEADER),
        signature: header_str(&headers, SIGNATURE_HEADER),
        delivery: header_str(&headers, DELIVERY_HEADER),
        body: &bytes,
    };
    let delivery = match webhook::verify(&secret, &request, chrono::Utc::now().timestamp(), limit) {
        Ok(d) => d,
        Err(e) => {
            // Counted, logged once a minute, never a notice: anyone can send these.
            app.refused(&name, e.reason());
            return json_error(e.status(), e.to_string());
        }
    };
    let raw: Vec<String> = delivery.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let params = match inputs::resolve_params(spec, &raw) {
        Ok(p) => p,
        Err(e) => return json_error(400, e.0),
    };
    let mut trigger = delivery.into_trigger(&name);
    trigger.params = params;
    match app.trigger(trigger).await {
        Ok(rec) => (StatusCode::ACCEPTED, Json(run_json(&rec))).into_response(),
        Err(e) => json_error(e.status(), e.to_string()),
    }
}

async fn api_service(State(app): State<Shared>) -> Response {
    let pipelines: Vec<&str> = app.specs().map(|s| s.name.as_str()).collect();
    Json(json!({
        "started_at": app.started_at, "accepting": app.accepting(), "pid": std::process::id(),
        "pipelines": pipelines, "refused_webhooks": app.refusals(),
    }))
    .into_response()
}

async fn api_pipelines(State(app): State<Shared>) -> Response {
    let mut pipelines = view::pipelines(app.specs(), |p| app.next_slot(p));
    for p in &mut pipelines {
        p.s3_watch = app.s3_watch(&p.name);
    }
    Json(pipelines).into_response()
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    pipeline: Option<String>,
    limit: Option<usize>,
}

async fn api_runs(State(site): State<SharedSite>, Query(q): Query<RunsQuery>) -> Response {
    let limit = q.limit.unwrap_or(RUNS_SHOWN).clamp(1, 1000);
    let listing = view::runs(site.source(), q.pipeline.as_deref(), limit).await;
    match listing.errors.first() {
        // Some runs, or none and no error: the list. No runs because the store failed: the error.
        Some(e) if listing.runs.is_empty() => json_error(503, e.clone()),
        _ => Json(listing.runs).into_response(),
    }
}

async fn api_alerts(State(app): State<Shared>) -> Response {
    Json(view::alerts(&app.source, 100).await).into_response()
}

async fn api_notices(State(app): State<Shared>) -> Response {
    Json(app.notices()).into_response()
}
