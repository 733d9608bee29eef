//! `batchfan trigger PIPELINE`: starts a run through the running `batchfan
//! serve` of the state directory (found through its `serve.json`), or, when
//! none is up, runs it in this process as `batchfan run` does.
//!
//! Each call starts a new run unless `--request-id` names one: the same id
//! always means the same run.
//!
//! A local `--input` file is the user's own: it is imported into the state
//! directory's buckets here (as `batchfan run` does), and the service gets its
//! `s3://` uri — the service itself takes no local path outside `--allow-input`.

use super::out::outln;
use std::{path::Path, time::Duration};

use serde_json::{json, Value};

use super::{
    inputs, parse_params, run, Output, RunInputArgs, StateArgs, UsageError, EXIT_ERROR, EXIT_RUN_FAILED,
};
use crate::{backend::LocalLayout, objects::dir::DirObjects, serve::discovery};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline: its name (served, or served here before) or its spec file.
    pipeline: String,
    /// The run's input: s3://bucket/key in the local buckets, or a local file.
    #[arg(long)]
    input: Option<String>,
    /// A run parameter, name=value (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Idempotency key: the same id always means the same run (default: a new run).
    /// 1-100 characters: letters, digits, '-', '_', '.', ':'.
    #[arg(long, value_parser = super::limits::RequestId)]
    request_id: Option<String>,
    /// Through a service: wait until the run ends (exit 0 succeeded, 1 failed). Without one,
    /// the run always runs to its end in this process.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    state: StateArgs,
    /// Print the result as text or JSON (stdout).
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// What the service said.
enum Reply {
    /// No service answered: run directly.
    NotUp(String),
    Done(i32),
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let as_file = Path::new(&args.pipeline);
    let from_file = if as_file.is_file() { Some(inputs::load_spec(as_file)?) } else { None };
    let name = from_file.as_ref().map_or_else(|| args.pipeline.clone(), |s| s.name.clone());
    parse_params(&args.params)?;
    let request_id = args
        .request_id
        .clone()
        .unwrap_or_else(|| format!("trigger-{}", hex::encode(rand::random::<[u8; 8]>())));
    if let Some(info) = discovery::read(&args.state.dir) {
        match via_service(&args, &info, &name, &request_id).await? {
            Reply::Done(code) => return Ok(code),
            Reply::NotUp(why) => eprintln!("no batchfan serve answers at {} ({why}): running here", info.url),
        }
    }
    let spec_path = match from_file {
        Some(_) => as_file.to_path_buf(),
        None => discovery::read_pipelines(&args.state.dir).remove(&name).ok_or_else(|| {
            UsageError(format!(
                "no batchfan serve is running in {} and pipeline {name:?} was never served there: pass its spec file instead (batchfan trigger path/to/{name}.toml)",
                args.state.dir.display()
            ))
        })?,
    };
    run::run(run::Args {
        run: RunInputArgs { spec: spec_path, input: args.input.clone(), params: args.params.clone() },
        fresh: false,
        request_id: Some(request_id),
        vcpus: None,
        memory: None,
        keep_workdirs: false,
        state: args.state.clone(),
        output: args.output,
        quiet: false,
        backend: super::aws_args::BackendArg::default(),
        aws: super::aws_args::AwsArgs::default(),
        detach: false,
        poll: 10.0,
    })
    .await
}

async fn via_service(
    args: &Args,
    info: &discovery::ServeInfo,
    name: &str,
    request_id: &str,
) -> anyhow::Result<Reply> {
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build()?;
    let params: serde_json::Map<String, Value> =
        parse_params(&args.params)?.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let input = match &args.input {
        Some(i) if !i.starts_with("s3://") => {
            let root = args.state.dir.canonicalize().unwrap_or_else(|_| args.state.dir.clone());
            let objects = DirObjects::new(LocalLayout::new(root).buckets());
            Some(inputs::resolve_input(i, &objects).await?.object.to_string())
        }
        other => other.clone(),
    };
    let body = json!({ "params": params, "input": input, "request_id": request_id });
    let url = format!("{}/api/pipelines/{name}/runs", info.url);
    let resp = match client.post(&url).bearer_auth(&info.token).json(&body).send().await {
        Ok(r) => r,
        Err(e) if e.is_connect() => return Ok(Reply::NotUp(e.to_string())),
        Err(e) => return Err(anyhow::anyhow!("batchfan serve at {}: {e}", info.url)),
    };
    let status = resp.status();
    let reply: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = reply.get("error").and_then(Value::as_str).unwrap_or("no reason given").to_owned();
        return match status.as_u16() {
            400 | 403 | 404 => Err(UsageError(msg).into()),
            _ => Err(anyhow::anyhow!("batchfan serve answered {status}: {msg}")),
        };
    }
    let run_id = reply.get("run_id").and_then(Value::as_str).unwrap_or_default().to_owned();
    eprintln!("run {run_id} ({name}) started by batchfan serve: {}/runs/{run_id}", info.url);
    if !args.wait {
        print(args.output, &reply);
        return Ok(Reply::Done(0));
    }
    let mut last = String::new();
    loop {
        let r = client.get(format!("{}/api/runs/{run_id}", info.url)).bearer_auth(&info.token).send().await;
        let view: Value = match r {
            Ok(r) if r.status().is_success() => r.json().await.unwrap_or(Value::Null),
            Ok(r) => return Err(anyhow::anyhow!("batchfan serve answered {} for run {run_id}", r.status())),
            Err(e) => {
                eprintln!("lost batchfan serve while waiting for run {run_id}: {e}");
                return Ok(Reply::Done(EXIT_ERROR));
            }
        };
        let state = view.get("state").and_then(Value::as_str).unwrap_or("").to_owned();
        if state != last {
            eprintln!("  run {run_id} {state}");
            last = state.clone();
        }
        if state == "SUCCEEDED" || state == "FAILED" {
            print(args.output, &view);
            return Ok(Reply::Done(if state == "SUCCEEDED" { 0 } else { EXIT_RUN_FAILED }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn print(output: Output, v: &Value) {
    match output {
        Output::Json => outln!("{v}"),
        Output::Text => outln!(
            "run {} {}",
            v.get("run_id").and_then(Value::as_str).unwrap_or("?"),
            v.get("state").and_then(Value::as_str).unwrap_or("?")
        ),
    }
}
