//! `batchfan batch-api`: the AWS Batch REST API over the local engine.

use std::{io::Write, net::SocketAddr};

use anyhow::Context;

use super::{StateArgs, UsageError};
use crate::{
    batchapi::{server, BatchApiConfig},
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
    /// Multiplies job timeouts and the kill grace (tests only: 0.01 makes a 60 s timeout 0.6 s).
    #[arg(long, default_value_t = 1.0, hide = true)]
    time_scale: f64,
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let api_config =
        BatchApiConfig { state_dir: args.state.dir.clone(), region: args.region, account: args.account };
    api_config.check().map_err(|e| UsageError(format!("--{e}")))?;
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
    bound.serve(shutdown_signal()).await?;
    // Running attempts count as lost; the next start retries them by their rules (the engine's recovery).
    engine.shutdown(ShutdownMode::Abandon).await;
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
