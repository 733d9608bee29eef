//! FANOUT stage B: reads A[i]'s hash, returns 2 × its first 8 hex digits.

use batchfan::{
    run::ChildResult,
    runtime::{run_job, JobContext, JobError},
};
use serde_json::Value;

fn main() {
    run_job(|ctx: JobContext| async move {
        let prev = ctx.previous_stage().await?;
        let a = ctx.result_of(&prev, ctx.index()).await?.ok_or_else(|| {
            JobError::permanent(format!("no result of stage {prev} for index {}", ctx.index()))
        })?;
        let hashes: Vec<&str> = match &a.value {
            Value::String(h) => vec![h.as_str()],
            Value::Array(hs) => hs.iter().filter_map(Value::as_str).collect(),
            other => return Err(JobError::permanent(format!("stage {prev} result {other} is not a hash"))),
        };
        let sum: u64 = hashes
            .iter()
            .map(|h| batchfan_jobs::fanout::stage_b(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| JobError::permanent(e.to_string()))?
            .into_iter()
            .sum();
        ctx.put_result(&ChildResult { value: sum.into(), items: hashes.len() as u64, ..Default::default() })
            .await
    })
}
