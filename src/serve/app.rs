//! The serving process: what every part shares ([`App`]) and the one door every
//! trigger goes through ([`App::trigger`]); the life cycle ([`run`]) is in
//! [`lifecycle`].

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

pub mod lifecycle;

pub use self::lifecycle::{run, Ready};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use super::{
    cron::Schedule,
    input::InputPolicy,
    site::{Gate, Site},
    source::Source,
    view::S3WatchView,
};
use crate::{
    backend::LocalOptions,
    batchapi::BatchApi,
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
    /// `--batch-api`: also serve the AWS Batch API over the same engine.
    pub batch_api: Option<BatchApiDoor>,
}

/// `--batch-api ADDR`: the AWS Batch REST API on its own listener, over
/// serve's engine and state directory, without the login (AWS clients sign
/// requests with SigV4, which is not checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchApiDoor {
    pub listen: SocketAddr,
    /// Region in the ARNs answered.
    pub region: String,
    /// Account id in the ARNs answered.
    pub account: String,
    /// Where job state change events and attempts' logs go (none: no publisher).
    pub sinks: crate::batchapi::events::EventOptions,
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
    /// The login and form tokens (the login token is in `serve.json` for `batchfan trigger`).
    pub gate: Gate,
    /// What the pages read runs from: the service's backend.
    pub source: Source,
    pub started_at: DateTime<Utc>,
    /// The inputs the Run button and the API may name.
    pub inputs: InputPolicy,
    batch_api: OnceLock<(Arc<BatchApi>, SocketAddr)>,
    accepting: AtomicBool,
    next_slots: Mutex<BTreeMap<String, Option<DateTime<Utc>>>>,
    s3_watches: Mutex<BTreeMap<String, S3WatchView>>,
    notices: Mutex<VecDeque<Notice>>,
    refusals: Mutex<Refusals>,
    active: Mutex<BTreeSet<(String, String)>>,
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
        let source = Source::local(service.specs().cloned(), &service.backend);
        App {
            service,
            schedules,
            gate: Gate::new(allowed_hosts, auth),
            source,
            started_at: Utc::now(),
            inputs,
            batch_api: OnceLock::new(),
            accepting: AtomicBool::new(true),
            next_slots: Mutex::new(BTreeMap::new()),
            s3_watches: Mutex::new(BTreeMap::new()),
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

    /// The Batch API served beside the pages (`--batch-api`), if any.
    pub fn batch_api(&self) -> Option<Arc<BatchApi>> {
        self.batch_api.get().map(|(api, _)| api.clone())
    }

    /// The address of the Batch API (`--batch-api`), once bound.
    pub fn batch_api_addr(&self) -> Option<SocketAddr> {
        self.batch_api.get().map(|(_, addr)| *addr)
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

    /// Records one listing of a pipeline's S3-put watcher and what it waits on.
    pub fn s3_watched(&self, pipeline: &str, settling: Vec<String>) {
        let mut watches = lock(&self.s3_watches);
        let w = watches.entry(pipeline.to_owned()).or_default();
        w.polls += 1;
        w.settling = settling;
    }

    /// What a pipeline's S3-put watcher has seen; `None` before its first listing.
    pub fn s3_watch(&self, pipeline: &str) -> Option<S3WatchView> {
        lock(&self.s3_watches).get(pipeline).cloned()
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
    pub fn webhook_secret(&self, spec: &PipelineSpec) -> Result<Vec<u8>, SecretError> {
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

impl Site for App {
    fn gate(&self) -> &Gate {
        &self.gate
    }

    fn source(&self) -> &Source {
        &self.source
    }
}

fn log_refusals(due: Option<Summary>) {
    if let Some(s) = due {
        warn!(count = s.count, total = s.total, detail = %s.detail, "refused {} webhook request(s) (not signed with the secret, stale or too large); at most one such line a minute", s.count);
    }
}

/// Why a pipeline's webhook secret cannot be read; each says the fix.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "pipeline {pipeline} has no webhook secret: add secret_env or secret_file under [triggers.webhook]"
    )]
    Missing { pipeline: String },
    #[error("webhook secret of pipeline {pipeline}: environment variable {name} is not set: export it before batchfan serve")]
    Unset {
        pipeline: String,
        name: String,
        #[source]
        source: std::env::VarError,
    },
    #[error("webhook secret of pipeline {pipeline}: cannot read {}: {source}: create the file or fix secret_file", path.display())]
    Unreadable {
        pipeline: String,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("webhook secret of pipeline {pipeline} is in AWS (secret_ssm / secret_secretsmanager), which batchfan serve cannot read: use secret_env or secret_file")]
    InAws { pipeline: String },
    #[error("webhook secret of pipeline {pipeline} is empty: put a long random value there (openssl rand -hex 32)")]
    Empty { pipeline: String },
}

/// Reads a webhook secret from where the spec says it is.
pub fn read_secret(pipeline: &str, source: Option<&SecretSource>) -> Result<Vec<u8>, SecretError> {
    let pipeline_name = || pipeline.to_owned();
    let secret = match source {
        None => return Err(SecretError::Missing { pipeline: pipeline_name() }),
        Some(SecretSource::Env(name)) => std::env::var(name).map_err(|source| SecretError::Unset {
            pipeline: pipeline_name(),
            name: name.clone(),
            source,
        })?,
        Some(SecretSource::File(path)) => std::fs::read_to_string(path).map_err(|source| {
            SecretError::Unreadable { pipeline: pipeline_name(), path: path.clone(), source }
        })?,
        Some(SecretSource::Ssm(_) | SecretSource::SecretsManager(_)) => {
            return Err(SecretError::InAws { pipeline: pipeline_name() })
        }
    };
    // `echo secret > file` adds a newline that is not part of the secret.
    let secret = secret.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(SecretError::Empty { pipeline: pipeline_name() });
    }
    Ok(secret.as_bytes().to_vec())
}
