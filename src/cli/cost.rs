//! `batchfan cost SPEC --items N`: the orchestration cost of one run on AWS,
//! beside Step Functions Standard and one SubmitJob per work item.

use super::out::{out, outln};
use std::path::PathBuf;

use super::{inputs, Output, UsageError};
use crate::cost::{self, Arch, CostInput, Estimate};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline spec (TOML).
    spec: PathBuf,
    /// Planner units in the run (rows ranges, objects, numbers).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    items: u64,
    /// Units per child (default: the spec's first stage's `items_per_child`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    items_per_child: Option<u64>,
    /// Memory of each Lambda, MB (the Terraform module's `lambda_memory_mb`).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(128..=10240))]
    lambda_memory_mb: u32,
    /// CPU architecture of the Lambdas (the module's `lambda_architecture`).
    #[arg(long, value_enum, default_value = "arm64")]
    arch: Arch,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let spec = inputs::load_spec(&args.spec)?;
    let input = CostInput {
        items: args.items,
        items_per_child: args.items_per_child,
        lambda_memory_mb: args.lambda_memory_mb,
        arch: args.arch,
    };
    let estimate = cost::estimate(&spec, &input).map_err(|e| UsageError(e.to_string()))?;
    match args.output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&estimate)?),
        Output::Text => out!("{}", render(&estimate)),
    }
    Ok(0)
}

/// The estimate as text: the sizing, each design's priced lines, the calls by phase.
pub fn render(e: &Estimate) -> String {
    let s = &e.sizing;
    let units =
        if e.items == s.units { String::new() } else { format!(" → {} planner unit(s)", group(s.units)) };
    let mut out = format!(
        "{}: {} item(s){units} → {} work item(s) ({} unit(s) per child) in {} shard(s) × {} stage(s) = {} Batch job(s)\n\n",
        e.pipeline,
        group(e.items),
        group(s.children),
        s.items_per_child,
        s.shards,
        e.stages,
        e.jobs
    );
    for d in &e.designs {
        out.push_str(&format!("{}\n", d.name));
        for l in &d.lines {
            out.push_str(&format!(
                "  {:<62} {:>14} × {:<14} {:>12}\n",
                l.what,
                quantity(l.quantity),
                format!("${:.3e}", l.unit_usd),
                usd(l.usd)
            ));
        }
        out.push_str(&format!("  {:<62} {:>44}\n", "total", usd(d.usd)));
        for n in &d.notes {
            out.push_str(&format!("  ({n})\n"));
        }
        out.push('\n');
    }
    out.push_str("AWS API calls of a successful run, by phase (batchfan)\n");
    for p in &e.phases {
        let calls: Vec<String> = p.calls.iter().map(|(k, v)| format!("{k}={}", group(*v))).collect();
        out.push_str(&format!("  {}: {}\n", p.name, calls.join(" ")));
    }
    out.push_str(&format!("\nExcluded: {}.\n", e.excluded));
    out.push_str("Assumptions:\n");
    for a in &e.assumptions {
        out.push_str(&format!("  - {a}\n"));
    }
    out.push_str(&format!("Prices: {}.\n", e.prices));
    out
}

fn usd(v: f64) -> String {
    if v >= 1.0 {
        format!("${v:.2}")
    } else if v >= 0.01 {
        format!("${v:.4}")
    } else {
        format!("${v:.7}")
    }
}

fn quantity(q: f64) -> String {
    if q.fract() == 0.0 && q < 1e15 {
        group(q as u64)
    } else {
        format!("{q:.3}")
    }
}

/// 1234567 → "1,234,567".
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::group;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
    }
}
