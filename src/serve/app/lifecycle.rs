//! The life cycle of `batchfan serve`: open the backend (and, with
//! `--batch-api`, the AWS Batch API over the same engine, on its own
//! listener), resume runs in flight, serve, and on SIGTERM/SIGINT stop taking
//! triggers and API requests, then drain the engine (or hand running children
//! — pipelines' and the API's alike — to the next start's recovery after
//! `drain_timeout`).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{atomic::Ordering, Arc},
};

use chrono::Utc;
use tokio::sync::watch;
use tracing::{info, warn};

use super::{lock, log_refusals, read_secret, App, BatchApiDoor, ServeConfig, RECONCILE_EVERY};
use crate::{
    backend::LocalBackend,
    batchapi::{events::Publisher, server, BatchApiConfig},
    engine::{LocalEngine, ShutdownMode},
    run::RunStore,
    serve::{cron_task, discovery, http, input::InputPolicy, s3_put_task, ServeError},
    service::Service,
    trigger::cron::Schedule,
};

/// What `on_ready` is told once everything listens.
#[derive(Debug, Clone, Copy)]
pub struct Ready<'a> {
    /// The status page, webhooks and JSON API.
    pub addr: SocketAddr,
    /// The URL that logs a browser in (`None` with `--no-auth`).
    pub login_url: Option<&'a str>,
    /// The AWS Batch API (`--batch-api`).
    pub batch_api: Option<SocketAddr>,
}

/// Checks everything that can be checked before opening the backend.
fn preflight(config: &ServeConfig) -> Result<BTreeMap<String, Schedule>, ServeError> {
    let mut names = BTreeSet::new();
    let mut schedules = BTreeMap::new();
    for spec in &config.specs {
        if !names.insert(spec.name.as_str()) {
            return Err(ServeError::Config(format!(
                "pipeline {} is given twice: serve each spec once",
                spec.name
            )));
        }
        if let Some(c) = &spec.triggers.cron {
            let s = Schedule::from_trigger(c)
                .map_err(|source| ServeError::Schedule { pipeline: spec.name.clone(), source })?;
            schedules.insert(spec.name.clone(), s);
        }
        if let Some(w) = spec.triggers.webhook.as_ref().filter(|w| w.enabled) {
            read_secret(&spec.name, w.secret.as_ref())?;
        }
    }
    Ok(schedules)
}

/// Binds the Batch API of `--batch-api` over serve's engine, in its state directory.
async fn bind_batch_api(
    door: &BatchApiDoor,
    engine: &LocalEngine,
    root: &std::path::Path,
) -> Result<server::BoundApi, ServeError> {
    let config = BatchApiConfig {
        state_dir: root.to_path_buf(),
        region: door.region.clone(),
        account: door.account.clone(),
    };
    Ok(server::bind(engine.clone(), config, door.listen, "--batch-api").await?)
}

/// The listener of the pages (port 0: any free port).
pub(crate) async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(listen).await.map_err(|source| ServeError::Listen { addr: listen, source })
}

/// Runs `batchfan serve` until SIGTERM or SIGINT. `on_ready` is told the bound
/// addresses and the login URL once everything listens.
pub async fn run(config: ServeConfig, on_ready: impl FnOnce(Ready<'_>)) -> Result<(), ServeError> {
    let schedules = preflight(&config)?;
    let backend = LocalBackend::open(&config.state_dir, config.options.clone()).await?;
    let root = backend.layout.root.clone();
    let service = Service::start(backend, config.specs.clone()).await?;
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr().map_err(ServeError::Server)?;
    let inputs = InputPolicy::new(&config.allow_inputs, &root.join("buckets"))
        .map_err(|e| ServeError::Config(e.to_string()))?;
    let app = Arc::new(App::new(service, schedules, config.allowed_hosts.clone(), !config.no_auth, inputs));
    app.gate.set_addr(addr);
    let mut publisher = None;
    let batch_api = match &config.batch_api {
        Some(door) => {
            let bound = bind_batch_api(door, &app.service.backend.engine, &root).await?;
            let _ = app.batch_api.set((bound.api(), bound.addr()));
            if door.sinks.any() {
                publisher = Some(Publisher::start(bound.api(), door.sinks.clone()));
            }
            Some(bound)
        }
        None => None,
    };

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
            tasks.push(tokio::spawn(cron_task::run(app.clone(), spec.name.clone(), stop.clone())));
        }
        if spec.triggers.s3.is_some() {
            tasks.push(tokio::spawn(s3_put_task::run(
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
    // The API has no login: AWS clients cannot log in (SigV4 is not checked either).
    let api_server = batch_api.map(|bound| {
        let mut stop = stop.clone();
        tokio::spawn(bound.serve(async move {
            let _ = stop.changed().await;
        }))
    });
    let mut info = discovery::ServeInfo::new(addr, &app.gate.api_token, app.gate.auth, config.specs.iter());
    info.batch_api_url = app.batch_api_addr().map(|a| format!("http://{a}"));
    discovery::write_pipelines(&root, &config.spec_files)?;
    discovery::write(&root, &info)?;
    on_ready(Ready { addr, login_url: info.login_url.as_deref(), batch_api: app.batch_api_addr() });
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
    for (what, task) in std::iter::once(("http server", server)).chain(api_server.map(|t| ("Batch API", t))) {
        match task.await {
            Ok(Err(e)) => warn!("{what}: {e}"),
            Err(e) => warn!("{what} task: {e}"),
            Ok(Ok(())) => {}
        }
    }
    tokio::select! {
        _ = app.service.shutdown(ShutdownMode::Drain) => info!("drained: every running child finished"),
        _ = tokio::time::sleep(config.drain_timeout) => {
            warn!("children still running after {:?}: stopping them; each stopped attempt counts, and the next start retries it where its retry rules and attempts allow", config.drain_timeout);
            app.service.shutdown(ShutdownMode::Abandon).await;
        }
        s = signals.next() => {
            warn!("{s} again: stopping running children now; each stopped attempt counts, and the next start retries it where its retry rules and attempts allow");
            app.service.shutdown(ShutdownMode::Abandon).await;
        }
    }
    if let Some(publisher) = publisher {
        let d = publisher.finish().await;
        info!(
            events = d.events,
            undelivered = d.undelivered,
            logs_failed = d.logs_failed,
            "events delivered"
        );
    }
    Ok(())
}

/// SIGTERM and SIGINT.
pub(crate) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn new() -> Result<Signals, ServeError> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(|e| ServeError::Signal("SIGTERM", e))?,
            int: signal(SignalKind::interrupt()).map_err(|e| ServeError::Signal("SIGINT", e))?,
        })
    }

    pub(crate) async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
