//! The status pages, rendered on the server. Each page has one live section
//! that a few lines of JavaScript ([`super::assets`], a script of its own so
//! that the Content-Security-Policy forbids inline script) re-fetch (as an HTML
//! fragment from the same renderer) every second or two, until a run's page
//! shows a final state.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::trigger::refusals::RefusalsView;

use super::{
    app::Notice,
    assets::{CSS_PATH, JS_PATH},
    view::{AlertView, FailedChild, PipelineView, RunRow, RunView, StageView},
};

/// Cells above this many per stage are drawn without a tooltip (keeps the page small).
const TITLE_LIMIT: usize = 2000;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn when_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub(super) fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>{}</title><link rel=stylesheet href=\"{CSS_PATH}\"></head><body><h1><a href=\"/\">batchfan serve</a></h1>\
         <nav><a href=\"/\">Pipelines</a> <a href=\"/jobs\" id=nav-jobs>Jobs</a></nav>{body}\
         <script src=\"{JS_PATH}\"></script></body></html>",
        esc(title)
    )
}

pub(super) fn state_badge(state: &str, id: Option<&str>) -> String {
    let id = id.map(|i| format!(" id=\"{i}\"")).unwrap_or_default();
    format!("<span class=\"state state-{0}\"{id}>{0}</span>", esc(state))
}

/// The home page: pipelines with their Run buttons, then the live runs, notices
/// and alerts. `input_hint` says which inputs the Run button takes.
pub fn home(pipelines: &[PipelineView], csrf: &str, fragment: &str, input_hint: &str) -> String {
    let mut b = String::from("<h2>Pipelines</h2><table><tr><th>pipeline</th><th>triggers</th><th>next scheduled</th><th>run now</th></tr>");
    for p in pipelines {
        let mut triggers = Vec::new();
        if let Some(c) = &p.cron {
            triggers.push(format!(
                "cron <code>{}</code> {} (overlap {:?}, catch-up {:?})",
                esc(&c.schedule),
                esc(&c.timezone),
                c.overlap,
                c.catch_up
            ));
        }
        if let Some(s) = &p.s3 {
            triggers.push(format!("put <code>{}</code>", esc(s)));
        }
        if p.webhook {
            triggers.push(format!("webhook <code>POST /hooks/{}</code>", esc(&p.name)));
        }
        if p.manual {
            triggers.push("manual".into());
        }
        let next = match p.cron.as_ref().and_then(|c| c.next.map(|n| (n, c.timezone.as_str()))) {
            Some((n, tz)) => match tz.parse::<chrono_tz::Tz>() {
                Ok(zone) if tz != "UTC" => {
                    format!(
                        "{} {tz}<div class=muted>{}</div>",
                        n.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S"),
                        when(n)
                    )
                }
                _ => when(n),
            },
            None => "<span class=muted>-</span>".into(),
        };
        let request_id = hex::encode(rand::random::<[u8; 12]>());
        let mut form = format!(
            "<form class=run method=post action=\"/pipelines/{0}/run\"><input type=hidden name=csrf value=\"{1}\">\
             <input type=hidden name=request_id value=\"{request_id}\">",
            esc(&p.name),
            esc(csrf)
        );
        if p.needs_input {
            let _ = write!(
                form,
                "<input name=input required placeholder=\"{0}\" title=\"{0}\">",
                esc(input_hint)
            );
        }
        if !p.params.is_empty() {
            let hint: Vec<String> = p.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = write!(form, "<input name=params placeholder=\"{}\">", esc(&hint.join(" ")));
        }
        if p.manual {
            let _ =
                write!(form, "<button type=submit data-pipeline=\"{}\">Run</button></form>", esc(&p.name));
        } else {
            form.push_str(
                "<button type=submit disabled title=\"manual = false in the spec\">Run</button></form>",
            );
        }
        let _ = write!(
            b,
            "<tr><td><b>{}</b><div class=muted>{}</div></td><td>{}</td><td>{next}</td><td>{form}</td></tr>",
            esc(&p.name),
            esc(&p.description),
            triggers.join("<br>")
        );
    }
    b.push_str("</table>");
    let _ = write!(b, "<div id=live data-src=\"/fragments/home\" data-every=2000>{fragment}</div>");
    layout("batchfan serve", &b)
}

