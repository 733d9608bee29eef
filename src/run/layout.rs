//! Where a run's objects live in its bucket.
//!
//! `runs/{pipeline}/{run}/` holds everything of one run: `{stage}/{index}` child
//! outputs, `rejects/{stage}/{index}` per-child rejects, and the aggregation's
//! `output` and `rejects`. Cleanup deletes everything but the last two.

use crate::objects::ObjectRef;

/// The prefix of every object of a run.
pub fn run_prefix(pipeline: &str, run_id: &str) -> String {
    format!("runs/{pipeline}/{run_id}/")
}

/// A child's output object.
pub fn child_output(bucket: &str, pipeline: &str, run_id: &str, stage: &str, index: u64) -> ObjectRef {
    ObjectRef::new(bucket, format!("{}{stage}/{index:010}", run_prefix(pipeline, run_id)))
}

/// A child's rejects object (e.g. malformed rows with their line numbers).
pub fn child_rejects(bucket: &str, pipeline: &str, run_id: &str, stage: &str, index: u64) -> ObjectRef {
    ObjectRef::new(bucket, format!("{}rejects/{stage}/{index:010}", run_prefix(pipeline, run_id)))
}

/// The run's final output, written by the aggregation.
pub fn run_output(bucket: &str, pipeline: &str, run_id: &str) -> ObjectRef {
    ObjectRef::new(bucket, format!("{}output", run_prefix(pipeline, run_id)))
}

/// All rejects of the run in one object, written by the aggregation.
pub fn run_rejects(bucket: &str, pipeline: &str, run_id: &str) -> ObjectRef {
    ObjectRef::new(bucket, format!("{}rejects.csv", run_prefix(pipeline, run_id)))
}

/// Whether `key` is a final product of the run (kept by cleanup).
pub fn is_final(pipeline: &str, run_id: &str, key: &str) -> bool {
    let prefix = run_prefix(pipeline, run_id);
    key.strip_prefix(&prefix).is_some_and(|rest| rest == "output" || rest == "rejects.csv")
}
