//! `batchfan serve SPEC...`: one long-lived process for the given pipelines —
//! cron schedules, object puts, signed webhooks, and a status page with Run buttons;
//! with `--batch-api`, the AWS Batch API over the same engine. With
//! `--backend aws`, the same pages for the pipelines deployed on AWS, read-only
//! ([`serve::deployed`]).

use std::{collections::BTreeMap, io::Write, net::SocketAddr, path::PathBuf, time::Duration};

use super::{
    aws_args::{BackendArg, RunsAt},
    batch_api::EventSinkArgs,
    inputs, StateArgs, UsageError,
};
use crate::{
    backend::LocalOptions,
    batchapi::{server, BatchApiConfig},
    serve,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pipeline specs (TOML) to serve.
    #[arg(required = true)]
    specs: Vec<PathBuf>,
    #[command(flatten)]
    state: StateArgs,
    /// Address of the status page, the webhooks and the trigger API (port 0: any free
    /// port; the address is written to STATE/serve.json and printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8750")]
    listen: SocketAddr,
    /// Another host name the status page answers to, e.g. behind a reverse proxy (repeatable).
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// A directory whose files the Run button and the JSON API may name as a run's input
    /// (repeatable; without it they take only s3://bucket/key of the local buckets).
    #[arg(long = "allow-input", value_name = "DIR")]
    allow_inputs: Vec<PathBuf>,
    /// No login: anyone who reaches the address may use the pages and the API. Only for a
    /// loopback address on a machine whose users you trust.
    #[arg(long)]
    no_auth: bool,
    /// Seconds a shutdown waits for running children before stopping them (each counts as a lost
    /// attempt: the next start retries it if attempts remain and the retry rules allow it). Default 30.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    drain_timeout: Option<u64>,
    /// Milliseconds between two listings of a watched bucket. Default 500.
    #[arg(long, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    poll_ms: Option<u64>,
    /// vCPUs the local engine may use (default: this machine's).
    #[arg(long, value_parser = super::limits::vcpus)]
    vcpus: Option<f64>,
    /// Memory (MiB) the local engine may use (default: this machine's).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=super::limits::MAX_MEMORY_MIB))]
    memory: Option<u64>,
    /// Also serve the AWS Batch REST API (as `batchfan batch-api` does) over this process's engine
    /// and state directory, on its own address (default 127.0.0.1:8751; port 0: any free port, the
    /// address is printed and in serve.json): jobs submitted with aws-sdk-batch, boto3 or the AWS CLI
    /// share the engine's capacity with the pipelines' runs and show on the status page's Jobs view.
    /// NOT authenticated: no login, SigV4 is not checked, any credentials are accepted — so it
    /// listens only on a loopback address unless --batch-api-public.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = server::DEFAULT_LISTEN)]
    batch_api: Option<SocketAddr>,
    /// Let --batch-api listen on a non-loopback address: anyone who reaches it runs commands on
    /// this machine as this user. Only behind your own network access rules.
    #[arg(long, requires = "batch_api")]
    batch_api_public: bool,
    /// Region written in the ARNs the Batch API answers.
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    batch_api_region: String,
    /// Account id written in the ARNs the Batch API answers.
    #[arg(long, value_name = "ACCOUNT", default_value = "123456789012")]
    batch_api_account: String,
    /// With --batch-api: where the engine's job state change events and the attempts' logs go.
    #[command(flatten)]
    batch_api_sinks: EventSinkArgs,
    /// Keep each job attempt's working directory (STATE/work/JOB.ATTEMPT) after it ends, for debugging.
    #[arg(long)]
    keep_workdirs: bool,
    /// --backend aws: show the runs of the pipelines deployed on AWS (their DynamoDB table, Batch
    /// and CloudWatch Logs), read-only: no engine, no triggers, no Run, Cancel or Retry button.
    #[command(flatten)]
    at: Box<RunsAt>,
}

/// Refuses the options of the embedded backend with `--backend aws`, naming them.
fn refuse_local_options(args: &Args) -> Result<(), UsageError> {
    let sinks = args.batch_api_sinks.options()?;
    let given: Vec<&str> = [
        (args.batch_api.is_some(), "--batch-api"),
        (args.batch_api_public, "--batch-api-public"),
        (sinks.any(), "--events-file/--events-url/--logs-url"),
        (args.vcpus.is_some(), "--vcpus"),
        (args.memory.is_some(), "--memory"),
        (!args.allow_inputs.is_empty(), "--allow-input"),
        (args.keep_workdirs, "--keep-workdirs"),
        (args.drain_timeout.is_some(), "--drain-timeout"),
        (args.poll_ms.is_some(), "--poll-ms"),
    ]
    .into_iter()
    .filter_map(|(given, flag)| given.then_some(flag))
    .collect();
    if given.is_empty() {
        return Ok(());
    }
    Err(UsageError(format!(
        "{} cannot be used with --backend aws: it shows the deployed pipelines' runs read-only (no local engine, triggers or Batch API): drop {}",
        given.join(", "),
        if given.len() == 1 { "it" } else { "them" }
    )))
}

