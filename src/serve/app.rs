//! The serving process: what every part shares ([`App`]), the one door every
//! trigger goes through ([`App::trigger`]), and the life cycle ([`run`]):
//! open the backend, resume runs in flight, serve, and on SIGTERM/SIGINT stop
//! taking triggers, then drain the engine (or hand running children to the
//! next start's resume path after `drain_timeout`).

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::Duration,
};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};

use super::{cron::Schedule, discovery, http, input::InputPolicy, scheduler, watcher};
use crate::{
    backend::{LocalBackend, LocalOptions},
    engine::ShutdownMode,
    run::{RunError, RunRecord, RunStore, TriggerEvent, TriggerSource},
    service::Service,
    spec::{PipelineSpec, SecretSource},
    trigger::refusals::{Refusals, RefusalsView, Summary},
};

/// How often runs in flight are reconciled with their jobs (a safety net under engine events).
const RECONCILE_EVERY: Duration = Duration::from_secs(5);
/// Notices kept for the status page.
const MAX_NOTICES: usize = 200;

/// What `batchfan serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub specs: Vec<PipelineSpec>,
    /// Pipeline name → its spec file (recorded for `batchfan trigger NAME` without a service).
    pub spec_files: BTreeMap<String, PathBuf>,
    pub state_dir: PathBuf,
    pub listen: SocketAddr,
    pub options: LocalOptions,
    /// How long a shutdown waits for running children before handing them to the next start.
    pub drain_timeout: Duration,
    /// Extra `Host` header values the status page answers to (besides the listen address and localhost).
    pub allowed_hosts: Vec<String>,
    /// How often watched buckets are listed.
    pub poll_interval: Duration,
    /// `--no-auth`: no login for the pages and the API (a trusted loopback only).
    pub no_auth: bool,
    /// `--allow-input`: directories whose files the Run button and the API may name as input.
    pub allow_inputs: Vec<PathBuf>,
}

/// Something the status page should show: a refused trigger, a skipped or missed slot.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub at: DateTime<Utc>,
    pub pipeline: String,
    pub source: TriggerSource,
    /// `info`, `warn` or `error`.
    pub level: &'static str,
    pub message: String,
}

/// Why a trigger did not start (or find) a run.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The service is shutting down.
    #[error("batchfan serve is shutting down: retry once it is back")]
    ShuttingDown,
    /// No served pipeline has this name.
    #[error("pipeline {0:?} is not served here: serve its spec, or check the name")]
    UnknownPipeline(String),
    /// The pipeline does not take this kind of trigger.
    #[error("{0}")]
    Disabled(String),
    /// The request does not fit the pipeline (no run was made).
    #[error("{0}")]
    Rejected(String),
    /// The input is not one the pages and the API may name (no run was made).
    #[error("{0}")]
    InputNotAllowed(String),
    /// The request id names a run started from another input (no run was made).
    #[error("{0}")]
    Conflict(String),
    /// A port failed in a way that may pass: retry.
    #[error("{0}: retry")]
    Unavailable(String),
}

impl TriggerError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            TriggerError::ShuttingDown | TriggerError::Unavailable(_) => 503,
            TriggerError::UnknownPipeline(_) => 404,
            TriggerError::Disabled(_) | TriggerError::InputNotAllowed(_) => 403,
            TriggerError::Rejected(_) => 400,
            TriggerError::Conflict(_) => 409,
        }
    }
}

