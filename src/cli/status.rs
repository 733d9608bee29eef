//! `batchfan status [RUN]`: runs and their state, from the run records.

use serde_json::json;

use super::{Output, StateArgs, UsageError};
use crate::{backend::LocalLayout, run::RunStore, table::sqlite::SqliteTable};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A run id; without it, every run, newest first.
    run: Option<String>,
    /// Only runs of this pipeline.
    #[arg(long)]
    pipeline: Option<String>,
    /// batchfan's table name (the spec's storage.table).
    #[arg(long, default_value = "batchfan")]
    table: String,
    #[command(flatten)]
    state: StateArgs,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let layout = LocalLayout::new(&args.state.dir);
    if !layout.tables().exists() {
        return Err(UsageError(format!(
            "no batchfan state in {}: run a pipeline first, or pass --state DIR",
            args.state.dir.display()
        ))
        .into());
    }
    let table = SqliteTable::open(&layout.tables())?;
    let store = RunStore::new(&table, &args.table);
    match &args.run {
        Some(run_id) => {
            let rec = store.get(run_id).await?.ok_or_else(|| {
                UsageError(format!(
                    "run {run_id} not found in {}: list runs with `batchfan status`",
                    layout.root.display()
                ))
            })?;
            match args.output {
                Output::Json => println!("{}", serde_json::to_string(&rec)?),
                Output::Text => {
                    println!("run {} of {}: {}", rec.run_id, rec.pipeline, rec.state);
                    println!("trigger {:?} key {}", rec.trigger.source, rec.trigger.idempotency_key);
                    if let Some(i) = &rec.trigger.input {
                        println!("input {i}");
                    }
                    if let Some(s) = rec.sizing {
                        println!("sizing {} units, {} children, {} shard(s)", s.units, s.children, s.shards);
                    }
                    println!("output {}", rec.output);
                    if let Some(sum) = &rec.summary {
                        println!("items {} ({} failed)", sum.items, sum.failed);
                    }
                    let ids: Vec<String> = rec.jobs.values().cloned().collect();
                    let counts =
                        crate::engine::peek::status_counts(&args.state.dir, &ids).unwrap_or_default();
                    for (name, id) in &rec.jobs {
                        let c = counts.get(id).map(|by| {
                            by.iter().map(|(st, n)| format!("{n} {st}")).collect::<Vec<_>>().join(", ")
                        });
                        println!("job {name} {id}: {}", c.unwrap_or_else(|| "unknown to the engine".into()));
                    }
                    if let Some(f) = &rec.failure {
                        println!(
                            "failure {} index {:?} exit {:?}: {}",
                            f.stage,
                            f.index,
                            f.exit_code,
                            f.status_reason.as_deref().unwrap_or("-")
                        );
                    }
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
                Output::Json => println!("{}", json!(rows)),
                Output::Text => {
                    for r in rows {
                        let when = chrono::DateTime::from_timestamp_millis(r.created_at)
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_default();
                        println!("{}  {:<16} {:<10} {when}", r.run_id, r.pipeline, r.state.as_str());
                    }
                }
            }
        }
    }
    Ok(0)
}