/// The `--batch-api` options, checked.
fn batch_api_door(args: &Args) -> Result<Option<serve::BatchApiDoor>, UsageError> {
    let sinks = args.batch_api_sinks.options()?;
    let Some(listen) = args.batch_api else {
        if sinks.any() {
            return Err(UsageError(
                "--events-file, --events-url and --logs-url are for the Batch API: add --batch-api".into(),
            ));
        }
        return Ok(None);
    };
    server::check_loopback(listen, "--batch-api", "--batch-api-public", args.batch_api_public)
        .map_err(UsageError)?;
    let door = serve::BatchApiDoor {
        listen,
        region: args.batch_api_region.clone(),
        account: args.batch_api_account.clone(),
        sinks,
    };
    let names = BatchApiConfig {
        state_dir: args.state.dir.clone(),
        region: door.region.clone(),
        account: door.account.clone(),
    };
    names.check().map_err(|e| UsageError(format!("--batch-api-{e}")))?;
    Ok(Some(door))
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let mut specs = Vec::new();
    let mut files = BTreeMap::new();
    let mut problems = Vec::new();
    for path in &args.specs {
        match inputs::load_spec(path) {
            Ok(spec) => {
                let abs = path.canonicalize().unwrap_or_else(|_| path.clone());
                files.insert(spec.name.clone(), abs);
                specs.push(spec);
            }
            Err(e) => problems.push(e.0),
        }
    }
    if !problems.is_empty() {
        return Err(UsageError(problems.join("\n")).into());
    }
    if args.no_auth && !args.listen.ip().is_loopback() {
        return Err(UsageError(format!(
            "--no-auth on {} would let anyone who reaches it start runs: listen on 127.0.0.1, or drop --no-auth",
            args.listen
        ))
        .into());
    }
    if args.at.backend == BackendArg::Aws {
        refuse_local_options(&args)?;
        let target = args.at.aws.target();
        specs.iter_mut().for_each(|spec| target.apply(spec));
        let tables: std::collections::BTreeSet<&str> =
            specs.iter().map(|s| s.storage.table.as_str()).collect();
        let place = format!("AWS, table {}, read-only", tables.into_iter().collect::<Vec<_>>().join(", "));
        let config = serve::deployed::DeployedConfig {
            specs,
            target,
            listen: args.listen,
            allowed_hosts: args.allow_hosts,
            no_auth: args.no_auth,
        };
        serve::deployed::run(config, |ready| announce(ready, &place)).await?;
        return Ok(0);
    }
    serve::input::InputPolicy::new(&args.allow_inputs, &args.state.dir.join("buckets"))
        .map_err(|e| UsageError(e.to_string()))?;
    let batch_api = batch_api_door(&args)?;
    let config = serve::ServeConfig {
        options: LocalOptions {
            vcpus: args.vcpus,
            memory_mib: args.memory,
            // One engine for every pipeline served: the union of their `[local] pass_env`.
            pass_env: specs_pass_env(&specs),
            keep_workdirs: args.keep_workdirs,
            ..Default::default()
        },
        specs,
        spec_files: files,
        state_dir: args.state.dir.clone(),
        listen: args.listen,
        drain_timeout: Duration::from_secs(args.drain_timeout.unwrap_or(30)),
        allowed_hosts: args.allow_hosts,
        poll_interval: Duration::from_millis(args.poll_ms.unwrap_or(500)),
        no_auth: args.no_auth,
        allow_inputs: args.allow_inputs,
        batch_api,
    };
    let state = format!("state {}", args.state.dir.display());
    serve::run(config, |ready| announce(ready, &state)).await?;
    Ok(0)
}

/// Prints where serve listens (`place`: its state directory, or AWS) and the login URL.
fn announce(ready: serve::Ready<'_>, place: &str) {
    let addr = ready.addr;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{addr} ({place})");
    match ready.login_url {
        Some(url) => {
            let _ = writeln!(out, "log in: {url}");
        }
        None => eprintln!(
            "no login (--no-auth): anyone who can reach http://{addr} can use the pages and the API"
        ),
    }
    if let Some(api) = ready.batch_api {
        let _ = writeln!(
            out,
            "batch api: http://{api} (no login, SigV4 not checked: endpoint_url for AWS clients)"
        );
    }
    let _ = out.flush();
}

/// Every `[local] pass_env` name of `specs`, once each.
fn specs_pass_env(specs: &[crate::spec::PipelineSpec]) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = specs.iter().flat_map(|s| &s.local.pass_env).collect();
    names.into_iter().cloned().collect()
}
