//! Planner strategies (being built).
use std::collections::BTreeMap;
use crate::{objects::{ObjectRef, Objects}, spec::PipelineSpec};
use super::PlanError;
/// stub
pub async fn plan_units(_spec: &PipelineSpec, _input: Option<&ObjectRef>, _params: &BTreeMap<String, String>, _objects: &dyn Objects) -> Result<Vec<serde_json::Value>, PlanError> { Ok(vec![]) }
