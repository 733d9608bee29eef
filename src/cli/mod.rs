//! The `batchfan` command line. Data goes to stdout (`--output json` for
//! scripts), progress and diagnostics to stderr.
//!
//! Exit codes: 0 success; 1 the run failed; 2 bad usage, spec or input (every
//! argument is checked before any work, see [`limits`]); 3 any other error.
//! A reader of stdout that leaves early ends the command quietly with its
//! normal exit code ([`out`]).

// Every module below prints diagnostics with this `eprintln!` (it shadows
// std's): a closed stderr drops the line instead of panicking ([`out::err_fmt`]).
macro_rules! eprintln {
    () => {
        $crate::cli::out::err_fmt(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::err_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod alerts;
mod aws_args;
mod batch_api;
mod cancel;
mod completions;
mod cost;
pub(crate) mod out;

mod job;
mod limits;
mod logs;
mod logs_source;
mod plan;
mod private;
pub(crate) mod progress;
mod retry;
mod run;
mod run_aws;
mod serve;
mod status;
mod tfvars;
mod trigger;
mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

// What the user asks for, checked below the CLI (serve's API checks the same).
use crate::inputs;
pub use crate::inputs::{parse_params, UsageError};

/// Exit code: a run ended FAILED.
pub const EXIT_RUN_FAILED: i32 = 1;
/// Exit code: bad usage, spec or input.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: anything else went wrong.
pub const EXIT_ERROR: i32 = 3;

/// Batch pipelines on AWS Batch with SNS fan-out — and the same pipelines on this machine.
#[derive(Debug, Parser)]
#[command(name = "batchfan", version, about)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// Options shared by commands that use the local state directory.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// The local backend's state directory.
    #[arg(long = "state", env = "BATCHFAN_STATE", default_value = ".batchfan")]
    pub dir: PathBuf,
}

/// A pipeline spec, the run's input and its parameters (`run` and `plan`).
#[derive(Debug, Clone, clap::Args)]
pub struct RunInputArgs {
    /// The pipeline spec (TOML).
    pub spec: PathBuf,
    /// The run's input: a local file, or s3://bucket/key in the local buckets.
    #[arg(long)]
    pub input: Option<String>,
    /// A run parameter, name=value (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check pipeline specs: every problem with file:line:col and its fix.
    Validate(validate::Args),
    /// Size a run and show its job graph, without running anything.
    Plan(plan::Args),
    /// Run a pipeline and wait for it: on the embedded backend (re-running the same command resumes the run), or with --backend aws on AWS Batch.
    Run(run::Args),
    /// Serve pipelines: cron schedules, object puts, signed webhooks, a status page with Run buttons.
    Serve(serve::Args),
    /// Start a run through the running `batchfan serve` (or here, when none is up).
    Trigger(trigger::Args),
    /// Show runs, or one run with its stages.
    Status(status::Args),
    /// Stop a run: its jobs are cancelled or terminated, cleanup runs, it ends CANCELLED.
    Cancel(cancel::Args),
    /// Run again only what did not succeed in a FAILED or CANCELLED run (same run id, next attempt).
    Retry(cancel::Args),
    /// Print the log of one child of a run.
    Logs(logs::Args),
    /// List the alerts published on a pipeline's alerts topic.
    Alerts(alerts::Args),
    /// Render the Terraform module's variables from a spec (`*.tfvars.json`).
    Tfvars(tfvars::Args),
    /// Price one run's orchestration on AWS, beside Step Functions and one SubmitJob per item.
    Cost(cost::Args),
    /// Serve the AWS Batch API over the local engine (SigV4 is not checked).
    BatchApi(batch_api::Args),
    /// Print a shell completion script: `batchfan completions bash > /etc/bash_completion.d/batchfan`.
    Completions(completions::Args),
    /// Commands that run inside jobs (set up by batchfan; not for interactive use).
    #[command(subcommand, hide = true)]
    Job(job::JobCommand),
}

/// Parses the command line, runs the command, and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    // A server reports what it does (triggers, runs) without -v.
    let verbose = if matches!(cli.command, Command::Serve(_) | Command::BatchApi(_)) {
        cli.verbose.max(1)
    } else {
        cli.verbose
    };
    init_tracing(verbose);
    // Commands that write into the state directory (or run jobs that do); not the ones
    // that write files for the user to share (tfvars) or write nothing.
    if !matches!(
        cli.command,
        Command::Validate(_) | Command::Tfvars(_) | Command::Cost(_) | Command::Completions(_)
    ) {
        private::owner_only_files();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_ERROR;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Validate(a) => validate::run(a),
            Command::Plan(a) => plan::run(a).await,
            Command::Run(a) => run::run(a).await,
            Command::Serve(a) => serve::run(a).await,
            Command::Trigger(a) => trigger::run(a).await,
            Command::Status(a) => status::run(a).await,
            Command::Cancel(a) => cancel::run(a).await,
            Command::Retry(a) => retry::run(a).await,
            Command::Logs(a) => logs::run(a).await,
            Command::Alerts(a) => alerts::run(a).await,
            Command::Tfvars(a) => tfvars::run(a),
            Command::Cost(a) => cost::run(a),
            Command::BatchApi(a) => batch_api::run(a).await,
            Command::Completions(a) => completions::run(a),
            Command::Job(c) => job::run(c).await,
        }
    });
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", chain(e.as_ref()));
            match e.downcast_ref::<UsageError>() {
                Some(_) => EXIT_USAGE,
                None => EXIT_ERROR,
            }
        }
    };
    // A reader that left early (`| head -1`) is not an error; a failed write is.
    match out::finish() {
        Some(e) if code == 0 => {
            eprintln!("error: cannot write to stdout: {e}");
            EXIT_ERROR
        }
        _ => code,
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATCHFAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !progress::no_color();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// An error and its causes on one line, `outer: cause: ...`, each cause
/// left out when the line already has its words (a [`PortError`] says its
/// backend error's words and keeps that error as its source; many messages
/// say the cause, then the fix).
///
/// [`PortError`]: crate::error::PortError
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let words = cause.to_string();
        if !line.contains(&words) {
            line.push_str(": ");
            line.push_str(&words);
        }
        next = cause.source();
    }
    line
}

#[cfg(test)]
mod chain_tests {
    use super::chain;
    use crate::error::PortError;

    #[test]
    fn a_cause_is_printed_once_whether_or_not_the_message_already_says_it() {
        let io = || std::io::Error::other("disk full");
        let said = PortError::backend(format!("io: {}", io())).caused_by(io());
        assert_eq!(chain(&said), "backend error: io: disk full");
        let unsaid = PortError::backend("cannot store the result").caused_by(io());
        assert_eq!(chain(&unsaid), "backend error: cannot store the result: disk full");
        let wrapped = anyhow::Error::new(said).context("run r1");
        assert_eq!(chain(wrapped.as_ref()), "run r1: backend error: io: disk full");
        let secret = crate::serve::app::read_secret(
            "p",
            Some(&crate::spec::SecretSource::File("/nonexistent/s".into())),
        )
        .unwrap_err();
        let line = chain(&secret);
        assert!(line.ends_with("create the file or fix secret_file"), "{line}");
        assert_eq!(line.matches("No such file").count(), 1, "{line}");
    }
}
