//! `[params]`, `[planner]`, `[alerts]` and `[storage]`.

use std::collections::BTreeMap;

use super::{
    reader::{Reader, Tab},
    validate, Alerts, Planner, Storage, DEFAULT_SCRATCH_DAYS, MAX_SCRATCH_DAYS,
};
use crate::objects::check_bucket;

/// Lines per unit of the lines planner when not set.
pub const DEFAULT_LINES_PER_ITEM: u64 = 30_000;
/// The table when `[storage]` names none.
pub const DEFAULT_TABLE: &str = "batchfan";

const STRATEGIES: [&str; 4] = ["lines", "objects", "range", "custom"];
/// Which planner keys belong to which strategy.
const STRATEGY_KEYS: [(&str, &str); 5] = [
    ("lines_per_item", "lines"),
    ("header", "lines"),
    ("columns", "lines"),
    ("count", "range"),
    ("command", "custom"),
];

/// Reads `[params]`: declared run parameters with string defaults.
pub(crate) fn read_params(r: &mut Reader<'_>, root: &Tab<'_>) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    for (k, v) in r.str_map(root, "params").unwrap_or_default() {
        match validate::param_name(&k.v) {
            Ok(()) => {
                params.insert(k.v, v.v);
            }
            Err(m) => r.error(&k.span, m),
        }
    }
    params
}

/// Reads the required `[planner]`.
pub(crate) fn read_planner(r: &mut Reader<'_>, root: &Tab<'_>) -> Option<Planner> {
    let Some(t) = r.table(root, "planner") else {
        if root.get("planner").is_none() {
            r.error(
                &root.span,
                "the spec has no [planner]: add one with strategy = \"lines\", \"objects\", \"range\" or \"custom\"",
            );
        }
        return None;
    };
    let mut allowed = vec!["strategy"];
    allowed.extend(STRATEGY_KEYS.iter().map(|(k, _)| *k));
    r.check_keys(&t, &allowed);
    if t.get("strategy").is_none() {
        r.missing(&t, "strategy", "\"lines\" (or \"objects\", \"range\", \"custom\")");
    }
    let strategy = STRATEGIES[r.choice(&t, "strategy", &STRATEGIES, false)?.v];
    for (key, owner) in STRATEGY_KEYS {
        if owner != strategy && t.get(key).is_some() {
            r.error(
                &t.key_span(key),
                format!("{key} applies only to strategy = \"{owner}\", not \"{strategy}\": remove it or change the strategy"),
            );
        }
    }
    match strategy {
        "lines" => {
            let mut lines_per_item = DEFAULT_LINES_PER_ITEM;
            if let Some(n) = r.int(&t, "lines_per_item") {
                match validate::at_least("lines_per_item", n.v, 1) {
                    Ok(v) => lines_per_item = v,
                    Err(m) => r.error(&n.span, m),
                }
            }
            let header = r.boolean(&t, "header").is_some_and(|h| h.v);
            let mut columns = Vec::new();
            if let Some(list) = r.str_list(&t, "columns") {
                if !header {
                    r.error(
                        &list.span,
                        "columns checks the header row: set header = true, or remove columns",
                    );
                } else if list.v.iter().any(|c| c.trim().is_empty() || c.trim() != c) {
                    r.error(&list.span, "columns must be non-empty names without surrounding spaces: e.g. columns = [\"Region\", \"Order ID\"]");
                } else {
                    columns = list.v;
                }
            }
            Some(Planner::Lines { lines_per_item, header, columns })
        }
        "objects" => Some(Planner::Objects),
        "range" => {
            let mut count = 0;
            if let Some(n) = r.int(&t, "count") {
                match validate::at_least("count", n.v, 0) {
                    Ok(v) => count = v,
                    Err(m) => r.error(&n.span, m),
                }
            }
            Some(Planner::Range { count })
        }
        _ => {
            if t.get("command").is_none() {
                r.missing(&t, "command", "[\"./plan.sh\"]");
            }
            let command = r.str_list(&t, "command")?;
            if command.v.is_empty() || command.v[0].is_empty() {
                r.error(
                    &command.span,
                    "command must name a program: e.g. command = [\"./plan.sh\", \"--flag\"]",
                );
                return None;
            }
            Some(Planner::Custom { command: command.v })
        }
    }
}

/// Reads `[alerts]`; `name` is the pipeline's (for the default topic).
pub(crate) fn read_alerts(r: &mut Reader<'_>, root: &Tab<'_>, name: &str) -> Alerts {
    let mut alerts = Alerts { topic: format!("{name}-alerts"), tolerated_failure_percent: 0.0 };
    let Some(t) = r.table(root, "alerts") else { return alerts };
    r.check_keys(&t, &["topic", "tolerated_failure_percent"]);
    if let Some(topic) = r.string(&t, "topic") {
        match validate::topic(&topic.v) {
            Ok(()) => alerts.topic = topic.v,
            Err(m) => r.error(&topic.span, m),
        }
    }
    if let Some(p) = r.number(&t, "tolerated_failure_percent") {
        match validate::percent(p.v) {
            Ok(()) => alerts.tolerated_failure_percent = p.v,
            Err(m) => r.error(&p.span, m),
        }
    }
    alerts
}

/// Reads `[storage]`; `name` is the pipeline's (for the default bucket).
pub(crate) fn read_storage(r: &mut Reader<'_>, root: &Tab<'_>, name: &str) -> Storage {
    let mut storage = Storage {
        bucket: format!("batchfan-{name}"),
        table: DEFAULT_TABLE.into(),
        scratch_days: DEFAULT_SCRATCH_DAYS,
    };
    let Some(t) = r.table(root, "storage") else { return storage };
    r.check_keys(&t, &["bucket", "table", "scratch_days"]);
    if let Some(b) = r.string(&t, "bucket") {
        match check_bucket(&b.v) {
            Ok(()) => storage.bucket = b.v,
            Err(e) => r.error(&b.span, e.message()),
        }
    }
    if let Some(tb) = r.string(&t, "table") {
        match validate::table(&tb.v) {
            Ok(()) => storage.table = tb.v,
            Err(m) => r.error(&tb.span, m),
        }
    }
    if let Some(d) = r.int(&t, "scratch_days") {
        match u32::try_from(d.v).ok().filter(|d| (1..=MAX_SCRATCH_DAYS).contains(d)) {
            Some(days) => storage.scratch_days = days,
            None => r.error(
                &d.span,
                format!("scratch_days {} is out of range: use 1 to {MAX_SCRATCH_DAYS} (days a run's work items and results are kept, to retry it), e.g. scratch_days = {DEFAULT_SCRATCH_DAYS}", d.v),
            ),
        }
    }
    storage
}
