//! The history grid (`/history`), like Airflow's grid view: per pipeline, its
//! latest runs as columns (oldest left) and its stages, aggregation and
//! cleanup as rows, each cell the state of that stage in that run, linked to
//! the run's page. One DescribeJobs of a run's jobs per column.

use std::fmt::Write;

use serde::Serialize;

use super::{
    page::{esc, layout, state_badge, when_ms},
    run_view::NOT_SUBMITTED,
    source::Source,
    view::ViewError,
};
use crate::{
    batch::JobStatus,
    run::{timings, RunRecord, RunStore},
};

/// Runs per pipeline in the grid.
pub const HISTORY_RUNS: usize = 25;

/// One run's column.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRun {
    pub run_id: String,
    pub state: String,
    pub created_at: i64,
    /// One state per row of [`PipelineHistory::rows`].
    pub cells: Vec<String>,
}

/// One pipeline's grid.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineHistory {
    pub pipeline: String,
    /// Stage names, then `aggregation` and `cleanup`.
    pub rows: Vec<String>,
    /// Oldest first.
    pub runs: Vec<HistoryRun>,
}

/// The state of a stage from its shards' states: a failure wins, then work in
/// progress, then the least advanced waiting state; all succeeded is SUCCEEDED.
pub fn combine(states: &[JobStatus]) -> String {
    use JobStatus::*;
    let order = [Failed, Running, Starting, Runnable, Pending, Submitted, Succeeded];
    order
        .iter()
        .find(|s| states.contains(*s))
        .map_or_else(|| NOT_SUBMITTED.to_owned(), |s| s.as_str().to_owned())
}

/// The grid of every served pipeline.
pub async fn history(source: &Source) -> Result<Vec<PipelineHistory>, ViewError> {
    let batch = &source.batch;
    let mut out = Vec::new();
    for spec in source.specs() {
        let store = RunStore::new(source.table.as_ref(), &spec.storage.table);
        let store_error = |source| ViewError::Store { table: spec.storage.table.clone(), source };
        let ids = store.list_runs(Some(&spec.name)).await.map_err(store_error)?;
        let mut rows: Vec<String> = spec.stages.iter().map(|s| s.name.clone()).collect();
        rows.extend(["aggregation".to_owned(), "cleanup".to_owned()]);
        let mut runs = Vec::new();
        for id in ids.iter().take(HISTORY_RUNS) {
            let Some(rec) = store.get(id).await.map_err(store_error)? else { continue };
            let ids: Vec<String> = rec.jobs.values().cloned().collect();
            let details = batch
                .describe_jobs(&ids)
                .await
                .map_err(|source| ViewError::Batch { run_id: rec.run_id.clone(), source })?;
            let status_of = |job_id: &str| details.iter().find(|d| d.job_id == job_id).map(|d| d.status);
            runs.push(column(&rec, &rows, status_of));
        }
        runs.reverse();
        out.push(PipelineHistory { pipeline: spec.name.clone(), rows, runs });
    }
    Ok(out)
}

/// One run's column from its jobs' statuses.
fn column(rec: &RunRecord, rows: &[String], status_of: impl Fn(&str) -> Option<JobStatus>) -> HistoryRun {
    let jobs = timings::jobs_through(rec, rec.attempt());
    let cells = rows
        .iter()
        .map(|row| {
            let of_row = |j: &&timings::RunJob| {
                &j.stage == row || (row == "cleanup" && j.stage.starts_with("cleanup"))
            };
            // The latest attempt that ran the row.
            let latest = jobs.iter().filter(of_row).map(|j| j.attempt).max().unwrap_or(1);
            let states: Vec<JobStatus> = jobs
                .iter()
                .filter(of_row)
                .filter(|j| j.attempt == latest)
                .filter_map(|j| status_of(&j.job_id))
                .collect();
            combine(&states)
        })
        .collect();
    HistoryRun {
        run_id: rec.run_id.clone(),
        state: rec.state.as_str().to_owned(),
        created_at: rec.created_at,
        cells,
    }
}

/// The history page; `fragment` is its live part.
pub fn page(fragment: &str) -> String {
    layout(
        "batchfan serve: history",
        &format!(
            "<h2>History</h2><div id=live data-src=\"/fragments/history\" data-every=5000>{fragment}</div>"
        ),
    )
}

/// The live part: one grid per pipeline, or the error that kept it from being read.
pub fn fragment(history: &Result<Vec<PipelineHistory>, ViewError>) -> String {
    let grids = match history {
        Ok(g) => g,
        Err(e) => return format!("<p class=error id=store-error>{}</p>", esc(&e.to_string())),
    };
    let mut b = String::new();
    for p in grids {
        let _ = write!(b, "<h3>{}</h3>", esc(&p.pipeline));
        if p.runs.is_empty() {
            b.push_str("<p class=muted>No runs yet.</p>");
            continue;
        }
        let _ = write!(b, "<table class=history data-pipeline=\"{}\"><tr><th></th>", esc(&p.pipeline));
        for r in &p.runs {
            let _ = write!(
                b,
                "<th><a href=\"/runs/{0}\" title=\"{0} {1} {2}\">{3}</a></th>",
                esc(&r.run_id),
                esc(&r.state),
                when_ms(r.created_at),
                state_badge(&r.state, None)
            );
        }
        b.push_str("</tr>");
        for (i, row) in p.rows.iter().enumerate() {
            let _ = write!(b, "<tr><th>{}</th>", esc(row));
            for r in &p.runs {
                let cell = r.cells.get(i).map_or(NOT_SUBMITTED, String::as_str);
                let _ = write!(
                    b,
                    "<td><a class=\"h s-{0}\" href=\"/runs/{1}\" title=\"{2} in {1}: {0}\"></a></td>",
                    esc(cell),
                    esc(&r.run_id),
                    esc(row)
                );
            }
            b.push_str("</tr>");
        }
        b.push_str("</table>");
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_is_failed_if_a_shard_failed_running_if_one_runs_and_succeeded_if_all_did() {
        use JobStatus::*;
        assert_eq!(combine(&[Succeeded, Failed, Running]), "FAILED");
        assert_eq!(combine(&[Succeeded, Running]), "RUNNING");
        assert_eq!(combine(&[Succeeded, Pending]), "PENDING");
        assert_eq!(combine(&[Succeeded, Succeeded]), "SUCCEEDED");
        assert_eq!(combine(&[]), NOT_SUBMITTED);
    }

    #[test]
    fn the_grid_has_a_cell_per_stage_and_run_and_shows_a_store_error_instead_of_no_runs() {
        let grid = PipelineHistory {
            pipeline: "p".into(),
            rows: vec!["a".into(), "aggregation".into()],
            runs: vec![HistoryRun {
                run_id: "r1".into(),
                state: "FAILED".into(),
                created_at: 0,
                cells: vec!["FAILED".into(), NOT_SUBMITTED.into()],
            }],
        };
        let html = fragment(&Ok(vec![grid]));
        assert_eq!(html.matches("class=\"h s-").count(), 2, "{html}");
        assert!(html.contains("class=\"h s-FAILED\" href=\"/runs/r1\""), "{html}");
        let err = ViewError::Store {
            table: "batchfan".into(),
            source: crate::error::PortError::backend("disk I/O error"),
        };
        let html = fragment(&Err(err));
        assert!(html.contains("id=store-error") && html.contains("disk I/O error"), "{html}");
        assert!(!html.contains("No runs yet"), "{html}");
    }
}
