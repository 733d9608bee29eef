//! AWS limits checked at plan time, before anything is submitted: array
//! sizes, dependency counts, request size, container overrides size.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::{json, Value};

use super::{build::node_env, JobGraph, Role};
use crate::{
    batch::{
        check_job_name, SubmitJob, MAX_ARRAY_SIZE, MAX_DEPENDENCIES, MAX_OVERRIDE_CHARS, MAX_SUBMIT_BYTES,
        MIN_ARRAY_SIZE,
    },
    spec::{JobSpec, PipelineSpec},
};

/// Stands for a job id (a UUID: 36 characters) when sizing a request before submission.
pub const PLACEHOLDER_JOB_ID: &str = "00000000-0000-0000-0000-000000000000";
/// Stands for a run id when checking a spec before any run exists (36 characters).
pub const PLACEHOLDER_RUN_ID: &str = "r00000000000000000000000000000000000";
/// Stands for the largest child offset when checking a spec.
const PLACEHOLDER_OFFSET: u64 = 3_999_999_999;

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

/// A job of a spec, for [`spec_override_problems`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecJob {
    /// The stage at this position.
    Stage(usize),
    Aggregation,
    Cleanup,
}

fn override_problem(what: &str, job: &JobSpec, env: &BTreeMap<String, String>) -> Option<String> {
    let chars = overrides_chars(&job.command, env);
    (chars > MAX_OVERRIDE_CHARS).then(|| {
        format!(
            "{what}: container overrides (command and env, with batchfan's pointers) would be {chars} characters, over the AWS limit of {MAX_OVERRIDE_CHARS}: shorten the command and env, and pass data through the work item or the bucket"
        )
    })
}

/// The jobs of a spec whose container overrides would not fit, with a message
/// each (a placeholder run id stands for the real one).
pub fn spec_override_problems(spec: &PipelineSpec) -> Vec<(SpecJob, String)> {
    let mut out = Vec::new();
    for (i, stage) in spec.stages.iter().enumerate() {
        let role = Role::Stage { stage: i, shard: 0, first_child: PLACEHOLDER_OFFSET, children: 2 };
        let env = node_env(spec, PLACEHOLDER_RUN_ID, &role, &stage.job);
        if let Some(m) = override_problem(&format!("stage {:?}", stage.name), &stage.job, &env) {
            out.push((SpecJob::Stage(i), m));
        }
    }
    for (which, role, job) in [
        (SpecJob::Aggregation, Role::Aggregation, &spec.aggregation),
        (SpecJob::Cleanup, Role::Cleanup, &spec.cleanup),
    ] {
        let env = node_env(spec, PLACEHOLDER_RUN_ID, &role, job);
        if let Some(m) = override_problem(role.kind(), job, &env) {
            out.push((which, m));
        }
    }
    out
}

/// Every AWS limit the graph would break, one message per problem, each
/// naming the job and the fix. Empty when the graph can be submitted.
pub fn check_limits(spec: &PipelineSpec, graph: &JobGraph) -> Vec<String> {
    let mut out = Vec::new();
    let mut earlier: HashSet<&str> = HashSet::new();
    for node in &graph.nodes {
        let job = &node.name;
        if let Err(m) = check_job_name(job) {
            out.push(m);
        }
        let definition = node.job_definition(spec);
        if definition.len() > 128 {
            out.push(format!("job definition name {definition:?} of job {job} is longer than 128 characters: shorten the pipeline or stage name"));
        }
        if let Some(n) = node.array_size {
            if !(MIN_ARRAY_SIZE..=MAX_ARRAY_SIZE).contains(&n) {
                out.push(format!(
                    "job {job} has array size {n}: AWS Batch arrays have {MIN_ARRAY_SIZE} to {MAX_ARRAY_SIZE} children; set max_array_size to at most {MAX_ARRAY_SIZE} (or raise items_per_child) and plan again"
                ));
            }
        }
        if node.depends_on.len() > MAX_DEPENDENCIES {
            out.push(format!(
                "job {job} has {} dependencies, over the AWS limit of {MAX_DEPENDENCIES}: build the graph with graph::build, which inserts barrier jobs",
                node.depends_on.len()
            ));
        }
        for dep in node.depends_on.iter().filter_map(|d| d.node.as_deref()) {
            if !earlier.contains(dep) {
                out.push(format!(
                    "job {job} depends on {dep}, which is not an earlier job of the graph: build the graph with graph::build"
                ));
            }
        }
        let chars = overrides_chars(&node.job.command, &node.env);
        if chars > MAX_OVERRIDE_CHARS {
            out.push(format!(
                "job {job}: container overrides would be {chars} characters, over the AWS limit of {MAX_OVERRIDE_CHARS}: shorten its command and env, and pass data through the work item or the bucket"
            ));
        }
        match node.to_submit(spec, |_| Some(PLACEHOLDER_JOB_ID.to_owned())) {
            Ok(request) => {
                let bytes = serde_json::to_vec(&aws_request_json(&request)).map_or(usize::MAX, |v| v.len());
                if bytes > MAX_SUBMIT_BYTES {
                    out.push(format!(
                        "job {job}: the SubmitJob request would be {bytes} bytes, over the AWS limit of {MAX_SUBMIT_BYTES}: shorten its command, env and retry rules"
                    ));
                }
            }
            Err(e) => out.push(e.to_string()),
        }
        earlier.insert(job);
    }
    out
}
