//! AWS Batch's rules for a SubmitJob request, checked by every backend before
//! it submits: the local engine (which then checks its capacity too) and the
//! AWS adapter (so a request AWS would refuse fails with a clear message
//! before any call is made). Also the rules shared with the spec and the
//! Batch API: evaluateOnExit patterns' character sets ([`on_exit_pattern`])
//! and Fargate's vCPU/memory combinations ([`fargate_resources`]).

use std::collections::BTreeMap;

use super::{
    check_job_name, DependencyKind, SubmitJob, MAX_ARRAY_SIZE, MAX_DEPENDENCIES, MAX_OVERRIDE_CHARS,
    MAX_SUBMIT_BYTES, MIN_ARRAY_SIZE, MIN_TIMEOUT_SECS,
};
use serde::Serialize;

use crate::error::{PortError, PortResult};
use serde_json::{json, Value};

/// Characters of a job's container overrides as AWS counts them: the JSON of
/// its command and environment (`[{"name":..,"value":..}]`).
pub fn overrides_chars(command: &[String], env: &BTreeMap<String, String>) -> usize {
    #[derive(Serialize)]
    struct Pair<'a> {
        name: &'a str,
        value: &'a str,
    }
    #[derive(Serialize)]
    struct Overrides<'a> {
        command: &'a [String],
        environment: Vec<Pair<'a>>,
    }
    let environment = env.iter().map(|(name, value)| Pair { name, value }).collect();
    serde_json::to_string(&Overrides { command, environment }).map_or(usize::MAX, |s| s.chars().count())
}

/// The SubmitJob request body as the AWS API receives it (`containerOverrides`
/// with `environment` as name/value pairs and `resourceRequirements`), to size it.
pub fn aws_request_json(request: &SubmitJob) -> Value {
    let environment: Vec<Value> =
        request.container.environment.iter().map(|(k, v)| json!({ "name": k, "value": v })).collect();
    let mut body = json!({
        "jobName": request.job_name,
        "jobQueue": request.job_queue,
        "jobDefinition": request.job_definition,
        "dependsOn": request.depends_on,
        "containerOverrides": {
            "command": request.container.command,
            "environment": environment,
            "resourceRequirements": [
                { "type": "VCPU", "value": request.container.vcpus.to_string() },
                { "type": "MEMORY", "value": request.container.memory_mib.to_string() },
            ],
        },
        "retryStrategy": request.retry_strategy,
        "tags": request.tags,
        "propagateTags": true,
    });
    if let Some(size) = request.array_size {
        body["arrayProperties"] = json!({ "size": size });
    }
    if let Some(secs) = request.timeout_seconds {
        body["timeout"] = json!({ "attemptDurationSeconds": secs });
    }
    body
}

/// Checks everything about a request that needs no other job: name, array
/// size, dependencies, command, the container overrides' size (as AWS counts
/// it: the JSON of command and environment), the request's size (the JSON
/// body AWS receives), retry strategy, timeout and resources. `Err` names the
/// offending value and the fix.
pub fn check_submit(req: &SubmitJob) -> PortResult<()> {
    check_job_name(&req.job_name)?;
    if let Some(n) = req.array_size {
        if !(MIN_ARRAY_SIZE..=MAX_ARRAY_SIZE).contains(&n) {
            return Err(PortError::invalid(format!(
                "array size {n} is out of range: AWS Batch allows {MIN_ARRAY_SIZE} to {MAX_ARRAY_SIZE}; \
                 submit one item as a plain job (no array), pack more items per child, or shard the stage"
            )));
        }
    }
    check_dependencies(req)?;
    let container = &req.container;
    if !matches!(container.command.first(), Some(program) if !program.is_empty()) {
        return Err(PortError::invalid(
            "container command is empty: give the program to run and its arguments",
        ));
    }
    let chars = overrides_chars(&container.command, &container.environment);
    if chars > MAX_OVERRIDE_CHARS {
        return Err(PortError::invalid(format!(
            "container command and environment are {chars} characters, over the AWS limit of \
             {MAX_OVERRIDE_CHARS}: pass pointers (run id, table, index), not data"
        )));
    }
    let bytes = serde_json::to_vec(&aws_request_json(req))
        .map_err(|e| PortError::invalid(format!("request cannot be serialised: {e}")).caused_by(e))?
        .len();
    if bytes > MAX_SUBMIT_BYTES {
        return Err(PortError::invalid(format!(
            "request is {bytes} bytes, over the AWS SubmitJob limit of {MAX_SUBMIT_BYTES}: \
             pass pointers (run id, table, index), not data"
        )));
    }
    req.retry_strategy.check()?;
    if let Some(t) = req.timeout_seconds {
        if t < MIN_TIMEOUT_SECS {
            return Err(PortError::invalid(format!(
                "timeout {t} s is below the AWS minimum of {MIN_TIMEOUT_SECS} s: set timeout_seconds to {MIN_TIMEOUT_SECS} or more"
            )));
        }
    }
    if !(container.vcpus.is_finite() && container.vcpus > 0.0) {
        return Err(PortError::invalid(format!(
            "vcpus {} must be a positive number: set container.vcpus, e.g. 1 or 0.25",
            container.vcpus
        )));
    }
    if container.memory_mib == 0 {
        return Err(PortError::invalid("memory 0 MiB must be positive: set container.memory_mib"));
    }
    Ok(())
}

