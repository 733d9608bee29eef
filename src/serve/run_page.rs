//! A run's page: the header (with the slot for the Cancel and Retry buttons),
//! and its live part — each stage's grid of children (a click on a cell opens
//! the child's page), the stages' timings, the timeline
//! ([`super::timeline`]), the first failed children with their log tails (the
//! rest on paged `/runs/{id}/failed?page=N`), the alert.

use std::fmt::Write;

use super::{
    page::{esc, layout, state_badge, when_ms},
    run_view::{FailedChild, RunView, StageView, FAILED_ON_RUN_PAGE, FAILED_PER_PAGE},
    timeline,
};
use crate::run::timings::{human_ms, StageTimings};

/// Cells above this many per stage are drawn without a tooltip (keeps the page small).
const TITLE_LIMIT: usize = 2000;

/// `/runs/{run}/children/{stage}/`: a child's page is this and its global index.
fn children_href(run_id: &str, stage: &str) -> String {
    let stage = percent_encoding::utf8_percent_encode(stage, percent_encoding::NON_ALPHANUMERIC);
    format!("/runs/{}/children/{stage}/", esc(run_id))
}

/// `/runs/{run}/children/{stage}/{index}`.
pub fn child_href(run_id: &str, stage: &str, index: u64) -> String {
    format!("{}{index}", children_href(run_id, stage))
}

/// A run's page. The `run-actions` slot is where the Cancel and Retry buttons go.
pub fn run_page(view: &RunView, fragment: &str) -> String {
    let body = format!(
        "<h2>Run <span class=mono>{0}</span> of {1}</h2>\
         <div class=run-actions data-run=\"{0}\" data-state=\"{2}\"></div>\
         <div id=live data-src=\"/fragments/runs/{0}{3}\" data-every=1000>{fragment}</div>",
        esc(&view.row.run_id),
        esc(&view.row.pipeline),
        view.row.state.as_str(),
        if view.attempt < view.attempts { format!("?attempt={}", view.attempt) } else { String::new() }
    );
    layout(&format!("run {}", view.row.run_id), &body)
}

fn grid(b: &mut String, run_id: &str, stage: &StageView) {
    let counts: Vec<String> = stage.counts.iter().map(|(k, v)| format!("{v} {}", k.to_lowercase())).collect();
    let _ = write!(
        b,
        "<div class=stage data-stage=\"{0}\" data-child=\"{3}\"><b>{0}</b> <span class=counts>{1} child(ren): {2}</span><div class=grid>",
        esc(&stage.name),
        stage.children.len(),
        esc(&counts.join(", ")),
        children_href(run_id, &stage.name)
    );
    let titles = stage.children.len() <= TITLE_LIMIT;
    for (i, c) in stage.children.iter().enumerate() {
        if titles {
            let _ = write!(b, "<i class=\"s-{0}\" title=\"{1}[{i}] {0}\"></i>", esc(c), esc(&stage.name));
        } else {
            let _ = write!(b, "<i class=s-{}></i>", esc(c));
        }
    }
    b.push_str("</div></div>");
}

/// One failed child: where, why, its log tail, a link to its page.
pub fn failed_child(b: &mut String, run_id: &str, f: &FailedChild) {
    let _ = write!(
        b,
        "<div class=failed-child><a href=\"{}\"><b>{}[{}]</b></a> <span class=mono>{}</span>: exit {} — {}",
        child_href(run_id, &f.stage, f.index),
        esc(&f.stage),
        f.index,
        esc(&f.job_id),
        f.exit_code.map_or_else(|| "none".into(), |c| c.to_string()),
        esc(f.status_reason.as_deref().unwrap_or("no reason given"))
    );
    if !f.log_tail.is_empty() {
        let _ = write!(b, "<pre>{}</pre>", esc(&f.log_tail));
    }
    b.push_str("</div>");
}

fn ms_or_dash(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".into(), human_ms)
}

fn timings_table(b: &mut String, run_id: &str, timings: &[StageTimings]) {
    if timings.is_empty() {
        return;
    }
    b.push_str(
        "<h2>Timings</h2><table id=timings><tr><th>stage</th><th>started</th><th>first start</th><th>last stop</th>\
         <th>duration</th><th>queue wait (median / max)</th><th>run (median / max)</th><th>slowest</th></tr>",
    );
    for t in timings {
        let spread = |s: Option<crate::run::timings::Spread>| {
            s.map_or_else(|| "-".into(), |s| format!("{} / {}", human_ms(s.median_ms), human_ms(s.max_ms)))
        };
        let slowest: Vec<String> = t
            .slowest
            .iter()
            .map(|s| {
                format!(
                    "<a href=\"{}\">[{}]</a> {}",
                    child_href(run_id, &t.stage, s.index),
                    s.index,
                    human_ms(s.run_ms)
                )
            })
            .collect();
        let duration = match (t.duration_ms, t.last_stopped_at) {
            (Some(d), None) => format!("{} (running)", human_ms(d)),
            (d, _) => ms_or_dash(d),
        };
        let _ = write!(
            b,
            "<tr data-stage=\"{}\"><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td><td class=duration>{duration}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.stage),
            esc(&t.stage),
            t.started,
            t.children,
            t.first_started_at.map_or_else(|| "-".into(), when_ms),
            t.last_stopped_at.map_or_else(|| "-".into(), when_ms),
            spread(t.queue_wait),
            spread(t.run_time),
            slowest.join(", ")
        );
    }
    b.push_str("</table>");
}

