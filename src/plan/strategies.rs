//! The planner strategies: turn a run's input into units (JSON values), one
//! per piece of work. See [`crate::spec::Planner`].

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
};

use serde_json::{json, Value};

use super::{lines::plan_lines, PlanError};
use crate::{
    env,
    objects::{ObjectRef, Objects},
    spec::{PipelineSpec, Planner},
};

/// Most units the `range` strategy makes (each unit is held in memory).
pub const MAX_RANGE_COUNT: u64 = 10_000_000;
/// Env var a custom planner finds the run's input uri in.
pub const INPUT_ENV: &str = "BATCHFAN_INPUT";
/// Characters of a custom planner's stderr kept in an error.
const STDERR_TAIL: usize = 2_000;

/// The units of a run: what the spec's planner makes of `input` and `params`
/// (`--param lines_per_item=N` and `--param count=N` override the spec).
pub async fn plan_units(
    spec: &PipelineSpec,
    input: Option<&ObjectRef>,
    params: &BTreeMap<String, String>,
    objects: &dyn Objects,
) -> Result<Vec<Value>, PlanError> {
    match &spec.planner {
        Planner::Lines { lines_per_item, header, .. } => {
            let input = input.ok_or_else(|| PlanError::NoInput("lines".into()))?;
            let per = match params.get("lines_per_item") {
                Some(v) => parse_param("lines_per_item", v, 1)?,
                None => *lines_per_item,
            };
            let ranges = plan_lines(objects, input, per, *header).await?;
            Ok(ranges
                .into_iter()
                .map(|r| json!({ "start": r.start, "end": r.end, "line": r.line }))
                .collect())
        }
        Planner::Objects => {
            let input = input.ok_or_else(|| PlanError::NoInput("objects".into()))?;
            let mut listed = objects.list(&input.bucket, &input.key).await?;
            listed.retain(|m| !m.key.ends_with('/'));
            listed.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(listed
                .into_iter()
                .map(|m| json!({ "bucket": input.bucket, "key": m.key, "size": m.size }))
                .collect())
        }
        Planner::Range { count } => {
            let count = match params.get("count") {
                Some(v) => parse_param("count", v, 0)?,
                None => *count,
            };
            if count > MAX_RANGE_COUNT {
                return Err(PlanError::Invalid(format!(
                    "range count {count} exceeds {MAX_RANGE_COUNT}: plan fewer units, or use a custom planner that packs several items per unit"
                )));
            }
            Ok((0..count).map(Value::from).collect())
        }
        Planner::Custom { command } => run_custom(spec, command, input, params).await,
    }
}

fn parse_param(name: &str, value: &str, min: u64) -> Result<u64, PlanError> {
    value.trim().parse::<u64>().ok().filter(|v| *v >= min).ok_or_else(|| {
        PlanError::Invalid(format!(
            "--param {name}={value} is not a whole number of at least {min}: pass e.g. --param {name}=1000"
        ))
    })
}

/// Where a command's program is: a relative path with '/' is taken from the
/// spec's directory; a bare name is looked up in PATH.
pub fn resolve_program(program: &str, base_dir: &Path) -> PathBuf {
    let path = Path::new(program);
    if path.is_relative() && program.contains('/') {
        base_dir.join(path)
    } else {
        path.to_path_buf()
    }
}

/// The env name a run parameter reaches jobs and planners under.
pub fn param_env_name(name: &str) -> String {
    format!("{}{}", env::PARAM_PREFIX, name.to_ascii_uppercase().replace('-', "_"))
}

async fn run_custom(
    spec: &PipelineSpec,
    command: &[String],
    input: Option<&ObjectRef>,
    params: &BTreeMap<String, String>,
) -> Result<Vec<Value>, PlanError> {
    let (program, args) =
        command.split_first().ok_or_else(|| PlanError::Custom("the planner command is empty".into()))?;
    let mut cmd = tokio::process::Command::new(resolve_program(program, &spec.base_dir));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    if spec.base_dir.is_dir() {
        cmd.current_dir(&spec.base_dir);
    }
    if let Some(input) = input {
        cmd.env(INPUT_ENV, input.to_string());
    }
    let mut all = spec.params.clone();
    all.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
    for (k, v) in &all {
        cmd.env(param_env_name(k), v);
    }
    let shown = command.join(" ");
    let out = cmd.output().await.map_err(|e| {
        PlanError::Custom(format!("cannot run {shown:?}: {e}: check the path and that it is executable"))
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let trimmed = stderr.trim_end();
        let tail: String = {
            let n = trimmed.chars().count();
            trimmed.chars().skip(n.saturating_sub(STDERR_TAIL)).collect()
        };
        let code = out.status.code().map_or_else(|| "a signal".to_owned(), |c| format!("code {c}"));
        return Err(PlanError::Custom(format!(
            "{shown:?} exited with {code}: fix the planner and run again; its stderr ends with: {tail}"
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut units = Vec::new();
    for (i, line) in stdout.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let unit = serde_json::from_str(line).map_err(|e| {
            let shown_line: String = line.chars().take(80).collect();
            let cut = if line.chars().count() > 80 { "..." } else { "" };
            PlanError::Custom(format!(
                "line {} of {shown:?}'s output is not json ({e}): {shown_line}{cut}: print one json value per line",
                i + 1
            ))
        })?;
        units.push(unit);
    }
    Ok(units)
}

#[cfg(test)]
#[path = "strategies_tests.rs"]
mod tests;