fn check_dependencies(req: &SubmitJob) -> PortResult<()> {
    let n = req.depends_on.len();
    if n > MAX_DEPENDENCIES {
        return Err(PortError::invalid(format!(
            "{n} dependencies exceed the AWS limit of {MAX_DEPENDENCIES}: insert a barrier job that depends on some of them"
        )));
    }
    let mut sequential = 0;
    for dep in &req.depends_on {
        match (dep.kind, dep.job_id.as_deref()) {
            (DependencyKind::Sequential, Some(id)) => {
                return Err(PortError::invalid(format!("a SEQUENTIAL dependency takes no job id (got {id:?}): remove the job id")))
            }
            (DependencyKind::Sequential, None) if req.array_size.is_none() => {
                return Err(PortError::invalid("a SEQUENTIAL dependency needs an array job: set array_size, or drop the dependency"))
            }
            (DependencyKind::Sequential, None) => sequential += 1,
            (kind, None) => return Err(PortError::invalid(format!("a {kind:?} dependency needs a job id: set job_id"))),
            (DependencyKind::NToN, Some(id)) if req.array_size.is_none() => {
                return Err(PortError::invalid(format!(
                    "N_TO_N dependency on {id} needs this job to be an array job of the same size: set array_size"
                )))
            }
            (_, Some(_)) => {}
        }
    }
    if sequential > 1 {
        return Err(PortError::invalid(format!(
            "{sequential} SEQUENTIAL dependencies given: give at most one"
        )));
    }
    Ok(())
}

/// Longest evaluateOnExit pattern AWS accepts.
pub const MAX_PATTERN_CHARS: usize = 512;

/// Which evaluateOnExit pattern is checked: each has its own character set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternKind {
    /// `onStatusReason`: letters, digits, `.`, `:`, white space.
    StatusReason,
    /// `onReason`: letters, digits, `.`, `:`, white space.
    Reason,
    /// `onExitCode`: digits.
    ExitCode,
}

/// Checks one evaluateOnExit pattern as AWS does at SubmitJob and
/// RegisterJobDefinition: 1-512 characters of the kind's set, with `*` only as
/// the last character. `Err` starts with `name` and the pattern, e.g.
/// `on_reason "a-b" is not valid: ...`.
pub fn on_exit_pattern(name: &str, kind: PatternKind, pattern: &str) -> PortResult<()> {
    let (allowed, what): (fn(char) -> bool, &str) = match kind {
        PatternKind::StatusReason | PatternKind::Reason => (
            |c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | ' ' | '\t'),
            "letters, digits, '.', ':' and white space",
        ),
        PatternKind::ExitCode => (|c| c.is_ascii_digit(), "digits"),
    };
    let body = pattern.strip_suffix('*').unwrap_or(pattern);
    if pattern.is_empty() || pattern.chars().count() > MAX_PATTERN_CHARS || !body.chars().all(allowed) {
        let hint = match body.chars().find(|c| !allowed(*c)) {
            Some('*') => "; '*' is allowed only as the last character".to_owned(),
            Some(c) => format!("; {c:?} is not allowed (use a trailing '*' to match the rest)"),
            None => String::new(),
        };
        return Err(PortError::invalid(format!(
            "{name} {pattern:?} is not valid: use 1-{MAX_PATTERN_CHARS} {what}, with an optional trailing '*'{hint}"
        )));
    }
    Ok(())
}

