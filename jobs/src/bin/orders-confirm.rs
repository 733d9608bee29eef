//! Stage `confirm` of the `orders` pipeline: one child's record ranges →
//! Orders table rows, `OrderId,ConfirmationId` output, rejects.

batchfan_jobs::mimalloc_allocator!();

use batchfan::{
    plan::LineRange,
    run::ChildResult,
    runtime::{run_job, JobContext, JobError},
};
use batchfan_jobs::orders::{self, dedupe::IdList, Processed};

fn main() {
    run_job(|ctx: JobContext| async move { confirm(&ctx).await })
}

async fn confirm(ctx: &JobContext) -> Result<(), JobError> {
    let input = ctx
        .input()
        .await?
        .ok_or_else(|| JobError::permanent("the orders pipeline needs an input: run it with --input FILE"))?;
    let table = std::env::var("ORDERS_TABLE").unwrap_or_else(|_| orders::DEFAULT_TABLE.into());
    let write_rows = match std::env::var("ORDERS_WRITE_ROWS") {
        Ok(v) => {
            v.parse().map_err(|_| JobError::permanent(format!("ORDERS_WRITE_ROWS={v:?} is not a number")))?
        }
        Err(_) => orders::WRITE_ROWS,
    };
    // Off: no ID list for the aggregation, which then searches the outputs
    // for duplicates (the tests compare both ways).
    let id_list = match std::env::var("ORDERS_ID_LISTS").as_deref() {
        Ok("on") | Err(_) => true,
        Ok("off") => false,
        Ok(v) => return Err(JobError::permanent(format!("ORDERS_ID_LISTS={v:?} is neither on nor off"))),
    };
    let item = ctx.work_item().await?;
    let mut out = Processed::default();
    // Each chunk's rows are written once the next one is parsed; the last
    // chunk's are written while the output and the ID list are stored, so
    // the child works on them instead of waiting for the service's commit.
    let mut unwritten = None;
    for unit in item.units {
        let range: LineRange = serde_json::from_value(unit)
            .map_err(|e| JobError::permanent(format!("work item is not a line range: {e}")))?;
        let bytes = ctx.objects().get_range(&input, range.start..range.end).await?;
        let text = orders::text_of(&bytes);
        for (chunk, first_line) in orders::record_chunks(&text, range.line, write_rows) {
            orders::process(&ctx.env.run_id, chunk, first_line, &mut out);
            if let Some(rows) = unwritten.replace(out.take_rows()) {
                ctx.table().put_rows(&table, rows).await?;
            }
        }
    }
    let output = ctx.output_ref()?;
    let rows = async {
        match unwritten {
            Some(rows) => ctx.table().put_rows(&table, rows).await,
            None => Ok(()),
        }
    };
    let files = async {
        let ids = id_list.then(|| IdList::from_map(&out.seen).encode());
        ctx.objects().put(&output, out.output.into_bytes()).await?;
        if let Some(ids) = ids {
            let at = orders::ids_ref(
                &ctx.env.bucket,
                &ctx.env.pipeline,
                &ctx.env.run_id,
                ctx.stage()?,
                ctx.index(),
            );
            ctx.objects().put(&at, ids).await?;
        }
        if !out.rejects.is_empty() {
            ctx.objects().put(&ctx.rejects_ref()?, out.rejects.into_bytes()).await?;
        }
        Ok::<_, JobError>(())
    };
    let (written, stored) = tokio::join!(rows, files);
    written?;
    stored?;
    let result = ChildResult {
        value: serde_json::Value::Null,
        items: out.rows,
        failed: out.rejected,
        output: Some(output),
    };
    ctx.put_result(&result).await
}
