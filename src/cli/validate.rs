//! `batchfan validate SPEC...`: every problem of each spec, and warnings for
//! what only AWS would refuse (vCPU/memory combinations Fargate does not run).

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
                outln!("{}: ok (pipeline {}, {} stage(s))", path.display(), spec.name, spec.stages.len());
                for problem in spec.compute_problems() {
                    eprintln!(
                        "{}: warning: {problem} (AWS refuses it with compute {:?}; local runs ignore it, \
                         or set compute = \"ec2\")",
                        path.display(),
                        spec.compute
                    );
                }
            }
            Err(errors) => {
                bad += 1;
                eprintln!("{errors}");
            }
        }
    }
    Ok(if bad == 0 { 0 } else { super::EXIT_USAGE })
}
