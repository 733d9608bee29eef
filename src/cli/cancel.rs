//! `batchfan cancel RUN`: stop a run; it ends CANCELLED once its cleanup ran
//! ([`crate::run::cancel`]). Exit 0 when the run is CANCELLED, 1 when it ended
//! otherwise meanwhile (it finished at the same moment), 2 when it had ended
//! already or is unknown.
//!
//! Also the door `batchfan retry` goes through ([`open`], [`Op::wait`]): the
//! embedded backend when this process can take its engine, else (another
//! `batchfan run` or `serve` owns it) the run record alone — the cancel is
//! recorded there and the owner's reconciliation applies it; `--backend aws`
//! the deployed pipeline, reconciled from here as `run --backend aws` does.

use std::{path::PathBuf, sync::Arc, time::Duration};

use serde_json::json;

use super::{
    aws_args::{AwsArgs, BackendArg},
    inputs, limits,
    out::outln,
    Output, StateArgs, UsageError, EXIT_RUN_FAILED,
};
use crate::{
    backend::{self, BackendError, LocalBackend, LocalLayout, LocalOptions},
    engine::{EngineError, ShutdownMode},
    run::{cancel, monitor::Monitor, Ports, RunRecord, RunState, RunStore},
    serve::discovery,
    service::Service,
    spec::{PipelineSpec, DEFAULT_TABLE},
    table::{sqlite::SqliteTable, Table},
};

/// What `cancel` and `retry` take.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run id (`batchfan status` lists them).
    pub run: String,
    /// The run's pipeline spec (default: the one `batchfan serve` recorded for its pipeline; required with --backend aws).
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Return once the request is made instead of waiting for the run to end.
    #[arg(long)]
    pub detach: bool,
    #[command(flatten)]
    pub state: StateArgs,
    /// Print the result as text or JSON (stdout).
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    /// Where the run is: the embedded backend's state, or AWS.
    #[arg(long, value_enum, default_value_t, env = "BATCHFAN_BACKEND")]
    pub backend: BackendArg,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// --backend aws: seconds between two looks at the run's jobs (above 0, at most 3600).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS", value_parser = limits::poll_seconds)]
    pub poll: f64,
}

/// Who moves the run forward while this command waits.
enum Driver {
    /// This process owns the local engine.
    Local(Box<Service>),
    /// AWS: reconciled from here every `poll`.
    Aws(Box<Monitor>, Duration),
    /// Another process owns the local engine (its pid); only the table is ours.
    Owner(String),
}

/// A run's pipeline and the ports to act on it.
pub(super) struct Op {
    pub spec: PipelineSpec,
    pub table: Arc<dyn Table>,
    /// `None` when another process owns the local engine.
    pub ports: Option<Ports>,
    driver: Driver,
}

impl Op {
    pub fn store(&self) -> RunStore<'_> {
        RunStore::new(self.table.as_ref(), &self.spec.storage.table)
    }

    /// The pid of the process owning the local engine, if it is not this one.
    pub fn owner(&self) -> Option<&str> {
        match &self.driver {
            Driver::Owner(pid) => Some(pid),
            _ => None,
        }
    }

    /// Moves the run forward once (resume, reconcile: a recorded cancel is applied there).
    pub async fn kick(&self, run_id: &str) -> anyhow::Result<()> {
        match &self.driver {
            Driver::Local(service) => drop(service.resume(&self.spec, run_id).await?),
            Driver::Aws(monitor, _) => drop(monitor.reconcile(&self.spec.name, run_id).await?),
            Driver::Owner(_) => {}
        }
        Ok(())
    }

    /// Waits until the run ends, then stops the local engine if it is ours.
    pub async fn wait(self, run_id: &str) -> anyhow::Result<RunRecord> {
        let done = match &self.driver {
            Driver::Local(service) => {
                // Reconciles every 2 s itself (a recorded cancel is applied there).
                let done = service.wait(&self.spec.name, run_id, Duration::from_millis(100), |_| {}).await;
                service.shutdown(ShutdownMode::Drain).await;
                return Ok(done?);
            }
            Driver::Aws(_, poll) => loop {
                self.kick(run_id).await?;
                match self.store().get(run_id).await? {
                    Some(rec) if rec.state.is_terminal() => break rec,
                    Some(_) => tokio::time::sleep(*poll).await,
                    None => return Err(UsageError(format!("run {run_id} vanished")).into()),
                }
            },
            Driver::Owner(_) => loop {
                match self.store().get(run_id).await? {
                    Some(rec) if rec.state.is_terminal() => break rec,
                    Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    None => return Err(UsageError(format!("run {run_id} vanished")).into()),
                }
            },
        };
        Ok(done)
    }

    /// Stops the local engine if it is ours, leaving what runs to the next start.
    pub async fn close(self) {
        if let Driver::Local(service) = &self.driver {
            service.shutdown(ShutdownMode::Drain).await;
        }
    }
}

