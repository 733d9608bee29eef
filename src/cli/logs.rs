//! `batchfan logs RUN STAGE [INDEX]`: one child's log — from the state
//! directory, or with `--backend aws` from CloudWatch Logs (the stream
//! DescribeJobs names for the attempt) — printed the same way from both:
//! a header on stderr, the lines on stdout (`--output json`: one JSON object
//! per line). `--follow` prints the log as it grows until the child ends, and
//! exits 0 if it SUCCEEDED, 1 if it FAILED.

use std::{sync::Arc, time::Duration};

use serde_json::json;

use super::{
    aws_args::{BackendArg, RunsAt},
    limits,
    logs_source::{AwsSource, LocalSource, Look, Source},
    out::outln,
    Output, StateArgs, UsageError, EXIT_RUN_FAILED,
};
use crate::{
    aws::job_logs::CloudWatchLogs,
    backend::{self, LocalLayout},
    batch::JobStatus,
    graph::job_name,
    run::{RunRecord, RunStore},
    spec::DEFAULT_TABLE,
    table::{sqlite::SqliteTable, Table},
};

#[derive(Debug, clap::Args)]
pub struct Args {
    run: String,
    /// A stage name, or `aggregation` / `cleanup`.
    stage: String,
    /// The child's global index (0 for aggregation and cleanup).
    #[arg(default_value_t = 0)]
    index: u64,
    /// Which attempt, 1 to 10 (default: the last).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10))]
    attempt: Option<u32>,
    /// Keep printing as the log grows (and the next attempts' logs) until the
    /// child ends; exit 0 if it SUCCEEDED, 1 if it FAILED.
    #[arg(long, short)]
    follow: bool,
    /// --follow: seconds between two looks (above 0, at most 3600).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS", value_parser = limits::poll_seconds)]
    poll: f64,
    /// Lines as text, or one JSON object per line: {"job_id", "attempt", "line"}.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    /// With --backend aws the lines come from CloudWatch Logs.
    #[command(flatten)]
    at: RunsAt,
    #[command(flatten)]
    state: StateArgs,
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let table_name = args.at.aws.table.clone().unwrap_or_else(|| DEFAULT_TABLE.to_owned());
    let table: Arc<dyn Table> = match args.at.backend {
        BackendArg::Local => {
            let tables = LocalLayout::new(&args.state.dir).tables();
            if !tables.exists() {
                let dir = args.state.dir.display();
                return Err(
                    UsageError(format!("no batchfan state in {dir}: pass the run's --state DIR")).into()
                );
            }
            Arc::new(SqliteTable::open(&tables)?)
        }
        BackendArg::Aws => {
            let (ports, _) = backend::aws_ports(&args.at.aws.target(), None)
                .await
                .map_err(|e| UsageError(format!("cannot use AWS: {e}")))?;
            ports.table
        }
    };
    let store = RunStore::new(table.as_ref(), &table_name);
    let job_id = loop {
        let rec = store.get(&args.run).await?.ok_or_else(|| {
            UsageError(format!("run {} not found: list runs with `batchfan status`", args.run))
        })?;
        match child_job_id(&rec, &args.stage, args.index) {
            Ok(id) => break id,
            // --follow on a run still planning or submitting waits for the child's job.
            Err(Lookup::NotYet(_)) if args.follow && !rec.state.is_terminal() => {
                tokio::time::sleep(Duration::from_secs_f64(args.poll)).await
            }
            Err(Lookup::NotYet(e) | Lookup::Bad(e)) => return Err(e.into()),
        }
    };
    let mut source: Box<dyn Source> = match args.at.backend {
        BackendArg::Local => Box::new(LocalSource::new(args.state.dir.clone(), job_id.clone())),
        BackendArg::Aws => {
            let logs = CloudWatchLogs::connect(args.at.aws.region.clone()).await;
            Box::new(AwsSource::new(logs, job_id.clone()))
        }
    };
    let sink = Sink { output: args.output, job_id };
    if args.follow {
        // In range: checked by `limits::poll_seconds`.
        let poll = Duration::from_secs_f64(args.poll);
        return follow(source.as_mut(), args.attempt, poll, &sink).await;
    }
    let look = source.look().await?;
    let attempt = args.attempt.unwrap_or(look.attempts);
    if attempt == 0 || attempt > look.attempts {
        return Err(no_log(&args, &sink.job_id, &look).into());
    }
    sink.header(attempt, &source.place(attempt));
    sink.lines(attempt, &source.read(attempt, true).await?);
    Ok(0)
}

