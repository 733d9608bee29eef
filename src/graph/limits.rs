//! AWS limits checked at plan time, before anything is submitted: array
//! sizes, dependency counts, request size, container overrides size.

use std::collections::HashSet;

use super::JobGraph;
use crate::{
    batch::{
        aws_request_json, check_job_name, overrides_chars, MAX_ARRAY_SIZE, MAX_DEPENDENCIES,
        MAX_OVERRIDE_CHARS, MAX_SUBMIT_BYTES, MIN_ARRAY_SIZE,
    },
    spec::PipelineSpec,
};

/// Stands for a job id (a UUID: 36 characters) when sizing a request before submission.
pub const PLACEHOLDER_JOB_ID: &str = "00000000-0000-0000-0000-000000000000";

/// Every AWS limit the graph would break, one message per problem, each
/// naming the job and the fix. Empty when the graph can be submitted.
pub fn check_limits(spec: &PipelineSpec, graph: &JobGraph) -> Vec<String> {
    let mut out = Vec::new();
    let mut earlier: HashSet<&str> = HashSet::new();
    for node in &graph.nodes {
        let job = &node.name;
        if let Err(e) = check_job_name(job) {
            out.push(e.message().to_owned());
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
