//! FANOUT aggregation: sums every result of the last stage into the run's output.

use batchfan::{
    run::RunStore,
    runtime::{run_job, JobContext, JobError},
};

fn main() {
    run_job(|ctx: JobContext| async move {
        let run = ctx.run().await?.clone();
        let last =
            run.stages.last().cloned().ok_or_else(|| JobError::permanent("the pipeline has no stage"))?;
        let store = RunStore::new(ctx.table(), &ctx.env.table);
        let results = store.results(&run.run_id, &last).await?;
        let children = run.sizing.map_or(0, |s| s.children);
        if results.len() as u64 != children {
            return Err(JobError::permanent(format!(
                "stage {last} has {} results for {children} children",
                results.len()
            )));
        }
        let sum: u64 = results.iter().filter_map(|(_, r)| r.value.as_u64()).sum();
        ctx.objects().put(&run.output, format!("{sum}\n").into_bytes()).await?;
        Ok(())
    })
}
