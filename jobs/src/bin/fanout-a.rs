//! FANOUT stage A: result = 1000 rounds of sha256 over "item-<i>".

use batchfan::{
    run::ChildResult,
    runtime::{run_job, JobContext, JobError},
};

fn main() {
    run_job(|ctx: JobContext| async move {
        let item = ctx.work_item().await?;
        let hashes: Vec<String> = item
            .units
            .iter()
            .map(|u| u.as_u64().map(batchfan_jobs::fanout::stage_a))
            .collect::<Option<_>>()
            .ok_or_else(|| JobError::permanent("fanout units must be integers: use the range planner"))?;
        let value = if hashes.len() == 1 { hashes[0].clone().into() } else { hashes.clone().into() };
        ctx.put_result(&ChildResult { value, items: hashes.len() as u64, ..Default::default() }).await
    })
}
