//! `batchfan serve SPEC... --backend aws`: the status pages of pipelines
//! deployed on AWS. The runs list, a run's page (grids, timings, timeline,
//! failed children, attempts), a child's page, the history grid and their
//! JSON are the embedded serve's own handlers ([`super::http::shared_routes`])
//! over a [`Source`] on AWS: the run records in DynamoDB, the jobs from
//! DescribeJobs/ListJobs, the logs from CloudWatch Logs.
//!
//! No run starts here: there is no engine, no schedule, bucket watch or
//! webhook (the deployed pipeline has its own: EventBridge, S3
//! notifications, the trigger Lambda's Function URL); where the embedded
//! pages have the Run button they say so, and its routes answer 403. The
//! Cancel and Retry buttons work as `batchfan cancel|retry --backend aws`
//! does ([`super::actions`]): the change is recorded in the run's record
//! (and a retry's jobs submitted from here), then this process reconciles
//! the run every [`FOLLOW_EVERY`] until it ends, beside the deployed alert
//! Lambda. The login, the `Host` check and the security headers are the
//! embedded serve's ([`super::guard`]).

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use axum::{
    extract::State,
    http::{StatusCode, Uri},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::{info, warn};

use super::{
    actions::{self, Actor},
    app::lifecycle::{self, Ready, Signals},
    cron::Schedule,
    discovery,
    error::ServeError,
    guard, http, page,
    site::{Gate, SharedSite, Site},
    source::{JobLogs, Source},
    view,
};
use crate::{
    aws::job_logs::CloudWatchLogs,
    backend::{self, AwsTarget},
    run::{monitor::Monitor, record::now_ms, submit, Ports, RunError, RunStore},
    spec::PipelineSpec,
};

/// What the pages say where the embedded ones have a Run button or a trigger.
pub const READ_ONLY_NOTE: &str = "read-only view of the deployed pipeline: runs start from its triggers \
     (its schedule, S3 puts, the trigger Lambda's Function URL) or `batchfan run SPEC --backend aws`";

/// How often a run cancelled or retried from here is reconciled until it ends.
pub const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

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

/// The pages of deployed pipelines.
pub struct DeployedView {
    gate: Gate,
    source: Source,
    schedules: BTreeMap<String, Schedule>,
    /// Per pipeline: the ports that cancel and retry its runs (its topics routed) and its spec.
    acting: BTreeMap<String, (Ports, PipelineSpec)>,
    started_at: DateTime<Utc>,
}

impl DeployedView {
    /// The pages of `specs` over `source`, acting through `ports` (routed to
    /// each pipeline's topics by `target`); a cron trigger that does not parse is an error.
    pub fn new(
        specs: &[PipelineSpec],
        source: Source,
        gate: Gate,
        ports: &Ports,
        target: &AwsTarget,
    ) -> Result<DeployedView, ServeError> {
        let mut schedules = BTreeMap::new();
        let mut acting = BTreeMap::new();
        for spec in specs {
            if let Some(c) = &spec.triggers.cron {
                let s = Schedule::from_trigger(c)
                    .map_err(|source| ServeError::Schedule { pipeline: spec.name.clone(), source })?;
                schedules.insert(spec.name.clone(), s);
            }
            let mut routed = ports.clone();
            target.route_topics(spec, &mut routed);
            acting.insert(spec.name.clone(), (routed, spec.clone()));
        }
        Ok(DeployedView { gate, source, schedules, acting, started_at: Utc::now() })
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
}

impl Actor for DeployedView {
    fn acting(&self, pipeline: &str) -> Option<(Ports, PipelineSpec)> {
        self.acting.get(pipeline).cloned()
    }

    fn follow(self: Arc<Self>, spec: PipelineSpec, run_id: String, action: &'static str) {
        let Some((ports, _)) = self.acting.get(&spec.name).cloned() else { return };
        tokio::spawn(async move {
            if action == "retry" {
                // As `batchfan retry --backend aws`: the submitter's lease keeps the Lambda and us from both submitting.
                let owner = format!("serve-{}-{}", std::process::id(), now_ms());
                match submit::submit(&ports, &spec, &run_id, &owner).await {
                    Ok(_) | Err(RunError::LeaseHeld { .. }) => {}
                    Err(e) => warn!(run_id = %run_id, "submitting the retry's jobs: {e}"),
                }
            }
            let monitor = Monitor::new(ports.clone(), [spec.clone()]);
            let store = RunStore::new(ports.table.as_ref(), &spec.storage.table);
            loop {
                if let Err(e) = monitor.reconcile(&spec.name, &run_id).await {
                    warn!(run_id = %run_id, "after the {action} button: {e}");
                }
                match store.get(&run_id).await {
                    Ok(Some(rec)) if !rec.state.is_terminal() => tokio::time::sleep(FOLLOW_EVERY).await,
                    Ok(_) => return,
                    Err(e) => {
                        warn!(run_id = %run_id, "following the run: {e}");
                        tokio::time::sleep(FOLLOW_EVERY).await;
                    }
                }
            }
        });
    }
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
        .merge(actions::routes::<DeployedView>())
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

/// Starting a run needs the deployed pipeline's own doors.
async fn read_only(uri: Uri) -> Response {
    let message = READ_ONLY_NOTE;
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/hooks/") {
        (StatusCode::FORBIDDEN, Json(json!({ "error": message }))).into_response()
    } else {
        http::html_error(403, message)
    }
}

/// Serves the read-only pages until SIGTERM or SIGINT. `on_ready` is told the
/// bound address and the login URL once it listens.
pub async fn run(config: DeployedConfig, on_ready: impl FnOnce(Ready<'_>)) -> Result<(), ServeError> {
    let (ports, _clients) = backend::aws_ports(&config.target, None).await?;
    let logs = JobLogs::cloudwatch(CloudWatchLogs::connect(config.target.region.clone()).await);
    let source = Source::new(config.specs.clone(), ports.table.clone(), ports.batch.clone(), logs, None);
    let gate = Gate::new(config.allowed_hosts.clone(), !config.no_auth);
    let pages = Arc::new(DeployedView::new(&config.specs, source, gate, &ports, &config.target)?);
    let listener = lifecycle::bind(config.listen).await?;
    let addr = listener.local_addr().map_err(ServeError::Server)?;
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
        .await
        .map_err(ServeError::Server)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::view::PipelineView;

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
            s3_watch: None,
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
