//! The Jobs view's HTML: the list of jobs submitted through `--batch-api`
//! (filter form by queue and status, a live table), and a job's page (its
//! attempts with their log tails, an array's children). Like the other pages:
//! rendered here, the live part re-fetched by [`super::assets`]' script, no
//! inline script or style (the CSP forbids both), so the array progress bar is
//! made of cells, like a run's grid.

use std::{collections::BTreeMap, fmt::Write};

use super::{
    jobs::{JobList, JobPage, JobRow},
    page::{esc, layout, state_badge, when_ms},
};
use crate::batch::JobStatus;

/// Cells of an array job's progress bar (fewer for a smaller array: one per child).
const BAR_CELLS: u32 = 20;
/// The order of the bar's cells and counts: done first.
const BAR_ORDER: [JobStatus; 7] = [
    JobStatus::Succeeded,
    JobStatus::Failed,
    JobStatus::Running,
    JobStatus::Starting,
    JobStatus::Runnable,
    JobStatus::Pending,
    JobStatus::Submitted,
];

/// The page shown when serve runs without `--batch-api`.
pub fn not_served() -> String {
    layout(
        "jobs",
        "<h2>Jobs</h2><p class=muted>The AWS Batch API is not served by this process: start \
         <code>batchfan serve … --batch-api</code> to submit jobs with aws-sdk-batch, boto3 or the AWS CLI \
         and see them here.</p>",
    )
}

/// How many of `cells` each status gets, by largest remainder (a status with a child gets at least one).
pub fn bar_cells(summary: &BTreeMap<JobStatus, u32>, size: u32) -> Vec<JobStatus> {
    let cells = size.clamp(1, BAR_CELLS);
    let total: u32 = summary.values().sum::<u32>().max(1);
    let mut shares: Vec<(JobStatus, u32, u64)> = BAR_ORDER
        .iter()
        .filter_map(|s| summary.get(s).filter(|n| **n > 0).map(|n| (*s, *n)))
        .map(|(s, n)| {
            let exact = u64::from(n) * u64::from(cells);
            (s, ((exact / u64::from(total)) as u32).max(1), exact % u64::from(total))
        })
        .collect();
    while shares.iter().map(|s| s.1).sum::<u32>() > cells {
        // Too many after the minimum of one: take from the largest share.
        if let Some(max) = shares.iter_mut().max_by_key(|s| s.1) {
            max.1 -= 1;
        }
    }
    while shares.iter().map(|s| s.1).sum::<u32>() < cells && !shares.is_empty() {
        let i = (0..shares.len()).max_by_key(|&i| (shares[i].2, std::cmp::Reverse(i))).unwrap_or(0);
        shares[i].1 += 1;
        shares[i].2 = 0;
    }
    shares.iter().flat_map(|(s, n, _)| std::iter::repeat_n(*s, *n as usize)).collect()
}

/// An array job's progress: a bar and the counts (`3/10 done: 2 succeeded, 1 failed, 7 running`).
fn progress(row: &JobRow) -> String {
    let Some(size) = row.array_size else { return "<span class=muted>-</span>".into() };
    let done: u32 =
        [JobStatus::Succeeded, JobStatus::Failed].iter().filter_map(|s| row.status_summary.get(s)).sum();
    let counts: Vec<String> = BAR_ORDER
        .iter()
        .filter_map(|s| {
            row.status_summary
                .get(s)
                .filter(|n| **n > 0)
                .map(|n| format!("{n} {}", s.as_str().to_lowercase()))
        })
        .collect();
    let mut b = String::from("<span class=bar>");
    for s in bar_cells(&row.status_summary, size) {
        let _ = write!(b, "<i class=s-{}></i>", s.as_str());
    }
    let _ = write!(b, "</span> <span class=progress>{done}/{size} done: {}</span>", counts.join(", "));
    b
}

fn time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "<span class=muted>-</span>".into(), when_ms)
}