/// Prints attempts as their logs grow until the job (or the one `--attempt`) ends.
async fn follow(
    source: &mut dyn Source,
    only: Option<u32>,
    poll: Duration,
    sink: &Sink,
) -> anyhow::Result<i32> {
    let mut current = 0;
    let mut waiting = None;
    loop {
        let look = source.look().await?;
        let ended = look.status.is_some_and(JobStatus::is_terminal);
        let newest = match only {
            Some(n) if look.attempts >= n => n,
            Some(_) => 0,
            None => look.attempts,
        };
        while current < newest {
            if current > 0 {
                // A later attempt started: this one is over.
                sink.lines(current, &source.read(current, true).await?);
            }
            current = only.unwrap_or(current + 1);
            sink.header(current, &source.place(current));
        }
        if current > 0 {
            let superseded = look.attempts > current;
            sink.lines(current, &source.read(current, ended || superseded).await?);
            if superseded {
                return Ok(EXIT_RUN_FAILED); // a retry means this attempt failed
            }
            if ended {
                return Ok(if look.status == Some(JobStatus::Succeeded) { 0 } else { EXIT_RUN_FAILED });
            }
        } else if ended {
            let which = only.map(|n| format!(" attempt {n}")).unwrap_or_default();
            return Err(UsageError(format!(
                "job {}{which} has no log: it ended {} after {} attempt(s)",
                sink.job_id,
                look.status.map_or("?", JobStatus::as_str),
                look.attempts
            ))
            .into());
        } else if waiting != Some(look.status) {
            let status = look.status.map_or("not known to the backend yet", JobStatus::as_str);
            eprintln!("== {} is {status}: waiting for its log", sink.job_id);
            waiting = Some(look.status);
        }
        tokio::time::sleep(poll).await;
    }
}

fn no_log(args: &Args, job_id: &str, look: &Look) -> UsageError {
    let why = match (args.attempt, look.status) {
        (Some(n), Some(s)) if s.is_terminal() => {
            format!("it ended {s} after {} attempt(s), not {n}", look.attempts)
        }
        (_, Some(s)) => format!("it is {s} and has not started yet: add --follow to wait for it"),
        (_, None) => "it has not started yet: add --follow to wait for it".to_owned(),
    };
    UsageError(format!(
        "no log for {} {} of run {} (job {job_id}){}: {why}",
        args.stage,
        args.index,
        args.run,
        args.attempt.map(|a| format!(" attempt {a}")).unwrap_or_default()
    ))
}

/// Prints a job's log lines: text, or one JSON object per line.
struct Sink {
    output: Output,
    job_id: String,
}

impl Sink {
    fn header(&self, attempt: u32, place: &str) {
        eprintln!("== {} attempt {attempt} ({place})", self.job_id);
    }

    fn lines(&self, attempt: u32, lines: &[String]) {
        for line in lines {
            match self.output {
                Output::Text => outln!("{line}"),
                Output::Json => {
                    outln!("{}", json!({ "job_id": self.job_id, "attempt": attempt, "line": line }))
                }
            }
        }
    }
}

/// Why [`child_job_id`] has no job id: not yet (the run is still planning or
/// submitting), or never (the stage or index is wrong).
enum Lookup {
    NotYet(UsageError),
    Bad(UsageError),
}

/// The job id of child `index` of `stage` (`parent:local` for array children).
fn child_job_id(rec: &RunRecord, stage: &str, index: u64) -> Result<String, Lookup> {
    let id_of = |name: &str| {
        rec.jobs.get(name).cloned().ok_or_else(|| {
            Lookup::NotYet(UsageError(format!("job {name} was not submitted (run {})", rec.state)))
        })
    };
    let suffix = match stage {
        "aggregation" => Some("aggregate"),
        "cleanup" => Some("cleanup"),
        _ => None,
    };
    if let Some(suffix) = suffix {
        return id_of(&job_name(&rec.pipeline, &rec.run_id, suffix));
    }
    rec.stages.iter().position(|s| s == stage).ok_or_else(|| {
        Lookup::Bad(UsageError(format!(
            "run {} has no stage {stage:?}: its stages are {}",
            rec.run_id,
            rec.stages.join(", ")
        )))
    })?;
    let sizing = rec
        .sizing
        .ok_or_else(|| Lookup::NotYet(UsageError(format!("run {} is not planned yet", rec.run_id))))?;
    if index >= sizing.children {
        return Err(Lookup::Bad(UsageError(format!(
            "index {index} is out of range: stage {stage} has {} children",
            sizing.children
        ))));
    }
    let shard = index / sizing.shard_size.max(1);
    let range = sizing.shard_range(shard);
    let parent = id_of(&job_name(&rec.pipeline, &rec.run_id, &format!("{stage}-{shard}")))?;
    Ok(if range.end - range.start >= 2 { format!("{parent}:{}", index - range.start) } else { parent })
}
