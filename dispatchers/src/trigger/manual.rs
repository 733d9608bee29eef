//! Manual runs: `aws lambda invoke --payload '{"pipeline": ..., ...}'`.

use std::collections::BTreeMap;

use batchfan::{
    objects::ObjectRef,
    run::{TriggerEvent, TriggerSource},
    spec::PipelineSpec,
};
use serde::{Deserialize, Serialize};

use crate::DispatchError;

/// The payload of a manual invoke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualRun {
    /// The pipeline: must be this deployment's.
    pub pipeline: String,
    /// The request's idempotency key: the same id is the same run. Default:
    /// the Lambda invocation id (stable across Lambda's own retries).
    #[serde(default)]
    pub request_id: Option<String>,
    /// Run parameters (declared under `[params]`, or the planner's).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The input, `s3://bucket/key`.
    #[serde(default)]
    pub input: Option<String>,
}

/// The trigger a manual invoke starts.
pub fn trigger_of(
    spec: &PipelineSpec,
    run: ManualRun,
    invocation_id: &str,
) -> Result<TriggerEvent, DispatchError> {
    if run.pipeline != spec.name {
        return Err(DispatchError::BadEvent(format!(
            "this function runs pipeline {:?}, not {:?}: invoke that pipeline's trigger function",
            spec.name, run.pipeline
        )));
    }
    if !spec.triggers.manual {
        return Err(DispatchError::BadEvent(format!(
            "manual runs are off for pipeline {}: set [triggers] manual = true",
            spec.name
        )));
    }
    let input = match run.input {
        Some(uri) => Some(
            uri.parse::<ObjectRef>().map_err(|e| DispatchError::BadEvent(format!("input {uri:?}: {e}")))?,
        ),
        None => None,
    };
    let id = match run.request_id {
        Some(id) => {
            batchfan::trigger::check_request_id(&id).map_err(|e| DispatchError::BadEvent(e.to_string()))?;
            id
        }
        None => invocation_id.to_owned(),
    };
    Ok(TriggerEvent {
        pipeline: spec.name.clone(),
        source: TriggerSource::Manual,
        idempotency_key: format!("request:{id}"),
        input,
        params: run.params,
    })
}
