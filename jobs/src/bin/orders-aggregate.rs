//! Aggregation of the `orders` pipeline: `batchfan job concat`, after
//! rejecting the later copies of Order IDs that several children confirmed
//! (see `batchfan_jobs::orders::dedupe`).

batchfan_jobs::mimalloc_allocator!();

use std::collections::BTreeMap;

use batchfan::{
    error::PortError,
    objects::ObjectRef,
    plan::LineRange,
    run::{layout, ChildResult, RunStore},
    runtime::{
        builtin::{concat, concat_amended, Amendments},
        run_job, JobContext, JobError,
    },
};
use batchfan_jobs::orders::{
    self,
    dedupe::{without_ids, DuplicateFinder, IdList},
    Found,
};

fn main() {
    run_job(|ctx: JobContext| async move { aggregate(&ctx).await })
}

/// The ID lists of the children that have an output, in child order; `None`
/// when one is missing, damaged, or does not count the child's accepted rows
/// (the outputs are then searched instead).
async fn id_lists(
    ctx: &JobContext,
    run_id: &str,
    stage: &str,
    results: &[(u64, ChildResult)],
) -> Result<Option<Vec<(u64, IdList)>>, JobError> {
    let mut lists = Vec::with_capacity(results.len());
    for (index, result) in results {
        if result.output.is_none() {
            continue;
        }
        let at = orders::ids_ref(&ctx.env.bucket, &ctx.env.pipeline, run_id, stage, *index);
        let bytes = match ctx.objects().get(&at).await {
            Ok(bytes) => bytes,
            Err(PortError::NotFound(_)) => {
                eprintln!("child {index} stored no ID list: looking for duplicates in the outputs");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let accepted = result.items.saturating_sub(result.failed);
        match IdList::decode(&bytes) {
            Ok(list) if list.len() as u64 == accepted => lists.push((*index, list)),
            Ok(list) => {
                eprintln!(
                    "child {index}'s ID list holds {} IDs for {accepted} accepted rows: looking for duplicates in the outputs",
                    list.len()
                );
                return Ok(None);
            }
            Err(e) => {
                eprintln!(
                    "child {index}'s ID list {at} is damaged ({e}): looking for duplicates in the outputs"
                );
                return Ok(None);
            }
        }
    }
    Ok(Some(lists))
}

async fn aggregate(ctx: &JobContext) -> Result<(), JobError> {
    let run = ctx.run().await?.clone();
    let Some(stage) = run.stages.last().cloned() else { return concat(ctx).await };
    let store = RunStore::new(ctx.table(), &ctx.env.table);
    let results = store.results(&run.run_id, &stage).await?;
    // Room for the rows the children report (a result is the child's word:
    // capped, past which the maps grow as they are fed).
    let rows: u64 = results.iter().map(|(_, r)| r.items).fold(0, u64::saturating_add);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let finder = match id_lists(ctx, &run.run_id, &stage, &results).await? {
        Some(lists) => DuplicateFinder::find_sorted(&lists, threads),
        None => {
            let mut outputs = Vec::with_capacity(results.len());
            for (index, result) in &results {
                if let Some(output) = &result.output {
                    outputs.push((*index, ctx.objects().get(output).await?));
                }
            }
            DuplicateFinder::find(&outputs, rows.min(10_000_000) as usize, threads)
        }
    };
    if finder.found.is_empty() {
        return concat(ctx).await;
    }
    let input =
        run.trigger.input.clone().ok_or_else(|| {
            JobError::permanent("the orders pipeline needs an input: run it with --input FILE")
        })?;
    // Read again the ranges of the children involved, for lines, records and rows.
    let mut found: BTreeMap<u64, BTreeMap<String, Found>> = BTreeMap::new();
    for (child, ids) in finder.wanted() {
        let item = store.work_item(&run.run_id, child).await?.ok_or_else(|| {
            JobError::permanent(format!("work item {child} of run {} is gone: run it again", run.run_id))
        })?;
        let mut rows = BTreeMap::new();
        for unit in item.units {
            let range: LineRange = serde_json::from_value(unit)
                .map_err(|e| JobError::permanent(format!("work item is not a line range: {e}")))?;
            let bytes = ctx.objects().get_range(&input, range.start..range.end).await?;
            orders::find_rows(&orders::text_of(&bytes), range.line, &ids, &mut rows);
        }
        found.insert(child, rows);
    }
    let lookup = |child: u64, id: &str| {
        found.get(&child).and_then(|rows| rows.get(id)).ok_or_else(|| {
            JobError::permanent(format!(
                "order id {id} is no longer in child {child}'s range: the input changed"
            ))
        })
    };
    let table = std::env::var("ORDERS_TABLE").unwrap_or_else(|_| orders::DEFAULT_TABLE.into());
    let mut winners = orders::new_rows();
    let mut won = std::collections::BTreeSet::new();
    let mut amend = Amendments::default();
    for (child, dups) in finder.by_child() {
        let mut rejects = Vec::new();
        for d in &dups {
            let later = lookup(child, &d.order_id)?;
            let first = lookup(d.first_child, &d.order_id)?;
            rejects.push((later.line, &d.order_id, first.line, &later.record));
            if won.insert(d.order_id.as_str()) {
                orders::push_fields(&mut winners, &run.run_id, &first.fields).map_err(JobError::permanent)?;
            }
        }
        rejects.sort();
        let mut text = String::new();
        for (line, id, first, record) in rejects {
            orders::duplicate_reject(&mut text, id, line, first, record);
        }
        let own = layout::child_rejects(&ctx.env.bucket, &run.pipeline, &run.run_id, &stage, child);
        let rejects_ref = ObjectRef::new(&own.bucket, format!("{}-duplicates", own.key));
        ctx.objects().put(&rejects_ref, text.into_bytes()).await?;

        let ids = dups.iter().map(|d| d.order_id.as_str()).collect();
        let output = results.iter().find(|(i, _)| *i == child).and_then(|(_, r)| r.output.clone());
        let output = output.ok_or_else(|| JobError::permanent(format!("child {child} has no output")))?;
        let kept = without_ids(&ctx.objects().get(&output).await?, &ids);
        let kept_ref = ObjectRef::new(
            &ctx.env.bucket,
            format!("{}dedupe/{stage}/{child:010}", layout::run_prefix(&run.pipeline, &run.run_id)),
        );
        ctx.objects().put(&kept_ref, kept).await?;
        amend.outputs.insert(child, kept_ref);
        amend.failed += dups.len() as u64;
    }
    // The first copies win in the table too, whatever order the children ran in.
    ctx.table().put_rows(&table, winners).await?;
    concat_amended(ctx, &amend).await
}
