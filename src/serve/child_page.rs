//! The page of one child of a run (`/runs/{id}/children/{stage}/{index}`):
//! its status, times and queue wait, each attempt with its exit code,
//! reasons, duration and log tail, and a link to each attempt's whole log
//! (`?log=N`). Live while the child has not ended.

use std::fmt::Write;

use super::{
    child_view::{ChildView, FULL_LOG_LIMIT},
    page::{esc, layout, state_badge, when_ms},
    run_page::child_href,
};
use crate::run::timings::human_ms;

fn opt_when(t: Option<i64>) -> String {
    t.map_or_else(|| "-".into(), when_ms)
}

fn between(a: Option<i64>, b: Option<i64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => human_ms(b - a),
        _ => "-".into(),
    }
}

/// The whole page; `fragment` is its live part.
pub fn page(v: &ChildView, fragment: &str) -> String {
    let href = child_href(&v.run_id, &v.stage, v.index);
    let log = v.full_log.as_ref().map(|f| f.attempt).or(v.log_asked);
    let src = log.map_or_else(|| format!("/fragments{href}"), |n| format!("/fragments{href}?log={n}"));
    let body = format!(
        "<h2><a class=mono href=\"/runs/{0}\">{0}</a> · {1}[{2}]</h2>\
         <div id=live data-src=\"{src}\" data-every=1000>{fragment}</div>",
        esc(&v.run_id),
        esc(&v.stage),
        v.index
    );
    layout(&format!("{}[{}] of {}", v.stage, v.index, v.run_id), &body)
}

/// The live part: status, times, attempts with log tails, the whole log asked for.
pub fn fragment(v: &ChildView) -> String {
    let terminal = v.status.is_terminal();
    let mut b = format!(
        "<div data-terminal=\"{terminal}\"><table class=props id=child>\
         <tr><th>status</th><td>{}</td></tr><tr><th>job</th><td class=mono>{}</td></tr>\
         <tr><th>status reason</th><td>{}</td></tr><tr><th>created</th><td>{}</td></tr>\
         <tr><th>started</th><td>{}</td></tr><tr><th>stopped</th><td>{}</td></tr>\
         <tr><th>queue wait</th><td id=queue-wait>{}</td></tr><tr><th>ran</th><td id=ran>{}</td></tr>\
         <tr><th>pipeline</th><td>{} (run {})</td></tr></table>",
        state_badge(v.status.as_str(), Some("child-state")),
        esc(&v.job_id),
        esc(v.status_reason.as_deref().unwrap_or("-")),
        when_ms(v.created_at),
        opt_when(v.started_at),
        opt_when(v.stopped_at),
        between(Some(v.created_at), v.started_at),
        between(v.started_at, v.stopped_at),
        esc(&v.pipeline),
        esc(&v.run_state)
    );
    let _ = write!(b, "<h2>Attempts ({})</h2>", v.attempts.len());
    if v.attempts.is_empty() {
        b.push_str("<p class=muted>No attempt: it has not run (waiting, or failed by a dependency).</p>");
    }
    let href = child_href(&v.run_id, &v.stage, v.index);
    for a in &v.attempts {
        let _ = write!(
            b,
            "<div class=attempt data-attempt={0}><h3>attempt {0}: exit {1}</h3><p>{2} · {3} · started {4}, stopped {5} ({6})</p>",
            a.number,
            a.exit_code.map_or_else(|| "none".into(), |c| c.to_string()),
            esc(a.reason.as_deref().unwrap_or("no reason")),
            esc(a.status_reason.as_deref().unwrap_or("no status reason")),
            opt_when(a.started_at),
            opt_when(a.stopped_at),
            between(a.started_at, a.stopped_at)
        );
        if let Some(stream) = &a.log_stream_name {
            let _ = write!(
                b,
                "<p class=muted>log <span class=mono>{}</span> · <a class=full-log href=\"{href}?log={}\">the whole log</a></p>",
                esc(stream),
                a.number
            );
        }
        if !a.log_tail.is_empty() {
            let _ = write!(b, "<pre class=tail>{}</pre>", esc(&a.log_tail));
        }
        b.push_str("</div>");
    }
    if let Some(note) = &v.log_note {
        let _ = write!(b, "<p class=warn id=log-note>{}</p>", esc(note));
    }
    if let Some(full) = &v.full_log {
        let _ = write!(b, "<h2 id=full-log-title>Whole log of attempt {}</h2>", full.attempt);
        if full.skipped > 0 {
            let _ = write!(
                b,
                "<p class=warn>the first {} bytes are left out (the page shows the last {FULL_LOG_LIMIT})</p>",
                full.skipped
            );
        }
        let _ = write!(b, "<pre id=full-log>{}</pre>", esc(&full.text));
    }
    b.push_str("</div>");
    b
}
