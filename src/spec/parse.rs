//! Loading a spec: TOML text → [`PipelineSpec`], reporting every problem as
//! `file:line:col: message`.

use std::path::Path;

use toml_edit::ImDocument;

use super::overrides::{self, SpecJob};
use super::{
    platform,
    reader::{Reader, Span, Tab},
    sections, stages, triggers, validate, PipelineSpec, Planner, SecretSource,
};
use crate::batch::MAX_ARRAY_SIZE;

/// Keys of the top level.
const ROOT_KEYS: [&str; 15] = [
    "name",
    "compute",
    "local",
    "description",
    "queue",
    "max_array_size",
    "params",
    "triggers",
    "planner",
    "defaults",
    "stages",
    "aggregation",
    "cleanup",
    "alerts",
    "storage",
];

/// One problem in a spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct SpecError {
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    pub message: String,
}

/// Every problem in a spec, in the order they appear; Display prints one per line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct SpecErrors(pub Vec<SpecError>);

/// Loads and validates a spec file; relative paths in it resolve against its directory.
pub fn load(path: &Path) -> Result<PipelineSpec, SpecErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecErrors(vec![SpecError {
            file: file.clone(),
            line: 1,
            col: 1,
            message: format!("cannot read the spec: {e}: check the path"),
        }])
    })?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let base_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    load_str(&text, &file, &base_dir)
}

/// Loads and validates spec text; `file` names it in errors; `base_dir` resolves relative paths.
pub fn load_str(text: &str, file: &str, base_dir: &Path) -> Result<PipelineSpec, SpecErrors> {
    let mut r = Reader::new(file, text);
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let message = e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>();
            r.error(&e.span(), format!("invalid toml: {}: fix the syntax", message.join(", ")));
            return Err(SpecErrors(r.into_errors()));
        }
    };
    let root = Tab::root(doc.as_table());
    let spec = read_spec(&mut r, &root, base_dir);
    let errors = r.into_errors();
    match spec {
        Some(spec) if errors.is_empty() => Ok(spec),
        _ => Err(SpecErrors(errors)),
    }
}

fn read_spec(r: &mut Reader<'_>, root: &Tab<'_>, base_dir: &Path) -> Option<PipelineSpec> {
    r.check_keys(root, &ROOT_KEYS);
    let name = match r.string(root, "name") {
        Some(n) => match validate::pipeline_name(&n.v) {
            Ok(()) => Some(n.v),
            Err(m) => {
                r.error(&n.span, m);
                None
            }
        },
        None => {
            if root.get("name").is_none() {
                r.missing(root, "name", "\"orders\"");
            }
            None
        }
    };
    // Defaults derived from an invalid name would only repeat its error.
    let n = name.as_deref().unwrap_or("x");
    let description = r.string(root, "description").map(|d| d.v).unwrap_or_default();
    let mut job_queue = format!("batchfan-{n}");
    if let Some(q) = r.string(root, "queue") {
        match validate::queue(&q.v) {
            Ok(()) => job_queue = q.v,
            Err(m) => r.error(&q.span, m),
        }
    }
    let mut max_array_size = MAX_ARRAY_SIZE;
    if let Some(m) = r.int(root, "max_array_size") {
        match u32::try_from(m.v).ok().filter(|v| (2..=MAX_ARRAY_SIZE).contains(v)) {
            Some(v) => max_array_size = v,
            None => r.error(
                &m.span,
                format!(
                    "max_array_size {} is out of range: AWS Batch arrays have 2 to {MAX_ARRAY_SIZE} children",
                    m.v
                ),
            ),
        }
    }
    let params = sections::read_params(r, root);
    let mut triggers = triggers::read_triggers(r, root);
    if let Some(w) = &mut triggers.webhook {
        if let Some(SecretSource::File(p)) = &mut w.secret {
            if p.is_relative() {
                *p = base_dir.join(&*p);
            }
        }
    }
    let planner = sections::read_planner(r, root);
    let defaults = stages::read_defaults(r, root);
    let stages = stages::read_stages(r, root, &defaults);
    let (aggregation, agg_span) =
        stages::read_extra_job(r, root, "aggregation", &defaults, &stages::DEFAULT_AGGREGATION_COMMAND);
    let (cleanup, cleanup_span) =
        stages::read_extra_job(r, root, "cleanup", &defaults, &stages::DEFAULT_CLEANUP_COMMAND);
    let alerts = sections::read_alerts(r, root, n);
    let storage = sections::read_storage(r, root, n);
    let spans: Vec<Span> = stages.iter().map(|(_, s)| s.clone()).collect();
    let job_definition_prefix = format!("{n}-");
    let compute = platform::read_compute(r, root);
    let local = platform::read_local(r, root);
    let spec = PipelineSpec {
        name: name?,
        description,
        base_dir: base_dir.to_path_buf(),
        triggers,
        planner: planner.unwrap_or(Planner::Objects),
        stages: stages.into_iter().map(|(s, _)| s).collect(),
        aggregation,
        cleanup,
        alerts,
        storage,
        max_array_size,
        params,
        job_queue,
        job_definition_prefix,
        compute,
        local,
    };
    check_overrides(r, &spec, &spans, &agg_span, &cleanup_span);
    Some(spec)
}

/// Checks that each job's container overrides, with the pointers the graph adds, fit AWS's limit.
fn check_overrides(r: &mut Reader<'_>, spec: &PipelineSpec, stages: &[Span], agg: &Span, cleanup: &Span) {
    for (message, span) in overrides::override_problems(spec).into_iter().map(|(job, msg)| {
        let span = match job {
            SpecJob::Stage(i) => stages.get(i).cloned().flatten(),
            SpecJob::Aggregation => agg.clone(),
            SpecJob::Cleanup => cleanup.clone(),
        };
        (msg, span)
    }) {
        r.error(&span, message);
    }
}
