//! `batchfan status [RUN]`: runs and their state, from the run records.

use super::out::outln;
use std::{collections::BTreeMap, sync::Arc};

use serde_json::json;

use super::{
    aws_args::{BackendArg, RunsAt},
    Output, StateArgs, UsageError,
};
use crate::{
    backend::{self, LocalLayout},
    batch::{Batch, JobStatus},
    run::{
        record::now_ms,
        timings::{self, human_ms, StageTimings},
        RunStore,
    },
    spec::DEFAULT_TABLE,
    table::{sqlite::SqliteTable, Table},
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A run id; without it, every run, newest first.
    run: Option<String>,
    /// Only runs of this pipeline.
    #[arg(long)]
    pipeline: Option<String>,
    #[command(flatten)]
    state: StateArgs,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    #[command(flatten)]
    at: RunsAt,
}

/// Children per status of each job, by job id.
type Counts = BTreeMap<String, BTreeMap<JobStatus, u64>>;

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let table_name = args.at.aws.table.clone().unwrap_or_else(|| DEFAULT_TABLE.to_owned());
    let (table, batch, place): (Arc<dyn Table>, Option<Arc<dyn Batch>>, String) = match args.at.backend {
        BackendArg::Local => {
            let layout = LocalLayout::new(&args.state.dir);
            if !layout.tables().exists() {
                return Err(UsageError(format!(
                    "no batchfan state in {}: run a pipeline first, or pass --state DIR",
                    args.state.dir.display()
                ))
                .into());
            }
            (Arc::new(SqliteTable::open(&layout.tables())?), None, layout.root.display().to_string())
        }
        BackendArg::Aws => {
            let (ports, _) = backend::aws_ports(&args.at.aws.target(), None)
                .await
                .map_err(|e| UsageError(format!("cannot use AWS: {e}")))?;
            (ports.table, Some(ports.batch), format!("DynamoDB table {table_name}"))
        }
    };
    let store = RunStore::new(table.as_ref(), &table_name);
    match &args.run {
        Some(run_id) => {
            let rec = store.get(run_id).await?.ok_or_else(|| {
                UsageError(format!("run {run_id} not found in {place}: list runs with `batchfan status`"))
            })?;
            // The current attempt's own jobs, as the run page shows them by default.
            let jobs = timings::attempt_jobs(&rec, rec.attempt());
            let times = match &batch {
                None => {
                    let ids: Vec<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
                    crate::engine::peek::child_times(&args.state.dir, &ids)?
                }
                Some(batch) => timings::collect(batch.as_ref(), &jobs).await?,
            };
            let stage_times = timings::stage_timings(&jobs, &times, now_ms());
            match args.output {
                Output::Json => {
                    let mut v = serde_json::to_value(&rec)?;
                    v["timings"] = json!(stage_times);
                    outln!("{v}");
                }
                Output::Text => {
                    outln!("run {} of {}: {}", rec.run_id, rec.pipeline, rec.state);
                    if rec.attempt() > 1 {
                        outln!("attempt {} (batchfan retry)", rec.attempt());
                    }
                    if let Some(c) = &rec.cancel {
                        outln!("cancel requested by {}", c.by);
                    }
                    outln!("trigger {:?} key {}", rec.trigger.source, rec.trigger.idempotency_key);
                    if let Some(i) = &rec.trigger.input {
                        outln!("input {i}");
                    }
                    if let Some(s) = rec.sizing {
                        outln!("sizing {} units, {} children, {} shard(s)", s.units, s.children, s.shards);
                    }
                    outln!("output {}", rec.output);
                    if let Some(sum) = &rec.summary {
                        outln!("items {} ({} failed)", sum.items, sum.failed);
                    }
                    let ids: Vec<String> = rec.jobs.values().cloned().collect();
                    let counts = match &batch {
                        None => crate::engine::peek::status_counts(&args.state.dir, &ids).unwrap_or_default(),
                        Some(batch) => aws_counts(batch.as_ref(), &ids).await?,
                    };
                    for (name, id) in &rec.jobs {
                        let c = counts.get(id).map(|by| {
                            by.iter().map(|(st, n)| format!("{n} {st}")).collect::<Vec<_>>().join(", ")
                        });
                        outln!("job {name} {id}: {}", c.unwrap_or_else(|| "unknown to the backend".into()));
                    }
                    if let Some(f) = &rec.failure {
                        outln!("{}", f.summary_line());
                    }
                    print_timings(&stage_times, rec.attempt());
                }
            }
        }
        None => {
            let mut rows = Vec::new();
            for id in store.list_runs(args.pipeline.as_deref()).await? {
                if let Some(rec) = store.get(&id).await? {
                    rows.push(rec);
                }
            }
            match args.output {
                Output::Json => outln!("{}", json!(rows)),
                Output::Text => {
                    for r in rows {
                        let when = chrono::DateTime::from_timestamp_millis(r.created_at)
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_default();
                        outln!("{}  {:<16} {:<10} {when}", r.run_id, r.pipeline, r.state.as_str());
                    }
                }
            }
        }
    }
    Ok(0)
}

/// Children per status of each job, from DescribeJobs (an array parent's status summary).
async fn aws_counts(batch: &dyn Batch, ids: &[String]) -> anyhow::Result<Counts> {
    let mut out = Counts::new();
    for d in batch.describe_jobs(ids).await? {
        let by_status = match &d.array_properties {
            Some(a) if a.size.is_some() => {
                a.status_summary.iter().map(|(s, n)| (*s, u64::from(*n))).collect()
            }
            _ => [(d.status, 1)].into(),
        };
        out.insert(d.job_id, by_status);
    }
    Ok(out)
}

/// Per stage of `attempt`: how long it ran, its queue wait (started − created) and its slowest children.
fn print_timings(stages: &[StageTimings], attempt: u32) {
    if stages.is_empty() {
        return;
    }
    let of = if attempt > 1 { format!(" of attempt {attempt}") } else { String::new() };
    outln!("timings{of} (queue wait = started - created; run = stopped - started):");
    for t in stages {
        let span = match (t.duration_ms, t.last_stopped_at) {
            (None, _) => "not started".to_owned(),
            (Some(d), Some(_)) => format!("took {}", human_ms(d)),
            (Some(d), None) => format!("running for {}", human_ms(d)),
        };
        let mut line = format!("  {} ({} of {} started): {span}", t.stage, t.started, t.children);
        if let Some(w) = t.queue_wait {
            line += &format!(", queue wait median {} max {}", human_ms(w.median_ms), human_ms(w.max_ms));
        }
        if let Some(r) = t.run_time {
            line += &format!(", run median {} max {}", human_ms(r.median_ms), human_ms(r.max_ms));
        }
        outln!("{line}");
        if t.children > 1 && !t.slowest.is_empty() {
            let slow: Vec<String> =
                t.slowest.iter().map(|s| format!("[{}] {}", s.index, human_ms(s.run_ms))).collect();
            outln!("    slowest: {}", slow.join(", "));
        }
    }
}
