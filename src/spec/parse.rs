//! Spec parsing (being built).
use super::PipelineSpec;
use std::path::Path;
/// One problem in a spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}
/// Every problem in a spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct SpecErrors(pub Vec<SpecError>);
/// Loads and validates a spec file.
pub fn load(_path: &Path) -> Result<PipelineSpec, SpecErrors> {
    Err(SpecErrors(vec![]))
}
/// Loads and validates spec text; `file` names it in errors; `base_dir` resolves relative paths.
pub fn load_str(_text: &str, _file: &str, _base_dir: &Path) -> Result<PipelineSpec, SpecErrors> {
    Err(SpecErrors(vec![]))
}
