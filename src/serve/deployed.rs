//! `batchfan serve SPEC... --backend aws`: the status pages of pipelines
//! deployed on AWS, read-only. The runs list, a run's page (grids, timings,
//! timeline, failed children, attempts), a child's page, the history grid and
//! their JSON are the embedded serve's own handlers ([`super::http::shared_routes`])
//! over a [`Source`] on AWS: the run records in DynamoDB, the jobs from
//! DescribeJobs/ListJobs, the logs from CloudWatch Logs.
//!
//! Nothing here starts or changes a run: there is no engine, no schedule,
//! bucket watch or webhook (the deployed pipeline has its own: EventBridge,
//! S3 notifications, the trigger Lambda's Function URL). Where the embedded
//! pages have the Run, Cancel and Retry buttons these say which command does
//! it; their routes answer 403 with the same note. The login, the `Host`
//! check and the security headers are the embedded serve's ([`super::guard`]).

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use anyhow::Context;
use axum::{
    extract::State,
    http::{StatusCode, Uri},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::info;

use super::{
    app::lifecycle::{self, Ready, Signals},
    cron::Schedule,
    discovery, guard, http, page,
    site::{Gate, SharedSite, Site},
    source::{JobLogs, Source},
    view,
};
use crate::{
    aws::job_logs::CloudWatchLogs,
    backend::{self, AwsTarget},
    run::RunState,
    spec::PipelineSpec,
};

/// What the pages say where the embedded ones have a Run button or a trigger.
pub const READ_ONLY_NOTE: &str = "read-only view of the deployed pipeline: runs start from its triggers \
     (its schedule, S3 puts, the trigger Lambda's Function URL) or `batchfan run SPEC --backend aws`";

/// Runs listed on the home page.
const RUNS_SHOWN: usize = 50;

/// What `batchfan serve --backend aws` was asked to do.
#[derive(Debug, Clone)]
pub struct DeployedConfig {
    /// The served pipelines, with the target's names (table, bucket, queue) applied.
    pub specs: Vec<PipelineSpec>,
    pub target: AwsTarget,
    pub listen: SocketAddr,
    pub allowed_hosts: Vec<String>,
    /// `--no-auth`: no login (a trusted loopback only).
    pub no_auth: bool,
}

/// The read-only pages of deployed pipelines.
pub struct DeployedView {
    gate: Gate,
    source: Source,
    schedules: BTreeMap<String, Schedule>,
    started_at: DateTime<Utc>,
}

impl DeployedView {
    /// The pages of `specs` over `source`; a cron trigger that does not parse is an error.
    pub fn new(specs: &[PipelineSpec], source: Source, gate: Gate) -> anyhow::Result<DeployedView> {
        let mut schedules = BTreeMap::new();
        for spec in specs {
            if let Some(c) = &spec.triggers.cron {
                let s =
                    Schedule::from_trigger(c).map_err(|e| anyhow::anyhow!("pipeline {}: {e}", spec.name))?;
                schedules.insert(spec.name.clone(), s);
            }
        }
        Ok(DeployedView { gate, source, schedules, started_at: Utc::now() })
    }

    fn next_slot(&self, pipeline: &str) -> Option<DateTime<Utc>> {
        self.schedules.get(pipeline).and_then(|s| s.next_after(Utc::now()))
    }
}

impl Site for DeployedView {
    fn gate(&self) -> &Gate {
        &self.gate
    }

    fn source(&self) -> &Source {
        &self.source
    }

    fn run_actions(&self, run_id: &str, state: RunState) -> String {
        actions_note(run_id, state)
    }
}

/// The note in a run page's `run-actions` slot: the command that cancels or retries the run.
fn actions_note(run_id: &str, state: RunState) -> String {
    let (what, command) = match state {
        RunState::Failed | RunState::Cancelled => ("retry what failed", "retry"),
        s if !s.is_terminal() => ("cancel it", "cancel"),
        _ => return String::new(),
    };
    format!(
        "<p class=\"run-action-note warn\" id=read-only-actions>read-only view: {what} with \
             <code>batchfan {command} {} --spec SPEC --backend aws</code></p>",
        page::esc(run_id)
    )
}

type Shared = Arc<DeployedView>;

/// The router: the shared pages behind the guard, the home page, and 403s where the embedded serve acts.
pub fn router(pages: Shared) -> Router {
    let site: SharedSite = pages.clone();
    Router::new()
        .route("/", get(home))
        .route("/fragments/home", get(home_fragment))
        .route("/api/service", get(api_service))
        .route("/api/pipelines", get(api_pipelines))
        .route("/jobs", get(jobs))
        .route("/pipelines/{name}/run", post(read_only))
        .route("/api/pipelines/{name}/runs", post(read_only))
        .route("/hooks/{name}", post(read_only))
        .route("/runs/{id}/cancel", post(read_only))
        .route("/runs/{id}/retry", post(read_only))
        .route("/api/runs/{id}/cancel", post(read_only))
        .route("/api/runs/{id}/retry", post(read_only))
        .merge(http::shared_routes(site.clone()))
        .layer(axum::middleware::from_fn_with_state(site, guard::guard))
        .with_state(pages)
}

async fn home(State(pages): State<Shared>) -> Response {
    let fragment = home_html(&pages).await;
    let pipelines = view::pipelines(pages.source.specs(), |p| pages.next_slot(p));
    Html(page::home(&pipelines, &page::RunControl::Note(READ_ONLY_NOTE), &fragment)).into_response()
}

async fn home_html(pages: &DeployedView) -> String {
    let runs = view::runs(&pages.source, None, RUNS_SHOWN).await;
    page::home_fragment(&runs, &[], None)
}

async fn home_fragment(State(pages): State<Shared>) -> Response {
    Html(home_html(&pages).await).into_response()
}

async fn api_service(State(pages): State<Shared>) -> Response {
    let pipelines: Vec<&str> = pages.source.specs().map(|s| s.name.as_str()).collect();
    Json(json!({
        "started_at": pages.started_at, "accepting": false, "backend": "aws", "read_only": true,
        "pid": std::process::id(), "pipelines": pipelines, "tables": pages.source.tables(),
    }))
    .into_response()
}

async fn api_pipelines(State(pages): State<Shared>) -> Response {
    Json(view::pipelines(pages.source.specs(), |p| pages.next_slot(p))).into_response()
}

async fn jobs() -> Response {
    let body = "<h2>Jobs</h2><p class=muted id=jobs-elsewhere>The Jobs view lists jobs submitted through \
         <code>batchfan serve --batch-api</code>. A deployed pipeline's jobs are on each run's page here, \
         and all of the queue's in the AWS Batch console.</p>";
    (StatusCode::NOT_FOUND, Html(page::layout("jobs", body))).into_response()
}

/// What the embedded serve does on these routes (start, cancel, retry a run) needs the deployed pipeline's own doors.
async fn read_only(uri: Uri) -> Response {
    let message = format!(
        "{READ_ONLY_NOTE}; cancel or retry a run with `batchfan cancel|retry RUN --spec SPEC --backend aws`"
    );
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/hooks/") {
        (StatusCode::FORBIDDEN, Json(json!({ "error": message }))).into_response()
    } else {
        http::html_error(403, &message)
    }
}

