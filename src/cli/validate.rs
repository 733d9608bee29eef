//! `batchfan validate SPEC...`: every problem of each spec, and warnings for
//! what only AWS would refuse (vCPU/memory combinations Fargate does not run).
//! `--output json`: one document, `[{spec, ok, pipeline, stages, errors: [{line, col, message}], warnings}]`.

use super::out::outln;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pipeline specs (TOML).
    #[arg(required = true)]
    specs: Vec<PathBuf>,
    /// Print the findings as text (problems on stderr) or JSON (stdout).
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let mut bad = 0;
    let mut report: Vec<Value> = Vec::new();
    for path in &args.specs {
        match crate::spec::load(path) {
            Ok(spec) => {
                let warnings: Vec<String> = spec
                    .compute_problems()
                    .into_iter()
                    .map(|problem| {
                        format!(
                            "{problem} (AWS refuses it with compute {:?}; local runs ignore it, \
                             or set compute = \"ec2\")",
                            spec.compute
                        )
                    })
                    .collect();
                match args.output {
                    Output::Text => {
                        outln!(
                            "{}: ok (pipeline {}, {} stage(s))",
                            path.display(),
                            spec.name,
                            spec.stages.len()
                        );
                        for w in &warnings {
                            eprintln!("{}: warning: {w}", path.display());
                        }
                    }
                    Output::Json => report.push(json!({
                        "spec": path, "ok": true, "pipeline": spec.name, "stages": spec.stages.len(),
                        "errors": [], "warnings": warnings,
                    })),
                }
            }
            Err(errors) => {
                bad += 1;
                match args.output {
                    Output::Text => eprintln!("{errors}"),
                    Output::Json => {
                        let errors: Vec<Value> = errors
                            .0
                            .iter()
                            .map(|e| json!({ "line": e.line, "col": e.col, "message": e.message }))
                            .collect();
                        report.push(json!({ "spec": path, "ok": false, "errors": errors, "warnings": [] }));
                    }
                }
            }
        }
    }
    if args.output == Output::Json {
        outln!("{}", Value::Array(report));
    }
    Ok(if bad == 0 { 0 } else { super::EXIT_USAGE })
}