/// Finds the run's pipeline and opens what acts on it.
pub(super) async fn open(args: &Args) -> anyhow::Result<Op> {
    if args.backend == BackendArg::Aws {
        let path = args
            .spec
            .as_ref()
            .ok_or_else(|| UsageError("--backend aws needs the run's spec: pass --spec FILE".into()))?;
        let mut spec = inputs::load_spec(path)?;
        let target = args.aws.target();
        target.require_for_run().map_err(UsageError)?;
        target.apply(&mut spec);
        let (ports, _) = backend::aws_ports(&target, Some(&spec))
            .await
            .map_err(|e| UsageError(format!("cannot use AWS: {e}")))?;
        let monitor = Monitor::new(ports.clone(), [spec.clone()]);
        let poll = Duration::from_secs_f64(args.poll);
        return Ok(Op {
            spec,
            table: ports.table.clone(),
            ports: Some(ports),
            driver: Driver::Aws(Box::new(monitor), poll),
        });
    }
    let layout = LocalLayout::new(&args.state.dir);
    if !layout.tables().exists() {
        return Err(UsageError(format!(
            "no batchfan state in {}: pass --state DIR",
            args.state.dir.display()
        ))
        .into());
    }
    let spec = match &args.spec {
        Some(path) => inputs::load_spec(path)?,
        None => {
            let table = SqliteTable::open(&layout.tables())?;
            let rec =
                RunStore::new(&table, DEFAULT_TABLE).get(&args.run).await?.ok_or_else(|| not_found(args))?;
            let path = discovery::read_pipelines(&args.state.dir).remove(&rec.pipeline).ok_or_else(|| {
                UsageError(format!(
                    "pipeline {} of run {} was never served here: pass --spec FILE",
                    rec.pipeline, args.run
                ))
            })?;
            inputs::load_spec(&path)?
        }
    };
    let options = LocalOptions { pass_env: spec.local.pass_env.clone(), ..Default::default() };
    match LocalBackend::open(&args.state.dir, options).await {
        Ok(backend) => {
            let table: Arc<dyn Table> = backend.ports.table.clone();
            let ports = backend.ports.clone();
            let service = Service::start(backend, vec![spec.clone()]).await?;
            Ok(Op { spec, table, ports: Some(ports), driver: Driver::Local(Box::new(service)) })
        }
        Err(BackendError::Engine(EngineError::Locked { pid, .. })) => {
            let table = Arc::new(SqliteTable::open(&layout.tables())?);
            Ok(Op { spec, table, ports: None, driver: Driver::Owner(pid) })
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn not_found(args: &Args) -> UsageError {
    UsageError(format!("run {} not found: list runs with `batchfan status`", args.run))
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let op = open(&args).await?;
    let before = op.store().get(&args.run).await?.ok_or_else(|| not_found(&args))?;
    if before.state.is_terminal() && before.cancel.is_none() {
        op.close().await;
        let hint = if before.state == RunState::Succeeded {
            ""
        } else {
            " (batchfan retry runs what did not succeed)"
        };
        return Err(UsageError(format!(
            "run {} already ended {}: nothing to cancel{hint}",
            args.run, before.state
        ))
        .into());
    }
    cancel::request(&op.store(), &args.run, "cli").await?;
    if let Some(pid) = op.owner() {
        eprintln!("run {}: cancel recorded; engine process {pid} applies it", args.run);
    }
    op.kick(&args.run).await?;
    if args.detach {
        let rec = op.store().get(&args.run).await?.ok_or_else(|| not_found(&args))?;
        op.close().await;
        print(args.output, &rec);
        return Ok(0);
    }
    let done = op.wait(&args.run).await?;
    print(args.output, &done);
    Ok(if done.state == RunState::Cancelled { 0 } else { EXIT_RUN_FAILED })
}

/// Prints where a run stands after `cancel` or `retry`.
pub(super) fn print(output: Output, rec: &RunRecord) {
    match output {
        Output::Json => outln!(
            "{}",
            json!({
                "run_id": rec.run_id, "pipeline": rec.pipeline, "state": rec.state, "attempt": rec.attempt(),
                "output": rec.output.to_string(), "reruns": rec.retry.as_ref().map(|p| &p.reruns),
                "cancel": rec.cancel, "failure": rec.failure,
            })
        ),
        Output::Text => {
            outln!("run {} {} (attempt {})", rec.run_id, rec.state, rec.attempt());
            if rec.state == RunState::Succeeded {
                outln!("output {}", rec.output);
            }
            if let Some(f) = &rec.failure {
                outln!("{}", f.summary_line());
            }
        }
    }
}
