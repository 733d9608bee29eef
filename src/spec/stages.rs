//! `[defaults]`, `[[stages]]`, `[aggregation]` and `[cleanup]`.

use std::collections::BTreeMap;

use super::{
    jobs::{read_job, JobKeys, JOB_KEYS},
    reader::{Reader, Span, Tab},
    validate, JobSpec, Stage, StageDependency,
};

/// The aggregation's command when `[aggregation]` sets none.
pub const DEFAULT_AGGREGATION_COMMAND: [&str; 3] = ["batchfan", "job", "concat"];
/// The cleanup's command when `[cleanup]` sets none.
pub const DEFAULT_CLEANUP_COMMAND: [&str; 3] = ["batchfan", "job", "cleanup"];

/// Reads `[defaults]`: every job key but `command`.
pub(crate) fn read_defaults(r: &mut Reader<'_>, root: &Tab<'_>) -> JobKeys {
    let Some(t) = r.table(root, "defaults") else { return JobKeys::default() };
    let allowed: Vec<&str> = JOB_KEYS.iter().copied().filter(|k| *k != "command").collect();
    r.check_keys(&t, &allowed);
    read_job(r, &t)
}

/// Reads `[aggregation]` or `[cleanup]` (both optional), over `defaults`.
pub(crate) fn read_extra_job(
    r: &mut Reader<'_>,
    root: &Tab<'_>,
    key: &str,
    defaults: &JobKeys,
    command: &[&str],
) -> (JobSpec, Span) {
    match r.table(root, key) {
        Some(t) => {
            r.check_keys(&t, &JOB_KEYS);
            (read_job(r, &t).resolve(defaults, command), t.span.clone())
        }
        None => (JobKeys::default().resolve(defaults, command), root.span.clone()),
    }
}

/// Reads `[[stages]]`: at least one, unique names, equal `items_per_child`.
/// Returns each stage with the span of its table.
pub(crate) fn read_stages(r: &mut Reader<'_>, root: &Tab<'_>, defaults: &JobKeys) -> Vec<(Stage, Span)> {
    let Some(list) = r.tables(root, "stages") else {
        if root.get("stages").is_none() {
            r.error(
                &root.span,
                "the spec has no stages: add at least one [[stages]] table with name = \"main\" and command = [\"prog\"]",
            );
        }
        return Vec::new();
    };
    if list.v.is_empty() {
        r.error(&list.span, "stages is empty: add at least one stage with a name and a command");
    }
    let mut allowed = JOB_KEYS.to_vec();
    allowed.extend(["name", "items_per_child", "dependency"]);
    let mut out: Vec<(Stage, Span)> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut first_ipc: Option<(String, u64)> = None;
    for (i, t) in list.v.iter().enumerate() {
        r.check_keys(t, &allowed);
        let name = match r.string(t, "name") {
            Some(n) => {
                if let Err(m) = validate::stage_name(&n.v) {
                    r.error(&n.span, m);
                } else if let Some(prev) = seen.insert(n.v.clone(), i) {
                    r.error(
                        &n.span,
                        format!(
                            "stage name {:?} is used by stage {} too: give every stage its own name",
                            n.v,
                            prev + 1
                        ),
                    );
                }
                n.v
            }
            None => {
                if t.get("name").is_none() {
                    r.missing(t, "name", "\"main\"");
                }
                format!("stage-{}", i + 1)
            }
        };
        if t.get("command").is_none() {
            r.missing(t, "command", "[\"prog\", \"arg\"]");
        }
        let job = read_job(r, t).resolve(defaults, &[]);
        let mut items_per_child = 1;
        let ipc = r.int(t, "items_per_child");
        if let Some(v) = &ipc {
            match validate::at_least("items_per_child", v.v, 1) {
                Ok(n) => items_per_child = n,
                Err(m) => r.error(&v.span, m),
            }
        }
        match &first_ipc {
            None => first_ipc = Some((name.clone(), items_per_child)),
            Some((first, n)) if *n != items_per_child => {
                let span = ipc.as_ref().map_or_else(|| t.span.clone(), |v| v.span.clone());
                r.error(
                    &span,
                    format!(
                        "items_per_child {items_per_child} of stage {name:?} differs from {n} of stage {first:?}: N_TO_N needs equal arrays, set the same items_per_child on every stage"
                    ),
                );
            }
            Some(_) => {}
        }
        let dependency = match r.choice(t, "dependency", &["n_to_n", "sequential"], false).map(|c| c.v) {
            Some(1) => StageDependency::Sequential,
            _ => StageDependency::NToN,
        };
        out.push((Stage { name, job, items_per_child, dependency }, t.span.clone()));
    }
    out
}
