//! Jobs every pipeline can use: `concat` (aggregation), `cleanup`, `barrier`.

use std::collections::{BTreeMap, BTreeSet};

use tracing::info;

use super::{JobContext, JobError};
use crate::{
    objects::ObjectRef,
    run::{layout, ChildResult, RunStore},
};

/// What a pipeline's own aggregation changes in [`concat`]'s work.
#[derive(Debug, Clone, Default)]
pub struct Amendments {
    /// Child index → the object to use instead of that child's output.
    pub outputs: BTreeMap<u64, ObjectRef>,
    /// Items the aggregation itself rejected (its rejects objects are under
    /// the run's `rejects/` prefix, where [`concat`] gathers them).
    pub failed: u64,
}

/// Aggregation: concatenates the last stage's child outputs in child order
/// into the run's output, gathers every child's rejects into one object, and
/// fails the run when more items failed than the pipeline tolerates.
pub async fn concat(ctx: &JobContext) -> Result<(), JobError> {
    concat_amended(ctx, &Amendments::default()).await
}

/// [`concat`], with some child outputs replaced and more failed items.
pub async fn concat_amended(ctx: &JobContext, amend: &Amendments) -> Result<(), JobError> {
    let run = ctx.run().await?.clone();
    let children = run.sizing.map_or(0, |s| s.children);
    let store = RunStore::new(ctx.table(), &ctx.env.table);
    let mut totals = BTreeMap::new();
    for stage in &run.stages {
        let results = store.results(&run.run_id, stage).await?;
        let failed: u64 = results.iter().map(|(_, r)| r.failed).sum();
        let items: u64 = results.iter().map(|(_, r)| r.items).sum();
        totals.insert(stage.clone(), (items, failed, results));
    }
    let mut parts = Vec::new();
    if let Some(last) = run.stages.last() {
        let (_, _, results) = &totals[last];
        if results.len() as u64 != children {
            return Err(JobError::permanent(format!(
                "stage {last} stored {} results for {children} children: a child exited 0 without storing \
                 its result; run programs that do not use the batchfan runtime as \
                 `batchfan job exec -- PROGRAM`, or give the pipeline its own [aggregation]",
                results.len()
            )));
        }
        parts.extend(
            results.iter().filter_map(|(i, r)| amend.outputs.get(i).cloned().or_else(|| r.output.clone())),
        );
    }
    ctx.objects().concat(&parts, &run.output).await?;

    let prefix = format!("{}rejects/", layout::run_prefix(&run.pipeline, &run.run_id));
    let mut rejects = Vec::new();
    for meta in ctx.objects().list(&ctx.env.bucket, &prefix).await? {
        let obj = crate::objects::ObjectRef::new(&ctx.env.bucket, &meta.key);
        rejects.extend_from_slice(&ctx.objects().get(&obj).await?);
    }
    let rejects_ref = layout::run_rejects(&ctx.env.bucket, &run.pipeline, &run.run_id);
    if !rejects.is_empty() {
        ctx.objects().put(&rejects_ref, rejects).await?;
    }

    let total = run.stages.first().map_or(0, |s| totals[s].0);
    let failed: u64 = totals.values().map(|(_, f, _)| f).sum::<u64>() + amend.failed;
    let summary = ChildResult {
        value: serde_json::json!({ "stages": run.stages }),
        items: total,
        failed,
        output: Some(run.output.clone()),
    };
    store
        .update(&run.run_id, |r| {
            r.summary = Some(summary.clone());
            true
        })
        .await?;
    info!(run_id = %run.run_id, items = total, failed, output = %run.output, "aggregated");
    let pct = if total == 0 { 0.0 } else { failed as f64 * 100.0 / total as f64 };
    if pct > run.tolerated_failure_percent {
        return Err(JobError::permanent(format!(
            "{failed} of {total} items failed ({pct:.2}%), over the tolerated {}%: see {rejects_ref}",
            run.tolerated_failure_percent
        )));
    }
    Ok(())
}

/// Cleanup: deletes the run's scratch objects; keeps the output and rejects.
/// The run's rows expire on their own ([`crate::spec::Storage::scratch_days`]).
///
/// As the failure cleanup (`BATCHFAN_ROLE=failure-cleanup`, after a failure or
/// a cancel) it keeps what `batchfan retry` reuses — the work items, every
/// stored result and those children's objects — and deletes only the objects
/// of children that stored no result (partial writes of failed children).
pub async fn cleanup(ctx: &JobContext) -> Result<(), JobError> {
    let run = ctx.run().await?.clone();
    let store = RunStore::new(ctx.table(), &ctx.env.table);
    let prefix = layout::run_prefix(&run.pipeline, &run.run_id);
    if ctx.env.role == crate::run::monitor::ROLE_FAILURE_CLEANUP {
        let mut done = BTreeMap::new();
        for stage in &run.stages {
            let results = store.results(&run.run_id, stage).await?;
            done.insert(stage.clone(), results.into_iter().map(|(i, _)| i).collect::<BTreeSet<u64>>());
        }
        let mut objects = 0;
        for meta in ctx.objects().list(&ctx.env.bucket, &prefix).await? {
            let rest = meta.key.strip_prefix(&prefix).unwrap_or(&meta.key);
            let child = rest.strip_prefix("rejects/").unwrap_or(rest).split_once('/');
            let partial = child.is_some_and(|(stage, i)| {
                let i = i.parse::<u64>().ok();
                done.get(stage).is_some_and(|d| i.is_some_and(|i| !d.contains(&i)))
            });
            if partial {
                ctx.objects().delete(&ObjectRef::new(&ctx.env.bucket, &meta.key)).await?;
                objects += 1;
            }
        }
        let kept: usize = done.values().map(BTreeSet::len).sum();
        info!(run_id = %run.run_id, objects, kept, "failure cleanup: kept the stored results for a retry");
        return Ok(());
    }
    // The run's rows (work items, results, retry lists) are not deleted: they
    // expire ([storage] scratch_days; DynamoDB's TTL deletes them free of
    // charge, where a delete here costs a write unit a row).
    let mut objects = 0;
    for meta in ctx.objects().list(&ctx.env.bucket, &prefix).await? {
        if !layout::is_final(&run.pipeline, &run.run_id, &meta.key) {
            ctx.objects().delete(&ObjectRef::new(&ctx.env.bucket, &meta.key)).await?;
            objects += 1;
        }
    }
    info!(run_id = %run.run_id, objects, "cleaned up: the run's rows expire with [storage] scratch_days");
    Ok(())
}