/// State shared by the HTTP server and the trigger tasks.
pub struct App {
    pub service: Service,
    pub schedules: BTreeMap<String, Schedule>,
    /// Per-process token the status page's forms carry (cross-site request protection).
    pub csrf: String,
    /// The login token, new at each start: the session cookie's value, and the
    /// API's bearer token (in `serve.json` for `batchfan trigger`).
    pub api_token: String,
    pub started_at: DateTime<Utc>,
    pub allowed_hosts: Vec<String>,
    /// Whether pages and the API need the token (off with `--no-auth`).
    pub auth: bool,
    /// The inputs the Run button and the API may name.
    pub inputs: InputPolicy,
    addr: OnceLock<SocketAddr>,
    accepting: AtomicBool,
    next_slots: Mutex<BTreeMap<String, Option<DateTime<Utc>>>>,
    notices: Mutex<VecDeque<Notice>>,
    refusals: Mutex<Refusals>,
    active: Mutex<BTreeSet<(String, String)>>,
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere never leaves these plain collections half-updated.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl App {
    pub fn new(
        service: Service,
        schedules: BTreeMap<String, Schedule>,
        allowed_hosts: Vec<String>,
        auth: bool,
        inputs: InputPolicy,
    ) -> App {
        App {
            service,
            schedules,
            csrf: random_token(),
            api_token: random_token(),
            started_at: Utc::now(),
            allowed_hosts,
            auth,
            inputs,
            addr: OnceLock::new(),
            accepting: AtomicBool::new(true),
            next_slots: Mutex::new(BTreeMap::new()),
            notices: Mutex::new(VecDeque::new()),
            refusals: Mutex::new(Refusals::default()),
            active: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn spec(&self, pipeline: &str) -> Option<&PipelineSpec> {
        self.service.spec(pipeline)
    }

    pub fn specs(&self) -> impl Iterator<Item = &PipelineSpec> {
        self.service.specs()
    }

    /// The address the server listens on (set once bound).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr.get().copied()
    }

    pub fn accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// Starts (or finds) the run of a trigger. The one door for every source.
    pub async fn trigger(&self, trigger: TriggerEvent) -> Result<RunRecord, TriggerError> {
        if !self.accepting() {
            return Err(TriggerError::ShuttingDown);
        }
        let spec = self
            .spec(&trigger.pipeline)
            .ok_or_else(|| TriggerError::UnknownPipeline(trigger.pipeline.clone()))?;
        if trigger.source == TriggerSource::Manual && !spec.triggers.manual {
            return Err(TriggerError::Disabled(format!(
                "manual runs of pipeline {} are off: set manual = true under [triggers] in its spec",
                spec.name
            )));
        }
        let (pipeline, source, key) =
            (trigger.pipeline.clone(), trigger.source, trigger.idempotency_key.clone());
        match self.service.trigger(trigger).await {
            Ok(rec) => {
                info!(run_id = %rec.run_id, pipeline = %pipeline, source = ?source, key = %key, state = %rec.state, "triggered");
                if !rec.state.is_terminal() {
                    lock(&self.active).insert((pipeline, rec.run_id.clone()));
                }
                Ok(rec)
            }
            Err(e) if e.retryable() => Err(TriggerError::Unavailable(e.to_string())),
            Err(e @ (RunError::Plan(_) | RunError::Invalid(_) | RunError::Graph(_))) => {
                Err(TriggerError::Rejected(e.to_string()))
            }
            Err(e) => Err(TriggerError::Unavailable(e.to_string())),
        }
    }

    /// A run record of a served pipeline.
    pub async fn record(&self, pipeline: &str, run_id: &str) -> Option<RunRecord> {
        let spec = self.spec(pipeline)?;
        RunStore::new(&self.service.backend.table, &spec.storage.table).get(run_id).await.ok().flatten()
    }

    /// A run record by id, whichever served pipeline it belongs to.
    pub async fn find_run(&self, run_id: &str) -> Option<RunRecord> {
        let tables: BTreeSet<&str> = self.specs().map(|s| s.storage.table.as_str()).collect();
        for table in tables {
            let store = RunStore::new(&self.service.backend.table, table);
            if let Ok(Some(rec)) = store.get(run_id).await {
                if self.spec(&rec.pipeline).is_some() {
                    return Some(rec);
                }
            }
        }
        None
    }

    /// Whether a run is still going (not SUCCEEDED or FAILED).
    pub async fn is_running(&self, pipeline: &str, run_id: &str) -> bool {
        self.record(pipeline, run_id).await.is_some_and(|r| !r.state.is_terminal())
    }

    pub fn notice(&self, pipeline: &str, source: TriggerSource, level: &'static str, message: String) {
        match level {
            "error" | "warn" => warn!(pipeline, source = ?source, "{message}"),
            _ => info!(pipeline, source = ?source, "{message}"),
        }
        let mut n = lock(&self.notices);
        n.push_front(Notice { at: Utc::now(), pipeline: pipeline.to_owned(), source, level, message });
        n.truncate(MAX_NOTICES);
    }

    /// Counts a refused webhook request (never a notice: anyone can send
    /// them), and logs the count at most once a minute.
    pub fn refused(&self, pipeline: &str, reason: &'static str) {
        let due = lock(&self.refusals).record(pipeline, reason, Utc::now());
        log_refusals(due);
    }

    /// Refused webhook requests since this process started.
    pub fn refusals(&self) -> RefusalsView {
        lock(&self.refusals).view()
    }

    /// Newest first.
    pub fn notices(&self) -> Vec<Notice> {
        lock(&self.notices).iter().cloned().collect()
    }

    pub fn set_next_slot(&self, pipeline: &str, next: Option<DateTime<Utc>>) {
        lock(&self.next_slots).insert(pipeline.to_owned(), next);
    }

    /// The next scheduled slot of a pipeline, as the scheduler last computed it.
    pub fn next_slot(&self, pipeline: &str) -> Option<DateTime<Utc>> {
        if let Some(next) = lock(&self.next_slots).get(pipeline) {
            return *next;
        }
        self.schedules.get(pipeline).and_then(|s| s.next_after(Utc::now()))
    }

    /// The webhook secret of a pipeline, read now (a file may be rotated while serving).
    pub fn webhook_secret(&self, spec: &PipelineSpec) -> Result<Vec<u8>, String> {
        let source = spec.triggers.webhook.as_ref().and_then(|w| w.secret.as_ref());
        read_secret(&spec.name, source)
    }

    async fn reconcile_active(&self) {
        let runs: Vec<(String, String)> = lock(&self.active).iter().cloned().collect();
        for (pipeline, run_id) in runs {
            let Some(spec) = self.spec(&pipeline) else { continue };
            let done = match self.service.resume(spec, &run_id).await {
                Ok(Some(rec)) => rec.state.is_terminal(),
                Ok(None) => !self.is_running(&pipeline, &run_id).await,
                Err(e) => {
                    warn!(run_id, "reconcile: {e}");
                    false
                }
            };
            if done {
                lock(&self.active).remove(&(pipeline, run_id));
            }
        }
    }
}

fn log_refusals(due: Option<Summary>) {
    if let Some(s) = due {
        warn!(count = s.count, total = s.total, detail = %s.detail, "refused {} webhook request(s) (not signed with the secret, stale or too large); at most one such line a minute", s.count);
    }
}

/// Reads a webhook secret from where the spec says it is.
pub fn read_secret(pipeline: &str, source: Option<&SecretSource>) -> Result<Vec<u8>, String> {
    let secret = match source {
        None => return Err(format!("pipeline {pipeline} has no webhook secret: add secret_env or secret_file under [triggers.webhook]")),
        Some(SecretSource::Env(name)) => std::env::var(name).map_err(|_| {
            format!("webhook secret of pipeline {pipeline}: environment variable {name} is not set: export it before batchfan serve")
        })?,
        Some(SecretSource::File(path)) => std::fs::read_to_string(path).map_err(|e| {
            format!("webhook secret of pipeline {pipeline}: cannot read {}: {e}: create the file or fix secret_file", path.display())
        })?,
        Some(SecretSource::Ssm(_) | SecretSource::SecretsManager(_)) => {
            return Err(format!(
                "webhook secret of pipeline {pipeline} is in AWS (secret_ssm / secret_secretsmanager), which batchfan serve cannot read: use secret_env or secret_file"
            ))
        }
    };
    // `echo secret > file` adds a newline that is not part of the secret.
    let secret = secret.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(format!("webhook secret of pipeline {pipeline} is empty: put a long random value there (openssl rand -hex 32)"));
    }
    Ok(secret.as_bytes().to_vec())
}

/// Checks everything that can be checked before opening the backend.
fn preflight(config: &ServeConfig) -> anyhow::Result<BTreeMap<String, Schedule>> {
    let mut names = BTreeSet::new();
    let mut schedules = BTreeMap::new();
    for spec in &config.specs {
        if !names.insert(spec.name.as_str()) {
            anyhow::bail!("pipeline {} is given twice: serve each spec once", spec.name);
        }
        if let Some(c) = &spec.triggers.cron {
            let s = Schedule::from_trigger(c).map_err(|e| anyhow::anyhow!("pipeline {}: {e}", spec.name))?;
            schedules.insert(spec.name.clone(), s);
        }
        if let Some(w) = spec.triggers.webhook.as_ref().filter(|w| w.enabled) {
            read_secret(&spec.name, w.secret.as_ref()).map_err(anyhow::Error::msg)?;
        }
    }
    Ok(schedules)
}

/// Runs `batchfan serve` until SIGTERM or SIGINT. `on_ready` gets the bound
/// address and the login URL (`None` with `--no-auth`).
pub async fn run(config: ServeConfig, on_ready: impl FnOnce(SocketAddr, Option<&str>)) -> anyhow::Result<()> {
    let schedules = preflight(&config)?;
    let backend = LocalBackend::open(&config.state_dir, config.options.clone()).await?;
    let root = backend.layout.root.clone();
    let service = Service::start(backend, config.specs.clone()).await?;
    let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "cannot listen on {}: pick a free port with --listen 127.0.0.1:PORT (0 for any)",
            config.listen
        )
    })?;
    let addr = listener.local_addr()?;
    let inputs = InputPolicy::new(&config.allow_inputs, &root.join("buckets"))?;
    let app = Arc::new(App::new(service, schedules, config.allowed_hosts.clone(), !config.no_auth, inputs));
    let _ = app.addr.set(addr);

    match app.service.resume_all().await {
        Ok(runs) => {
            for rec in runs.iter().filter(|r| !r.state.is_terminal()) {
                lock(&app.active).insert((rec.pipeline.clone(), rec.run_id.clone()));
            }
            if !runs.is_empty() {
                info!(count = runs.len(), "resumed runs in flight");
            }
        }
        Err(e) => warn!("resuming runs in flight: {e}: they are retried by the reconciler"),
    }
    // Runs the previous process had in flight but that resume_all left as they were.
    for spec in app.specs() {
        let store = RunStore::new(&app.service.backend.table, &spec.storage.table);
        for id in store.list_runs(Some(&spec.name)).await.unwrap_or_default() {
            if let Ok(Some(rec)) = store.get(&id).await {
                if !rec.state.is_terminal() {
                    lock(&app.active).insert((rec.pipeline, rec.run_id));
                }
            }
        }
    }

    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = Vec::new();
    for spec in app.specs() {
        if app.schedules.contains_key(&spec.name) {
            tasks.push(tokio::spawn(scheduler::run(app.clone(), spec.name.clone(), stop.clone())));
        }
        if spec.triggers.s3.is_some() {
            tasks.push(tokio::spawn(watcher::run(
                app.clone(),
                spec.name.clone(),
                config.poll_interval,
                stop.clone(),
            )));
        }
    }
    let reconciler = {
        let (app, mut stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(RECONCILE_EVERY) => {
                        log_refusals(lock(&app.refusals).flush(Utc::now()));
                        app.reconcile_active().await
                    }
                }
            }
        })
    };
    let server = {
        let (router, mut stop) = (http::router(app.clone()), stop.clone());
        tokio::spawn(async move {
            let graceful = async move {
                let _ = stop.changed().await;
            };
            axum::serve(listener, router).with_graceful_shutdown(graceful).await
        })
    };
    let info = discovery::ServeInfo::new(addr, &app.api_token, app.auth, config.specs.iter());
    discovery::write_pipelines(&root, &config.spec_files)?;
    discovery::write(&root, &info)?;
    on_ready(addr, info.login_url.as_deref());
    info!(%addr, pipelines = app.specs().count(), "serving");

    let mut signals = Signals::new()?;
    let which = signals.next().await;
    info!("{which}: no new triggers; draining (up to {:?})", config.drain_timeout);
    app.accepting.store(false, Ordering::SeqCst);
    discovery::remove(&root, &info);
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    reconciler.abort();
    match server.await {
        Ok(Err(e)) => warn!("http server: {e}"),
        Err(e) => warn!("http server task: {e}"),
        Ok(Ok(())) => {}
    }
    tokio::select! {
        _ = app.service.shutdown(ShutdownMode::Drain) => info!("drained: every running child finished"),
        _ = tokio::time::sleep(config.drain_timeout) => {
            warn!("children still running after {:?}: stopping them; the next start re-runs them", config.drain_timeout);
            app.service.shutdown(ShutdownMode::Abandon).await;
        }
        s = signals.next() => {
            warn!("{s} again: stopping running children now; the next start re-runs them");
            app.service.shutdown(ShutdownMode::Abandon).await;
        }
    }
    Ok(())
}

/// SIGTERM and SIGINT.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
