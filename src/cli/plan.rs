//! `batchfan plan SPEC --input URI`: sizing and job graph, nothing run.

use super::out::outln;
use std::sync::Arc;

use serde_json::json;

use super::{inputs, Output, RunInputArgs, StateArgs, UsageError};
use crate::{
    graph::{self, Role},
    objects::{dir::DirObjects, Objects},
    plan::{self, Sizing},
};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: RunInputArgs,
    #[command(flatten)]
    state: StateArgs,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let spec = inputs::load_spec(&args.run.spec)?;
    let params = inputs::resolve_params(&spec, &args.run.params)?;
    let objects = DirObjects::new(crate::backend::LocalLayout::new(&args.state.dir).buckets());
    let input = match &args.run.input {
        Some(raw) => Some(inputs::resolve_input(raw, &objects).await?),
        None => None,
    };
    let objects: Arc<dyn Objects> = Arc::new(objects);
    let units =
        plan::strategies::plan_units(&spec, input.as_ref().map(|i| &i.object), &params, objects.as_ref())
            .await
            .map_err(|e| UsageError(e.to_string()))?;
    let per_child =
        crate::run::planner::items_per_child(&spec, &params).map_err(|e| UsageError(e.to_string()))?;
    let sizing = Sizing::new(units.len() as u64, per_child, spec.max_array_size);
    let graph = graph::build(&spec, "rPLAN", &sizing).map_err(|e| UsageError(e.to_string()))?;
    let problems = graph::check_limits(&spec, &graph);
    match args.output {
        Output::Json => outln!("{}", json!({ "sizing": sizing, "graph": graph, "problems": problems })),
        Output::Text => {
            outln!(
                "{}: {} units, {} per child -> {} children per stage in {} shard(s)",
                spec.name,
                sizing.units,
                sizing.items_per_child,
                sizing.children,
                sizing.shards
            );
            for node in &graph.nodes {
                let size = node.array_size.map_or("plain".to_owned(), |n| format!("array {n}"));
                let deps: Vec<String> = node
                    .depends_on
                    .iter()
                    .map(|d| {
                        format!(
                            "{:?}{}",
                            d.kind,
                            d.node.as_deref().map(|n| format!(" {n}")).unwrap_or_default()
                        )
                    })
                    .collect();
                let what = match &node.role {
                    Role::Stage { stage, shard, .. } => {
                        format!("stage {} shard {shard}", spec.stages[*stage].name)
                    }
                    Role::Barrier { level, index } => format!("barrier {level}.{index}"),
                    Role::Aggregation => "aggregation".into(),
                    Role::Cleanup => "cleanup".into(),
                };
                outln!("  {:<40} {what:<24} {size:<12} after [{}]", node.name, deps.join(", "));
            }
            for p in &problems {
                eprintln!("limit: {p}");
            }
        }
    }
    Ok(if problems.is_empty() { 0 } else { super::EXIT_USAGE })
}
