//! `batchfan batch-api`: the AWS Batch REST API over the local engine.

use std::{io::Write, net::SocketAddr, path::PathBuf};

use anyhow::Context;

use super::{StateArgs, UsageError};
use crate::{
    batchapi::{
        events::{EventOptions, Publisher},
        server, BatchApiConfig,
    },
    engine::{EngineConfig, LocalEngine, ShutdownMode},
};

/// Serve the AWS Batch API (SubmitJob, DescribeJobs, ListJobs, job definitions,
/// compute environments, job queues, tags) over the local engine, for
/// aws-sdk-batch, boto3 or the AWS CLI with only the endpoint URL changed.
///
/// Requests are NOT authenticated: SigV4 signatures are not checked and any
/// region and credentials are accepted. Keep it on a loopback address.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0: any free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8751")]
    listen: SocketAddr,
    #[command(flatten)]
    state: StateArgs,
    /// vCPUs the local engine may use (default: this machine's).
    #[arg(long)]
    vcpus: Option<f64>,
    /// Memory (MiB) the local engine may use (default: this machine's).
    #[arg(long)]
    memory: Option<u64>,
    /// Region written in the ARNs answered.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Account id written in the ARNs answered.
    #[arg(long, default_value = "123456789012")]
    account: String,
    /// A host environment variable to pass on to every job (repeatable); jobs see only their
    /// definition's and overrides' variables, the AWS_BATCH_* ones, PATH, HOME and TMPDIR otherwise.
    #[arg(long = "pass-env", value_name = "NAME")]
    pass_env: Vec<String>,
    /// Keep each job attempt's working directory (STATE/work/JOB.ATTEMPT) after it ends, for debugging.
    #[arg(long)]
    keep_workdirs: bool,
    #[command(flatten)]
    sinks: EventSinkArgs,
    /// Multiplies job timeouts and the kill grace (tests only: 0.01 makes a 60 s timeout 0.6 s).
    #[arg(long, default_value_t = 1.0, hide = true)]
    time_scale: f64,
}

/// Where the Batch API's job state change events and attempts' logs go
/// (`batchfan batch-api`, and `batchfan serve --batch-api`).
#[derive(Debug, Clone, clap::Args)]
pub struct EventSinkArgs {
    /// Append every job state change event to this file: one EventBridge
    /// "Batch Job State Change" envelope per line (JSON lines), as AWS sends them.
    #[arg(long, value_name = "PATH")]
    events_file: Option<PathBuf>,
    /// Also send the events to this EventBridge endpoint (PutEvents, e.g. moto's
    /// http://127.0.0.1:5000); requests are not signed. Needs --events-bus.
    #[arg(long, value_name = "URL", requires = "events_bus")]
    events_url: Option<String>,
    /// The event bus of --events-url (e.g. default).
    #[arg(long, value_name = "NAME", requires = "events_url")]
    events_bus: Option<String>,
    /// Send each attempt's stdout and stderr to this CloudWatch Logs endpoint
    /// (group /aws/batch/job, the stream named in logStreamName; e.g. moto's),
    /// when the attempt ends; requests are not signed. Without it, logs stay
    /// in STATE/logs.
    #[arg(long, value_name = "URL")]
    logs_url: Option<String>,
}

impl EventSinkArgs {
    /// The sinks chosen, their URLs checked.
    pub fn options(&self) -> Result<EventOptions, UsageError> {
        check_url("events-url", self.events_url.as_ref())?;
        check_url("logs-url", self.logs_url.as_ref())?;
        Ok(EventOptions {
            file: self.events_file.clone(),
            eventbridge: self.events_url.clone().zip(self.events_bus.clone()),
            logs_url: self.logs_url.clone(),
        })
    }
}

/// Checks that `url` (of option `--name`) is an http(s) URL.
fn check_url(name: &str, url: Option<&String>) -> Result<(), UsageError> {
    match url {
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => Err(UsageError(format!(
            "--{name} {u:?} is not valid: give an http:// or https:// URL, e.g. http://127.0.0.1:5000"
        ))),
        _ => Ok(()),
    }
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let api_config =
        BatchApiConfig { state_dir: args.state.dir.clone(), region: args.region, account: args.account };
    api_config.check().map_err(|e| UsageError(format!("--{e}")))?;
    let sinks = args.sinks.options()?;
    std::fs::create_dir_all(&args.state.dir)
        .with_context(|| format!("cannot create state directory {}", args.state.dir.display()))?;
    let mut config = EngineConfig::new(&args.state.dir);
    if let Some(v) = args.vcpus {
        config.vcpus = v;
    }
    if let Some(m) = args.memory {
        config.memory_mib = m;
    }
    config.time_scale = args.time_scale;
    config.pass_env = args.pass_env;
    config.keep_workdirs = args.keep_workdirs;
    let engine = LocalEngine::open(config).await?;
    let bound = server::bind(engine.clone(), api_config, args.listen, "--listen").await?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{} (state {})", bound.addr(), args.state.dir.display());
        let _ = out.flush();
    }
    let publisher = sinks.any().then(|| Publisher::start(bound.api(), sinks));
    bound.serve(shutdown_signal()).await?;
    // Running attempts count as lost; the next start retries them by their rules (the engine's recovery).
    engine.shutdown(ShutdownMode::Abandon).await;
    if let Some(publisher) = publisher {
        let d = publisher.finish().await;
        tracing::info!(
            events = d.events,
            undelivered = d.undelivered,
            logs_failed = d.logs_failed,
            "events delivered"
        );
    }
    Ok(0)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
