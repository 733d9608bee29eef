//! `batchfan completions SHELL`: the shell completion script for bash, zsh,
//! fish (or elvish, PowerShell), generated from the command line's own
//! definition, so that it never lags behind it. The internal `job` command is
//! hidden and left out.

use clap::CommandFactory;

use super::{out::out, Cli};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell the script is for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "batchfan", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(0)
}
