//! `batchfan logs RUN STAGE [INDEX]`: one child's log.

use super::out::out;
use super::{StateArgs, UsageError};
use crate::{backend::LocalLayout, engine::peek, graph::job_name, run::RunStore, table::sqlite::SqliteTable};

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
    /// batchfan's table name (the spec's storage.table).
    #[arg(long, default_value = "batchfan")]
    table: String,
    #[command(flatten)]
    state: StateArgs,
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let layout = LocalLayout::new(&args.state.dir);
    let table = SqliteTable::open(&layout.tables())?;
    let store = RunStore::new(&table, &args.table);
    let rec = store
        .get(&args.run)
        .await?
        .ok_or_else(|| UsageError(format!("run {} not found: list runs with `batchfan status`", args.run)))?;
    let job_id = child_job_id(&rec, &args.stage, args.index)?;
    let logs = peek::attempt_logs(&args.state.dir, &job_id);
    let chosen = match args.attempt {
        Some(n) => logs.iter().find(|(a, _)| *a == n),
        None => logs.last(),
    };
    let Some((attempt, path)) = chosen else {
        return Err(UsageError(format!(
            "no log for {} {} of run {} (job {job_id}){}: it has not started yet",
            args.stage,
            args.index,
            args.run,
            args.attempt.map(|a| format!(" attempt {a}")).unwrap_or_default()
        ))
        .into());
    };
    eprintln!("== {} attempt {attempt} ({})", job_id, path.display());
    out!("{}", String::from_utf8_lossy(&std::fs::read(path)?));
    Ok(0)
}

/// The job id of child `index` of `stage` (`parent:local` for array children).
fn child_job_id(rec: &crate::run::RunRecord, stage: &str, index: u64) -> Result<String, UsageError> {
    let id_of = |name: &str| {
        rec.jobs
            .get(name)
            .cloned()
            .ok_or_else(|| UsageError(format!("job {name} was not submitted (run {})", rec.state)))
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
        UsageError(format!(
            "run {} has no stage {stage:?}: its stages are {}",
            rec.run_id,
            rec.stages.join(", ")
        ))
    })?;
    let sizing = rec.sizing.ok_or_else(|| UsageError(format!("run {} is not planned yet", rec.run_id)))?;
    if index >= sizing.children {
        return Err(UsageError(format!(
            "index {index} is out of range: stage {stage} has {} children",
            sizing.children
        )));
    }
    let shard = index / sizing.shard_size.max(1);
    let range = sizing.shard_range(shard);
    let parent = id_of(&job_name(&rec.pipeline, &rec.run_id, &format!("{stage}-{shard}")))?;
    Ok(if range.end - range.start >= 2 { format!("{parent}:{}", index - range.start) } else { parent })
}
