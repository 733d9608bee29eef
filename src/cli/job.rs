//! `batchfan job ...`: commands that run inside jobs.

use crate::runtime::{builtin, exec, JobContext, JobEnv, JobError};

#[derive(Debug, clap::Subcommand)]
pub enum JobCommand {
    /// Run any program as a stage child: item in $BATCHFAN_ITEM_FILE, result from
    /// $BATCHFAN_RESULT_FILE, output from $BATCHFAN_OUTPUT_FILE; the exit code is passed on.
    Exec {
        /// The program and its arguments (after --).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Aggregation: concatenate the last stage's child outputs in child order.
    Concat,
    /// Cleanup: delete the run's work items, results and scratch objects.
    Cleanup,
    /// A no-op job that lets another job wait on more than 20 jobs.
    Barrier,
}

pub async fn run(cmd: JobCommand) -> anyhow::Result<i32> {
    if let JobCommand::Barrier = cmd {
        return Ok(0);
    }
    let result = async {
        let ctx = JobContext::connect(JobEnv::from_env()?).await?;
        let result = match &cmd {
            JobCommand::Exec { command } => exec::exec(&ctx, command).await,
            JobCommand::Concat => builtin::concat(&ctx).await.map(|()| 0),
            JobCommand::Cleanup => builtin::cleanup(&ctx).await.map(|()| 0),
            JobCommand::Barrier => Ok(0),
        };
        ctx.report_api_calls();
        result
    }
    .await;
    Ok(match result {
        Ok(code) => code,
        Err(e @ JobError { .. }) => {
            eprintln!("error: {}", e.message);
            e.exit_code()
        }
    })
}