/// The live part of the home page.
pub fn home_fragment(runs: &[RunRow], notices: &[Notice], alerts: &[AlertView]) -> String {
    let mut b = String::from("<h2>Runs</h2>");
    if runs.is_empty() {
        b.push_str("<p class=muted>No runs yet.</p>");
    } else {
        b.push_str("<table id=runs><tr><th>run</th><th>pipeline</th><th>state</th><th>trigger</th><th>children</th><th>started</th></tr>");
        for r in runs {
            let _ = write!(
                b,
                "<tr data-run=\"{0}\"><td><a class=mono href=\"/runs/{0}\">{0}</a></td><td>{1}</td><td>{2}</td><td>{3:?} <span class=\"muted mono\">{4}</span></td><td>{5}</td><td>{6}</td></tr>",
                esc(&r.run_id),
                esc(&r.pipeline),
                state_badge(r.state.as_str(), None),
                r.source,
                esc(&r.key),
                r.children.map_or_else(String::new, |c| c.to_string()),
                when_ms(r.created_at)
            );
        }
        b.push_str("</table>");
    }
    b.push_str("<h2>Alerts</h2>");
    if alerts.is_empty() {
        b.push_str("<p class=muted>No alerts.</p>");
    } else {
        b.push_str("<table id=alerts><tr><th>when</th><th>pipeline</th><th>alert</th></tr>");
        for a in alerts {
            let link = a
                .run_id
                .as_deref()
                .map_or_else(String::new, |r| format!(" <a class=mono href=\"/runs/{0}\">{0}</a>", esc(r)));
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}{link}</td></tr>",
                when_ms(a.published_at),
                esc(&a.pipeline),
                esc(a.subject.as_deref().unwrap_or("alert"))
            );
        }
        b.push_str("</table>");
    }
    if !notices.is_empty() {
        b.push_str("<h2>Trigger notices</h2><table id=notices><tr><th>when</th><th>pipeline</th><th>source</th><th>notice</th></tr>");
        for n in notices.iter().take(30) {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{:?}</td><td class={}>{}</td></tr>",
                when(n.at),
                esc(&n.pipeline),
                n.source,
                n.level,
                esc(&n.message)
            );
        }
        b.push_str("</table>");
    }
    b
}

/// One line about refused webhook requests (counted, never listed one by one), or nothing.
pub fn refused_webhooks(v: &RefusalsView) -> String {
    let Some(last) = v.last_at.filter(|_| v.total > 0) else { return String::new() };
    let reasons: Vec<String> =
        v.by_reason.iter().map(|c| format!("{} {}: {}", esc(&c.pipeline), esc(&c.reason), c.count)).collect();
    format!(
        "<p id=refused class=muted>refused webhook requests: {}, last at {} <span class=mono>({})</span></p>",
        v.total,
        when(last),
        reasons.join(", ")
    )
}

/// A run's page.
pub fn run_page(view: &RunView, fragment: &str) -> String {
    let body = format!(
        "<h2>Run <span class=mono>{0}</span> of {1}</h2><div id=live data-src=\"/fragments/runs/{0}\" data-every=1000>{fragment}</div>",
        esc(&view.row.run_id),
        esc(&view.row.pipeline)
    );
    layout(&format!("run {}", view.row.run_id), &body)
}

fn grid(b: &mut String, stage: &StageView) {
    let counts: Vec<String> = stage.counts.iter().map(|(k, v)| format!("{v} {}", k.to_lowercase())).collect();
    let _ = write!(
        b,
        "<div class=stage data-stage=\"{0}\"><b>{0}</b> <span class=counts>{1} child(ren): {2}</span><div class=grid>",
        esc(&stage.name),
        stage.children.len(),
        esc(&counts.join(", "))
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

fn failed_child(b: &mut String, f: &FailedChild) {
    let _ = write!(
        b,
        "<div class=failed-child><b>{}[{}]</b> <span class=mono>{}</span>: exit {} — {}",
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

/// The live part of a run's page.
pub fn run_fragment(v: &RunView) -> String {
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
        grid(&mut b, s);
    }
    if v.failed_count > 0 {
        let _ = write!(b, "<h2>Failed children ({})</h2>", v.failed_count);
        for f in &v.failed_children {
            failed_child(&mut b, f);
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

/// A small page for errors of the forms.
pub fn error_page(status: u16, message: &str) -> String {
    layout(
        &format!("{status}"),
        &format!("<h2>{status}</h2><p class=error>{}</p><p><a href=\"/\">back</a></p>", esc(message)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(esc("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn a_grid_has_one_cell_per_child_in_its_state() {
        let stage = StageView {
            name: "a".into(),
            children: vec!["SUCCEEDED".into(), "FAILED".into(), "NOT_SUBMITTED".into()],
            counts: [("SUCCEEDED".into(), 1), ("FAILED".into(), 1), ("NOT_SUBMITTED".into(), 1)].into(),
        };
        let mut b = String::new();
        grid(&mut b, &stage);
        assert_eq!(b.matches("<i class=").count(), 3);
        assert!(b.contains("class=\"s-FAILED\" title=\"a[1] FAILED\""), "{b}");
    }
}
