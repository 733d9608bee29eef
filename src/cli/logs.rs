//! `batchfan logs RUN STAGE INDEX`: one child's log.

use super::StateArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    run: String,
    /// A stage name, or `aggregation` / `cleanup`.
    stage: String,
    /// The child's global index (0 for aggregation and cleanup).
    #[arg(default_value_t = 0)]
    index: u64,
    /// Which attempt (default: the last).
    #[arg(long)]
    attempt: Option<u32>,
    #[arg(long, default_value = "batchfan")]
    table: String,
    #[command(flatten)]
    state: StateArgs,
}

pub async fn run(_args: Args) -> anyhow::Result<i32> {
    anyhow::bail!("logs: not wired yet")
}
