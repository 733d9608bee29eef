//! `batchfan tfvars SPEC [--out FILE] [--check]`: the Terraform module's spec
//! variables as `*.tfvars.json` (see `terraform/modules/pipeline`).

use super::out::out;
use std::path::PathBuf;

use super::UsageError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline spec (TOML).
    spec: PathBuf,
    /// Write the variables to this file (e.g. `pipeline.auto.tfvars.json`) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write nothing: exit 1 when FILE (--out) differs from a fresh render.
    #[arg(long, requires = "out")]
    check: bool,
}

/// Exit code of `--check` when the file is out of date.
pub const EXIT_STALE: i32 = 1;

pub fn run(args: Args) -> anyhow::Result<i32> {
    let spec = match crate::spec::load(&args.spec) {
        Ok(spec) => spec,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(super::EXIT_USAGE);
        }
    };
    let text = std::fs::read_to_string(&args.spec)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", args.spec.display())))?;
    let rendered = match crate::tfvars::render(&spec, &text) {
        Ok(r) => r,
        Err(errors) => {
            for e in errors {
                eprintln!("{}: {e}", args.spec.display());
            }
            return Ok(super::EXIT_USAGE);
        }
    };
    for note in &rendered.notes {
        eprintln!("note: {note}");
    }
    let json = rendered.to_json();
    let Some(out) = &args.out else {
        out!("{json}");
        return Ok(0);
    };
    if args.check {
        let current = std::fs::read_to_string(out).unwrap_or_default();
        if current == json {
            eprintln!("{}: up to date with {}", out.display(), args.spec.display());
            return Ok(0);
        }
        eprintln!(
            "{} is out of date with {}: run `batchfan tfvars {} --out {}`",
            out.display(),
            args.spec.display(),
            args.spec.display(),
            out.display()
        );
        return Ok(EXIT_STALE);
    }
    let tmp = out.with_extension("json.tmp");
    std::fs::write(&tmp, &json).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, out).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    eprintln!("wrote {} ({} variables)", out.display(), rendered.vars.len());
    Ok(0)
}