/// The list page: the filter form and the live table.
pub fn list_page(list: &JobList, fragment: &str, query: &str) -> String {
    let mut b = String::from("<h2>Jobs</h2><form class=filter method=get action=\"/jobs\"><label>queue <select name=queue><option value=\"\">all queues</option>");
    for q in &list.queues {
        let sel = if list.queue.as_deref() == Some(q.as_str()) { " selected" } else { "" };
        let _ = write!(b, "<option value=\"{0}\"{sel}>{0}</option>", esc(q));
    }
    b.push_str(
        "</select></label> <label>status <select name=status><option value=\"\">all statuses</option>",
    );
    for s in JobStatus::ALL {
        let sel = if list.status == Some(s) { " selected" } else { "" };
        let _ = write!(b, "<option{sel}>{}</option>", s.as_str());
    }
    b.push_str("</select></label> <button type=submit>Filter</button></form>");
    let src =
        if query.is_empty() { "/fragments/jobs".to_owned() } else { format!("/fragments/jobs?{query}") };
    let _ = write!(b, "<div id=live data-src=\"{}\" data-every=2000>{fragment}</div>", esc(&src));
    layout("jobs", &b)
}

/// The live table of the list.
pub fn list_fragment(list: &JobList) -> String {
    if list.queues.is_empty() {
        return "<p class=muted>No job queue yet: create one with CreateJobQueue through the Batch API.</p>"
            .into();
    }
    if list.jobs.is_empty() {
        return "<p class=muted>No jobs match.</p>".into();
    }
    let mut b = String::new();
    if list.total > list.jobs.len() {
        let _ = write!(
            b,
            "<p class=muted>The newest {} of {} jobs: filter by queue or status to see others.</p>",
            list.jobs.len(),
            list.total
        );
    }
    b.push_str("<table id=jobs><tr><th>name</th><th>job id</th><th>queue</th><th>status</th><th>array</th><th>created</th><th>started</th><th>stopped</th><th>attempts</th></tr>");
    for j in &list.jobs {
        let _ = write!(
            b,
            "<tr data-job=\"{id}\"><td><a href=\"{url}\">{name}</a></td><td class=mono>{id}</td><td>{queue}</td><td>{status}</td><td>{progress}</td><td>{created}</td><td>{started}</td><td>{stopped}</td><td>{attempts}</td></tr>",
            id = esc(&j.job_id),
            url = esc(&j.url),
            name = esc(&j.job_name),
            queue = esc(&j.queue),
            status = state_badge(j.status.as_str(), None),
            progress = progress(j),
            created = when_ms(j.created_at),
            started = time(j.started_at),
            stopped = time(j.stopped_at),
            // An array job has no attempts of its own (its children do), as on AWS.
            attempts = if j.array_size.is_some() { "-".to_owned() } else { j.attempts.to_string() },
        );
    }
    b.push_str("</table>");
    b
}

/// A job's page.
pub fn job_page(p: &JobPage, fragment: &str) -> String {
    let mut b = format!(
        "<h2>Job {} <span class=\"mono muted\">{}</span></h2><p><a href=\"/jobs\">all jobs</a>",
        esc(&p.row.job_name),
        esc(&p.row.job_id)
    );
    if let Some(parent) = &p.parent {
        let _ = write!(b, " · array job <a class=mono id=parent href=\"/jobs/{0}\">{0}</a>", esc(parent));
    }
    let _ = write!(
        b,
        "</p><div id=live data-src=\"/fragments/jobs/{}\" data-every=1000>{fragment}</div>",
        esc(&p.row.job_id)
    );
    layout(&format!("job {}", p.row.job_id), &b)
}

