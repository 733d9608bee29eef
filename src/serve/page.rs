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
    view::{AlertView, PipelineView, RunsListing},
};

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

pub(super) fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>{}</title><link rel=stylesheet href=\"{CSS_PATH}\"></head><body><h1><a href=\"/\">batchfan serve</a></h1>\
         <nav><a href=\"/\">Pipelines</a> <a href=\"/history\" id=nav-history>History</a> <a href=\"/jobs\" id=nav-jobs>Jobs</a></nav>{body}\
         <script src=\"{JS_PATH}\"></script></body></html>",
        esc(title)
    )
}

/// `2026-12-02 19:20:01 UTC`.
pub(super) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub(super) fn state_badge(state: &str, id: Option<&str>) -> String {
    let id = id.map(|i| format!(" id=\"{i}\"")).unwrap_or_default();
    format!("<span class=\"state state-{0}\"{id}>{0}</span>", esc(state))
}

/// What the home page offers to start a run of a pipeline.
pub enum RunControl<'a> {
    /// The Run button: a form with the page's token; `input_hint` says which inputs it takes.
    Button { csrf: &'a str, input_hint: &'a str },
    /// No button: this note instead (a read-only view of a deployed pipeline).
    Note(&'a str),
}

/// The home page: pipelines with their Run buttons (or the note in their
/// place), then the live runs, notices and alerts.
pub fn home(pipelines: &[PipelineView], run: &RunControl<'_>, fragment: &str) -> String {
    let mut b = String::from("<h2>Pipelines</h2>");
    if let RunControl::Note(note) = run {
        let _ = write!(b, "<p class=warn id=read-only>{}</p>", esc(note));
    }
    b.push_str("<table><tr><th>pipeline</th><th>triggers</th><th>next scheduled</th><th>run now</th></tr>");
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
            triggers.push(match run {
                RunControl::Button { .. } => format!("webhook <code>POST /hooks/{}</code>", esc(&p.name)),
                RunControl::Note(_) => "webhook (the Lambda's Function URL)".to_owned(),
            });
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
        let form = match run {
            RunControl::Button { csrf, input_hint } => run_form(p, csrf, input_hint),
            RunControl::Note(_) => "<span class=muted>-</span>".to_owned(),
        };
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

/// The Run button's form of one pipeline.
fn run_form(p: &PipelineView, csrf: &str, input_hint: &str) -> String {
    let request_id = hex::encode(rand::random::<[u8; 12]>());
    let mut form = format!(
            "<form class=run method=post action=\"/pipelines/{0}/run\"><input type=hidden name=csrf value=\"{1}\">\
             <input type=hidden name=request_id value=\"{request_id}\">",
            esc(&p.name),
            esc(csrf)
        );
    if p.needs_input {
        let _ =
            write!(form, "<input name=input required placeholder=\"{0}\" title=\"{0}\">", esc(input_hint));
    }
    if !p.params.is_empty() {
        let hint: Vec<String> = p.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(form, "<input name=params placeholder=\"{}\">", esc(&hint.join(" ")));
    }
    if p.manual {
        let _ = write!(form, "<button type=submit data-pipeline=\"{}\">Run</button></form>", esc(&p.name));
    } else {
        form.push_str(
            "<button type=submit disabled title=\"manual = false in the spec\">Run</button></form>",
        );
    }
    form
}

/// The live part of the home page; `alerts` is `None` where they cannot be
/// read back (SNS keeps no messages).
pub fn home_fragment(listing: &RunsListing, notices: &[Notice], alerts: Option<&[AlertView]>) -> String {
    let mut b = String::from("<h2>Runs</h2>");
    let runs = &listing.runs;
    if !listing.errors.is_empty() {
        b.push_str("<div class=error id=store-error>");
        for e in &listing.errors {
            let _ = write!(b, "<p>{}</p>", esc(e));
        }
        b.push_str("</div>");
    }
    if runs.is_empty() && listing.errors.is_empty() {
        b.push_str("<p class=muted>No runs yet.</p>");
    } else if !runs.is_empty() {
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
    match alerts {
        None => b.push_str("<p class=muted id=alerts-elsewhere>Alerts go to the pipeline's alerts topic (SNS), which keeps no messages to list here: subscribe to it (e-mail, SQS) to receive them.</p>"),
        Some([]) => b.push_str("<p class=muted>No alerts.</p>"),
        Some(alerts) => alerts_table(&mut b, alerts),
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

/// The alerts, newest first.
fn alerts_table(b: &mut String, alerts: &[AlertView]) {
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
}

#[cfg(test)]
mod listing_tests {
    use super::*;

    #[test]
    fn a_store_that_cannot_be_read_shows_its_error_not_no_runs_yet() {
        let listing = RunsListing {
            runs: Vec::new(),
            errors: vec!["cannot read the run records in table batchfan: database is locked".into()],
        };
        let html = home_fragment(&listing, &[], Some(&[]));
        assert!(html.contains("id=store-error") && html.contains("database is locked"), "{html}");
        assert!(!html.contains("No runs yet"), "{html}");
        let html = home_fragment(&RunsListing::default(), &[], Some(&[]));
        assert!(html.contains("No runs yet") && !html.contains("store-error"), "{html}");
    }
}
