//! Graph building (being built).
use super::JobGraph;
use crate::{plan::Sizing, spec::PipelineSpec};
/// Errors building a graph.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The graph would break an AWS limit.
    #[error("{0}")]
    Limit(String),
}
/// Builds the job graph of a run.
pub fn build(_spec: &PipelineSpec, _run_id: &str, _sizing: &Sizing) -> Result<JobGraph, GraphError> {
    Err(GraphError::Limit("todo".into()))
}