/// The live part of a job's page.
pub fn job_fragment(p: &JobPage) -> String {
    let r = &p.row;
    let mut b = format!(
        "<div data-terminal=\"{}\"><p>{}",
        r.status.is_terminal(),
        state_badge(r.status.as_str(), Some("job-status"))
    );
    if let Some(reason) = &r.status_reason {
        let _ = write!(b, " <span id=status-reason>{}</span>", esc(reason));
    }
    b.push_str("</p><table class=props>");
    let deps: Vec<String> =
        p.depends_on.iter().map(|d| format!("<a class=mono href=\"/jobs/{0}\">{0}</a>", esc(d))).collect();
    // As the console shows it: a JSON array, so that arguments with spaces stay whole.
    let command = serde_json::to_string(&p.command).unwrap_or_default();
    for (k, v) in [
        ("queue", esc(&r.queue)),
        ("job definition", format!("<code>{}</code>", esc(&p.job_definition))),
        ("image", format!("<code>{}</code>", esc(&p.image))),
        ("command", format!("<code>{}</code>", esc(&command))),
        (
            "array",
            if r.array_size.is_some() {
                progress(r)
            } else {
                r.array_index.map_or_else(|| "-".into(), |i| format!("child {i}"))
            },
        ),
        ("depends on", if deps.is_empty() { "-".into() } else { deps.join(" ") }),
        ("created", when_ms(r.created_at)),
        ("started", time(r.started_at)),
        ("stopped", time(r.stopped_at)),
    ] {
        let _ = write!(b, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    b.push_str("</table>");
    if !p.attempts.is_empty() {
        b.push_str("<h2>Attempts</h2><table id=attempts><tr><th>#</th><th>exit code</th><th>reason</th><th>status reason</th><th>started</th><th>stopped</th><th>log stream</th></tr>");
        for a in &p.attempts {
            let _ = write!(
                b,
                "<tr data-attempt={}><td>{0}</td><td class=exit-code>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=mono>{}</td></tr>",
                a.number,
                a.exit_code.map_or_else(|| "-".into(), |c| c.to_string()),
                esc(a.reason.as_deref().unwrap_or("-")),
                esc(a.status_reason.as_deref().unwrap_or("-")),
                time(a.started_at),
                time(a.stopped_at),
                esc(a.log_stream_name.as_deref().unwrap_or("-")),
            );
        }
        b.push_str("</table>");
        for a in p.attempts.iter().rev() {
            let _ = write!(b, "<h3>Log of attempt {}</h3>", a.number);
            if a.log_tail.is_empty() {
                b.push_str("<p class=muted>No output.</p>");
            } else {
                let _ = write!(b, "<pre class=log data-attempt={}>{}</pre>", a.number, esc(&a.log_tail));
            }
        }
    }
    if !p.children.is_empty() {
        let _ = write!(b, "<h2>Child jobs ({})</h2><table id=children><tr><th>index</th><th>job id</th><th>status</th><th>exit code</th><th>attempts</th><th>started</th><th>stopped</th></tr>", r.array_size.unwrap_or(0));
        for c in &p.children {
            let _ = write!(
                b,
                "<tr data-job=\"{id}\"><td>{}</td><td><a class=mono href=\"{}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                c.array_index.unwrap_or(0),
                esc(&c.url),
                state_badge(c.status.as_str(), None),
                c.exit_code.map_or_else(|| "-".into(), |e| e.to_string()),
                c.attempts,
                time(c.started_at),
                time(c.stopped_at),
                id = esc(&c.job_id),
            );
        }
        b.push_str("</table>");
    }
    b.push_str("</div>");
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(pairs: &[(JobStatus, u32)]) -> BTreeMap<JobStatus, u32> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn the_bar_has_one_cell_per_child_of_a_small_array() {
        let cells = bar_cells(&summary(&[(JobStatus::Succeeded, 3), (JobStatus::Failed, 1)]), 4);
        assert_eq!(
            cells,
            [JobStatus::Succeeded, JobStatus::Succeeded, JobStatus::Succeeded, JobStatus::Failed]
        );
    }

    #[test]
    fn a_large_array_keeps_twenty_cells_and_a_lone_failure_shows() {
        let cells = bar_cells(&summary(&[(JobStatus::Succeeded, 9_999), (JobStatus::Failed, 1)]), 10_000);
        assert_eq!(cells.len(), 20);
        assert_eq!(cells.iter().filter(|s| **s == JobStatus::Failed).count(), 1, "{cells:?}");
        let even = bar_cells(&summary(&[(JobStatus::Running, 50), (JobStatus::Pending, 50)]), 100);
        assert_eq!(even.iter().filter(|s| **s == JobStatus::Running).count(), 10);
    }

    #[test]
    fn progress_counts_the_done_children() {
        let row = JobRow {
            job_id: "j".into(),
            job_name: "n".into(),
            queue: "q".into(),
            status: JobStatus::Running,
            status_reason: None,
            created_at: 0,
            started_at: None,
            stopped_at: None,
            attempts: 0,
            exit_code: None,
            array_size: Some(10),
            array_index: None,
            status_summary: summary(&[
                (JobStatus::Succeeded, 2),
                (JobStatus::Failed, 1),
                (JobStatus::Running, 7),
            ]),
            url: "/jobs/j".into(),
        };
        let html = progress(&row);
        assert!(html.contains("3/10 done: 2 succeeded, 1 failed, 7 running"), "{html}");
        assert_eq!(html.matches("<i class=").count(), 10);
    }
}
