//! `batchfan validate SPEC...`

use super::out::outln;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pipeline specs (TOML).
    #[arg(required = true)]
    specs: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let mut bad = 0;
    for path in &args.specs {
        match crate::spec::load(path) {
            Ok(spec) => {
                outln!("{}: ok (pipeline {}, {} stage(s))", path.display(), spec.name, spec.stages.len())
            }
            Err(errors) => {
                bad += 1;
                eprintln!("{errors}");
            }
        }
    }
    Ok(if bad == 0 { 0 } else { super::EXIT_USAGE })
}
