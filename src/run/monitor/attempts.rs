//! The monitor and retry attempts: events of an earlier attempt's jobs are
//! ignored (a late FAILED of attempt 1 must not end attempt 2), and a failed
//! child of a retry array is reported by its global index, read from the
//! attempt's rerun list.

use super::Monitor;
use crate::{
    batch::JobStateChange,
    run::{retry, RunError, RunRecord},
    spec::PipelineSpec,
};

impl Monitor {
    /// Whether `ev` is about a job of an attempt the run has moved past.
    pub(super) async fn of_earlier_attempt(
        &self,
        spec: &PipelineSpec,
        run_id: &str,
        ev: &JobStateChange,
    ) -> Result<bool, RunError> {
        let attempt = ev.tags.get(retry::TAG_ATTEMPT).and_then(|a| a.parse::<u32>().ok()).unwrap_or(1);
        let Some(record) = self.store(spec).get(run_id).await? else { return Ok(false) };
        Ok(attempt < record.attempt())
    }

    /// The global index of child `array_index` of retry job `job_name`, if it is one.
    pub(super) async fn retry_index(
        &self,
        spec: &PipelineSpec,
        record: &RunRecord,
        job_name: &str,
        array_index: Option<u32>,
    ) -> Result<Option<u64>, RunError> {
        let Some(plan) = record.retry.as_ref().filter(|p| p.attempt == record.attempt()) else {
            return Ok(None);
        };
        let Some(shard) = plan.shards.iter().find(|s| s.name == job_name) else { return Ok(None) };
        let Some(stage) = spec.stages.get(shard.stage) else { return Ok(None) };
        let position = shard.first + u64::from(array_index.unwrap_or(0));
        let table = self.ports.table.as_ref();
        let index = retry::global_index(
            table,
            &spec.storage.table,
            &record.run_id,
            plan.attempt,
            &stage.name,
            position,
        )
        .await?;
        Ok(index)
    }
}
