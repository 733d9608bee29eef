//! AWS Batch's rules for a SubmitJob request, checked by every backend before
//! it submits: the local engine (which then checks its capacity too) and the
//! AWS adapter (so a request AWS would refuse fails with a clear message
//! before any call is made).

use super::{
    check_job_name, DependencyKind, SubmitJob, MAX_ARRAY_SIZE, MAX_DEPENDENCIES, MAX_OVERRIDE_CHARS,
    MAX_SUBMIT_BYTES, MIN_ARRAY_SIZE, MIN_TIMEOUT_SECS,
};
use crate::graph::limits::{aws_request_json, overrides_chars};

/// Checks everything about a request that needs no other job: name, array
/// size, dependencies, command, the container overrides' size (as AWS counts
/// it: the JSON of command and environment), the request's size (the JSON
/// body AWS receives), retry strategy, timeout and resources. `Err` names the
/// offending value and the fix.
pub fn check_submit(req: &SubmitJob) -> Result<(), String> {
    check_job_name(&req.job_name)?;
    if let Some(n) = req.array_size {
        if !(MIN_ARRAY_SIZE..=MAX_ARRAY_SIZE).contains(&n) {
            return Err(format!(
                "array size {n} is out of range: AWS Batch allows {MIN_ARRAY_SIZE} to {MAX_ARRAY_SIZE}; \
                 submit one item as a plain job (no array), pack more items per child, or shard the stage"
            ));
        }
    }
    check_dependencies(req)?;
    let container = &req.container;
    if !matches!(container.command.first(), Some(program) if !program.is_empty()) {
        return Err("container command is empty: give the program to run and its arguments".into());
    }
    let chars = overrides_chars(&container.command, &container.environment);
    if chars > MAX_OVERRIDE_CHARS {
        return Err(format!(
            "container command and environment are {chars} characters, over the AWS limit of \
             {MAX_OVERRIDE_CHARS}: pass pointers (run id, table, index), not data"
        ));
    }
    let bytes = serde_json::to_vec(&aws_request_json(req))
        .map_err(|e| format!("request cannot be serialised: {e}"))?
        .len();
    if bytes > MAX_SUBMIT_BYTES {
        return Err(format!(
            "request is {bytes} bytes, over the AWS SubmitJob limit of {MAX_SUBMIT_BYTES}: \
             pass pointers (run id, table, index), not data"
        ));
    }
    req.retry_strategy.check()?;
    if let Some(t) = req.timeout_seconds {
        if t < MIN_TIMEOUT_SECS {
            return Err(format!(
                "timeout {t} s is below the AWS minimum of {MIN_TIMEOUT_SECS} s: set timeout_seconds to {MIN_TIMEOUT_SECS} or more"
            ));
        }
    }
    if !(container.vcpus.is_finite() && container.vcpus > 0.0) {
        return Err(format!(
            "vcpus {} must be a positive number: set container.vcpus, e.g. 1 or 0.25",
            container.vcpus
        ));
    }
    if container.memory_mib == 0 {
        return Err("memory 0 MiB must be positive: set container.memory_mib".into());
    }
    Ok(())
}

fn check_dependencies(req: &SubmitJob) -> Result<(), String> {
    let n = req.depends_on.len();
    if n > MAX_DEPENDENCIES {
        return Err(format!(
            "{n} dependencies exceed the AWS limit of {MAX_DEPENDENCIES}: insert a barrier job that depends on some of them"
        ));
    }
    let mut sequential = 0;
    for dep in &req.depends_on {
        match (dep.kind, dep.job_id.as_deref()) {
            (DependencyKind::Sequential, Some(id)) => {
                return Err(format!("a SEQUENTIAL dependency takes no job id (got {id:?}): remove the job id"))
            }
            (DependencyKind::Sequential, None) if req.array_size.is_none() => {
                return Err("a SEQUENTIAL dependency needs an array job: set array_size, or drop the dependency".into())
            }
            (DependencyKind::Sequential, None) => sequential += 1,
            (kind, None) => return Err(format!("a {kind:?} dependency needs a job id: set job_id")),
            (DependencyKind::NToN, Some(id)) if req.array_size.is_none() => {
                return Err(format!(
                    "N_TO_N dependency on {id} needs this job to be an array job of the same size: set array_size"
                ))
            }
            (_, Some(_)) => {}
        }
    }
    if sequential > 1 {
        return Err(format!("{sequential} SEQUENTIAL dependencies given: give at most one"));
    }
    Ok(())
}