/// The vCPU/memory (MiB) combinations Fargate runs: each vCPU value with its memory values.
fn fargate_pairs() -> impl Iterator<Item = (f64, u64)> {
    let range =
        |v: f64, from: u64, to: u64, step: u64| (from..=to).step_by(step as usize).map(move |m| (v, m));
    [(0.25, 512)]
        .into_iter()
        .chain(range(0.25, 1024, 2048, 1024))
        .chain(range(0.5, 1024, 4096, 1024))
        .chain(range(1.0, 2048, 8192, 1024))
        .chain(range(2.0, 4096, 16384, 1024))
        .chain(range(4.0, 8192, 30720, 1024))
        .chain(range(8.0, 16384, 61440, 4096))
        .chain(range(16.0, 32768, 122880, 8192))
}

/// Checks that `vcpus` and `memory_mib` are a combination Fargate runs. `Err`
/// names the nearest combination that holds the request (the smallest with at
/// least as many vCPUs and as much memory), or the largest there is.
pub fn fargate_resources(vcpus: f64, memory_mib: u64) -> PortResult<()> {
    if fargate_pairs().any(|(v, m)| v == vcpus && m == memory_mib) {
        return Ok(());
    }
    let fits = fargate_pairs()
        .filter(|&(v, m)| v >= vcpus && m >= memory_mib)
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let advice = match fits {
        Some((v, m)) => {
            format!("use vcpus = {v}, memory = {m} (the nearest Fargate combination that holds it)")
        }
        None => "Fargate's largest is vcpus = 16, memory = 122880: use EC2 compute for more".to_owned(),
    };
    Err(PortError::invalid(format!(
        "vcpus {vcpus} with memory {memory_mib} MiB is not a combination Fargate runs: {advice}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_aws_character_sets() {
        for ok in
            ["Host EC2*", "Essential container in task exited", "OutOfMemoryError: Container*", "*", "a\tb."]
        {
            assert_eq!(on_exit_pattern("on_reason", PatternKind::Reason, ok), Ok(()), "{ok}");
        }
        assert_eq!(on_exit_pattern("on_exit_code", PatternKind::ExitCode, "75"), Ok(()));
        assert_eq!(on_exit_pattern("on_exit_code", PatternKind::ExitCode, "1*"), Ok(()));
        let e = on_exit_pattern("on_reason", PatternKind::Reason, "Cannot-start*")
            .unwrap_err()
            .message()
            .to_owned();
        assert!(e.starts_with("on_reason \"Cannot-start*\" is not valid") && e.contains("'-'"), "{e}");
        let e = on_exit_pattern("x.onStatusReason", PatternKind::StatusReason, "a*b")
            .unwrap_err()
            .message()
            .to_owned();
        assert!(e.contains("only as the last character"), "{e}");
        assert!(on_exit_pattern("c", PatternKind::ExitCode, "7x").is_err());
        assert!(on_exit_pattern("c", PatternKind::ExitCode, "").is_err());
        assert!(on_exit_pattern("r", PatternKind::Reason, "(x)").is_err(), "parentheses are not allowed");
        assert!(on_exit_pattern("r", PatternKind::Reason, &"a".repeat(513)).is_err());
    }

    #[test]
    fn fargate_combinations_and_the_nearest_one() {
        for (v, m) in [(0.25, 512), (0.5, 4096), (1.0, 2048), (4.0, 30720), (8.0, 20480), (16.0, 122880)] {
            assert_eq!(fargate_resources(v, m), Ok(()), "{v} {m}");
        }
        let e = fargate_resources(1.0, 64).unwrap_err().message().to_owned();
        assert!(e.contains("use vcpus = 1, memory = 2048"), "{e}");
        let e = fargate_resources(0.25, 3000).unwrap_err().message().to_owned();
        assert!(e.contains("use vcpus = 0.5, memory = 3072"), "{e}");
        let e = fargate_resources(8.0, 18000).unwrap_err().message().to_owned();
        assert!(e.contains("use vcpus = 8, memory = 20480"), "{e}");
        let e = fargate_resources(32.0, 1024).unwrap_err().message().to_owned();
        assert!(e.contains("largest is vcpus = 16"), "{e}");
    }
}
