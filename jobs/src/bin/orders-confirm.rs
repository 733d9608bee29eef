//! Stage `confirm` of the `orders` pipeline: one child's record ranges →
//! Orders table rows, `OrderId,ConfirmationId` output, rejects.

batchfan_jobs::mimalloc_allocator!();

use batchfan::{
    plan::LineRange,
    run::ChildResult,
    runtime::{run_job, JobContext, JobError},
};
use batchfan_jobs::orders::{self, Processed};

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
    let item = ctx.work_item().await?;
    let mut out = Processed::default();
    for unit in item.units {
        let range: LineRange = serde_json::from_value(unit)
            .map_err(|e| JobError::permanent(format!("work item is not a line range: {e}")))?;
        let bytes = ctx.objects().get_range(&input, range.start..range.end).await?;
        let text = String::from_utf8_lossy(&bytes);
        for (chunk, first_line) in orders::record_chunks(&text, range.line, write_rows) {
            orders::process(&ctx.env.run_id, chunk, first_line, &mut out);
            ctx.table().put_rows(&table, out.take_rows()).await?;
        }
    }
    let output = ctx.output_ref()?;
    ctx.objects().put(&output, out.output.into_bytes()).await?;
    if !out.rejects.is_empty() {
        ctx.objects().put(&ctx.rejects_ref()?, out.rejects.into_bytes()).await?;
    }
    let result = ChildResult {
        value: serde_json::Value::Null,
        items: out.rows,
        failed: out.rejected,
        output: Some(output),
    };
    ctx.put_result(&result).await
}