/// Serves the read-only pages until SIGTERM or SIGINT. `on_ready` is told the
/// bound address and the login URL once it listens.
pub async fn run(config: DeployedConfig, on_ready: impl FnOnce(Ready<'_>)) -> anyhow::Result<()> {
    let (ports, _clients) = backend::aws_ports(&config.target, None).await.context("cannot use AWS")?;
    let logs = JobLogs::cloudwatch(CloudWatchLogs::connect(config.target.region.clone()).await);
    let source = Source::new(config.specs.clone(), ports.table, ports.batch, logs, None);
    let gate = Gate::new(config.allowed_hosts.clone(), !config.no_auth);
    let pages = Arc::new(DeployedView::new(&config.specs, source, gate)?);
    let listener = lifecycle::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    pages.gate.set_addr(addr);
    let mut signals = Signals::new()?;
    let info = discovery::ServeInfo::new(addr, &pages.gate.api_token, pages.gate.auth, config.specs.iter());
    on_ready(Ready { addr, login_url: info.login_url.as_deref(), batch_api: None });
    info!(%addr, pipelines = config.specs.len(), tables = ?pages.source.tables(), "serving the deployed pipelines, read-only");
    axum::serve(listener, router(pages.clone()))
        .with_graceful_shutdown(async move {
            let which = signals.next().await;
            info!("{which}: stopping");
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::view::PipelineView;

    #[test]
    fn a_run_page_names_the_command_instead_of_a_button() {
        let failed = actions_note("r1", RunState::Failed);
        assert!(failed.contains("<code>batchfan retry r1 --spec SPEC --backend aws</code>"), "{failed}");
        let running = actions_note("r1", RunState::Submitted);
        assert!(running.contains("batchfan cancel r1 --spec SPEC --backend aws"), "{running}");
        assert!(!running.contains("<form") && !failed.contains("<button"), "{running}");
        assert_eq!(actions_note("r1", RunState::Succeeded), "");
    }

    #[test]
    fn the_home_page_has_the_note_and_no_run_form() {
        let p = PipelineView {
            name: "dep".into(),
            description: String::new(),
            manual: true,
            needs_input: true,
            params: [("day".to_owned(), "today".to_owned())].into(),
            cron: None,
            s3: None,
            webhook: true,
        };
        let html = page::home(std::slice::from_ref(&p), &page::RunControl::Note(READ_ONLY_NOTE), "");
        assert!(html.contains("id=read-only>read-only view of the deployed pipeline"), "{html}");
        assert!(!html.contains("<form") && !html.contains("<button"), "{html}");
        assert!(html.contains("webhook (the Lambda's Function URL)") && !html.contains("/hooks/"), "{html}");
        let local = page::home(&[p], &page::RunControl::Button { csrf: "c", input_hint: "s3://b/k" }, "");
        assert!(local.contains("<form class=run") && !local.contains("id=read-only"), "{local}");
    }
}
