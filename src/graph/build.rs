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
/// Checks AWS limits (stub).
pub fn check_limits(_spec: &PipelineSpec, _graph: &JobGraph) -> Vec<String> { vec![] }
impl super::Node {
    /// Converts to a SubmitJob (stub).
    pub fn to_submit(&self, _spec: &PipelineSpec, _resolve: impl Fn(&str) -> Option<String>) -> Result<crate::batch::SubmitJob, GraphError> { Err(GraphError::Limit("todo".into())) }
}