/// The live part of a run's page.
pub fn run_fragment(v: &RunView) -> String {
    let run_id = v.row.run_id.as_str();
    let terminal = v.row.state.is_terminal();
    let mut b = format!(
        "<div data-terminal=\"{terminal}\"><p>{} ",
        state_badge(v.row.state.as_str(), Some("run-state"))
    );
    let _ = write!(
        b,
        "triggered by {:?} <span class=\"mono muted\">{}</span> at {}",
        v.row.source,
        esc(&v.row.key),
        when_ms(v.row.created_at)
    );
    if let Some(i) = &v.row.input {
        let _ = write!(b, " · input <code>{}</code>", esc(i));
    }
    if !v.params.is_empty() {
        let p: Vec<String> = v.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(b, " · params <code>{}</code>", esc(&p.join(" ")));
    }
    b.push_str("</p>");
    attempts(&mut b, v);
    if let Some(items) = v.items {
        let _ = write!(
            b,
            "<p>{items} item(s), {} failed · output <code>{}</code></p>",
            v.failed_items.unwrap_or(0),
            esc(&v.output)
        );
    }
    b.push_str("<p class=legend>");
    for s in ["SUCCEEDED", "RUNNING", "STARTING", "RUNNABLE", "PENDING", "FAILED", "NOT_SUBMITTED"] {
        let _ = write!(b, "<i class=s-{s}></i>{}", s.to_lowercase().replace('_', " "));
    }
    b.push_str("</p><h2>Stages</h2>");
    if v.stages.iter().all(|s| s.children.is_empty()) {
        b.push_str("<p class=muted>Not planned yet.</p>");
    }
    for s in v.stages.iter().chain(v.finish.iter()) {
        grid(&mut b, run_id, s);
    }
    timings_table(&mut b, run_id, &v.timings);
    timeline::svg(&mut b, v);
    if v.failed_count > 0 {
        let _ = write!(b, "<h2>Failed children ({})</h2>", v.failed_count);
        for f in &v.failed_children {
            failed_child(&mut b, run_id, f);
        }
        if v.failed_count as usize > FAILED_ON_RUN_PAGE {
            let _ = write!(
                b,
                "<p><a id=all-failed href=\"/runs/{}/failed?page=0\">all {} failed children, {FAILED_PER_PAGE} a page</a></p>",
                esc(run_id),
                v.failed_count
            );
        }
    }
    if let Some(f) = &v.failure {
        let at = f.at();
        let _ = write!(
            b,
            "<h2>Alert</h2><p class=error>failed at {} (exit {}): {}</p>",
            esc(&at),
            f.exit_code.map_or_else(|| "none".into(), |c| c.to_string()),
            esc(f.status_reason.as_deref().unwrap_or("-"))
        );
    }
    b.push_str("</div>");
    b
}

/// Which attempt the page shows, and links to the others (a run retried).
fn attempts(b: &mut String, v: &RunView) {
    if v.attempts <= 1 {
        return;
    }
    let run_id = esc(&v.row.run_id);
    let _ = write!(b, "<p class=attempts>Attempt ");
    for a in 1..=v.attempts {
        let current = if a == v.attempts { " (current)" } else { "" };
        if a == v.attempt {
            let _ = write!(b, "<b class=attempt-shown aria-current=page>{a}{current}</b> ");
        } else {
            let q = if a == v.attempts { String::new() } else { format!("?attempt={a}") };
            let _ = write!(b, "<a class=attempt href=\"/runs/{run_id}{q}\">{a}{current}</a> ");
        }
    }
    b.push_str("of ");
    let _ = write!(b, "{}", v.attempts);
    if v.attempt > 1 {
        let reran: u64 = v.reruns.iter().sum();
        let _ = write!(
            b,
            " · attempt {} reran {reran} child(ren); the other cells show how earlier attempts ran them",
            v.attempt
        );
    } else if v.attempt < v.attempts {
        b.push_str(" · showing the first attempt as it ran");
    }
    b.push_str("</p>");
}

/// `/runs/{id}/failed?page=N`: a page of failed children with their log tails.
pub fn failed_page(v: &RunView, page: usize, children: &[FailedChild]) -> String {
    let run_id = v.row.run_id.as_str();
    let pages = (v.failed_count as usize).div_ceil(FAILED_PER_PAGE).max(1);
    let mut b = format!(
        "<h2>Failed children of run <a class=mono href=\"/runs/{0}\">{0}</a></h2><p id=failed-page>page {1} of {pages} ({2} failed)</p>",
        esc(run_id),
        page + 1,
        v.failed_count
    );
    for f in children {
        failed_child(&mut b, run_id, f);
    }
    b.push_str("<p class=pager>");
    if page > 0 {
        let _ = write!(b, "<a id=prev href=\"/runs/{}/failed?page={}\">previous</a> ", esc(run_id), page - 1);
    }
    if page + 1 < pages {
        let _ = write!(b, "<a id=next href=\"/runs/{}/failed?page={}\">next</a>", esc(run_id), page + 1);
    }
    b.push_str("</p>");
    layout(&format!("failed children of {run_id}"), &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_has_one_cell_per_child_in_its_state_and_points_at_the_childs_page() {
        let stage = StageView {
            name: "a b".into(),
            children: vec!["SUCCEEDED".into(), "FAILED".into(), "NOT_SUBMITTED".into()],
            counts: [("SUCCEEDED".into(), 1), ("FAILED".into(), 1), ("NOT_SUBMITTED".into(), 1)].into(),
            spans: Vec::new(),
        };
        let mut b = String::new();
        grid(&mut b, "r1", &stage);
        assert_eq!(b.matches("<i class=").count(), 3);
        assert!(b.contains("class=\"s-FAILED\" title=\"a b[1] FAILED\""), "{b}");
        assert!(b.contains("data-child=\"/runs/r1/children/a%20b/\""), "{b}");
    }
}
