//! When a run's jobs ran: each child's created/started/stopped times (AWS's
//! `createdAt`/`startedAt`/`stoppedAt`, from DescribeJobs and ListJobs, or the
//! local engine's database), and per stage the duration, the queue wait and
//! the slowest children. `batchfan status RUN` and the status page show them.
//!
//! Pure but for [`collect`], which asks the Batch port; `batchfan status` on
//! the embedded backend reads the same figures with
//! [`crate::engine::peek::child_times`] (the engine's lock belongs to the
//! process that runs it).
//!
//! Queue wait is `startedAt − createdAt`, as AWS reports both: for a stage
//! after the first it includes the wait for the previous stage (its jobs are
//! created when the run is submitted, and stay PENDING on their dependencies).

use std::collections::BTreeMap;

use serde::Serialize;

use super::RunRecord;
pub use crate::batch::ChildTime;
use crate::{
    batch::{Batch, JobQuery, JobStatus},
    error::PortResult,
    graph,
};

/// Slowest children listed per stage.
pub const SLOWEST: usize = 5;

/// One job of a run: a shard of a stage, the aggregation or the cleanup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunJob {
    /// Stage name, `aggregation`, `cleanup` or `cleanup after failure`.
    pub stage: String,
    pub job_id: String,
    /// Global index of its first child.
    pub first_child: u64,
    pub children: u64,
    /// A retry attempt's array: the global index of each child (its rerun
    /// list); `None`: children `first_child..first_child + children`.
    pub globals: Option<Vec<u64>>,
    /// The attempt that submitted it (from 1).
    pub attempt: u32,
}

impl RunJob {
    pub fn is_array(&self) -> bool {
        self.children >= 2
    }

    /// The global index of its child `i`.
    pub fn global(&self, i: u64) -> u64 {
        match &self.globals {
            Some(g) => g.get(i as usize).copied().unwrap_or(u64::MAX),
            None => self.first_child + i,
        }
    }

    /// Its child's position for global index `index`, if it runs that child.
    pub fn position(&self, index: u64) -> Option<u64> {
        match &self.globals {
            Some(g) => g.iter().position(|&x| x == index).map(|p| p as u64),
            None => (self.first_child..self.first_child + self.children)
                .contains(&index)
                .then(|| index - self.first_child),
        }
    }
}

/// The jobs of attempt `attempt` of a run (1: the first; see [`run_jobs`]):
/// its retry arrays with their children's global indices (when the record
/// keeps them, [`crate::run::retry::RetryPlan::ranges`]), its aggregation and cleanup.
pub fn attempt_jobs(rec: &RunRecord, attempt: u32) -> Vec<RunJob> {
    if attempt <= 1 {
        return run_jobs(rec);
    }
    let Some(plan) = rec.retry.iter().chain(&rec.past_retries).find(|p| p.attempt == attempt) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for shard in &plan.shards {
        let Some(id) = rec.jobs.get(&shard.name) else { continue };
        let globals = plan.globals(shard);
        out.push(RunJob {
            stage: rec.stages.get(shard.stage).cloned().unwrap_or_default(),
            job_id: id.clone(),
            first_child: globals.as_ref().and_then(|g| g.first().copied()).unwrap_or(u64::MAX),
            children: shard.size,
            globals: Some(globals.unwrap_or_default()),
            attempt,
        });
    }
    let prefix = crate::run::retry::job_prefix(&rec.pipeline, &rec.run_id, attempt);
    finish_jobs(rec, &prefix, attempt, &mut out);
    out
}

/// Every attempt's jobs up to `attempt`, oldest first: what a later attempt
/// ran replaces what an earlier one did for the same child.
pub fn jobs_through(rec: &RunRecord, attempt: u32) -> Vec<RunJob> {
    (1..=attempt.max(1)).flat_map(|a| attempt_jobs(rec, a)).collect()
}

fn finish_jobs(rec: &RunRecord, prefix: &str, attempt: u32, out: &mut Vec<RunJob>) {
    let plain = |stage: &str, id: &String| RunJob {
        stage: stage.to_owned(),
        job_id: id.clone(),
        first_child: 0,
        children: 1,
        globals: None,
        attempt,
    };
    let name = |suffix: &str| format!("{prefix}{suffix}");
    if let Some(id) = rec.jobs.get(&name("aggregate")) {
        out.push(plain("aggregation", id));
    }
    match (rec.jobs.get(&name("cleanup-onfailure")), rec.jobs.get(&name("cleanup"))) {
        (Some(id), _) => out.push(plain("cleanup after failure", id)),
        (None, Some(id)) => out.push(plain("cleanup", id)),
        (None, None) => {}
    }
}

/// A run's submitted jobs, from its record (no spec needed): stage shards in
/// stage order, then the aggregation and the cleanup that ran (the cleanup
/// after a failure when there is one).
pub fn run_jobs(rec: &RunRecord) -> Vec<RunJob> {
    let name = |suffix: &str| graph::job_name(&rec.pipeline, &rec.run_id, suffix);
    let mut out = Vec::new();
    if let Some(sizing) = rec.sizing {
        for stage in &rec.stages {
            for j in 0..sizing.shards {
                let range = sizing.shard_range(j);
                let Some(id) = rec.jobs.get(&name(&format!("{stage}-{j}"))) else { continue };
                out.push(RunJob {
                    stage: stage.clone(),
                    job_id: id.clone(),
                    first_child: range.start,
                    children: range.end - range.start,
                    globals: None,
                    attempt: 1,
                });
            }
        }
    }
    finish_jobs(rec, &name(""), 1, &mut out);
    out
}

/// Each job's children (one entry for a plain job), by job id, from the Batch port.
pub async fn collect(batch: &dyn Batch, jobs: &[RunJob]) -> PortResult<BTreeMap<String, Vec<ChildTime>>> {
    let mut out = BTreeMap::new();
    let plain: Vec<String> = jobs.iter().filter(|j| !j.is_array()).map(|j| j.job_id.clone()).collect();
    for d in batch.describe_jobs(&plain).await? {
        let exit_code = d.attempts.last().and_then(|a| a.exit_code);
        let t = ChildTime {
            job_id: d.job_id.clone(),
            index: 0,
            status: d.status,
            created_at: d.created_at,
            started_at: d.started_at,
            stopped_at: d.stopped_at,
            exit_code,
        };
        out.insert(d.job_id, vec![t]);
    }
    for job in jobs.iter().filter(|j| j.is_array()) {
        let q = JobQuery::ArrayChildren { array_job_id: job.job_id.clone(), status: None };
        let mut children: Vec<ChildTime> = batch
            .list_jobs(&q)
            .await?
            .into_iter()
            .filter_map(|c| {
                Some(ChildTime {
                    index: c.array_properties.as_ref()?.index?,
                    job_id: c.job_id,
                    status: c.status,
                    created_at: c.created_at,
                    started_at: c.started_at,
                    stopped_at: c.stopped_at,
                    exit_code: c.exit_code,
                })
            })
            .collect();
        children.sort_by_key(|c| c.index);
        out.insert(job.job_id.clone(), children);
    }
    Ok(out)
}

/// Median and longest of some durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Spread {
    pub median_ms: i64,
    pub max_ms: i64,
}

impl Spread {
    fn of(mut v: Vec<i64>) -> Option<Spread> {
        v.sort_unstable();
        let max_ms = *v.last()?;
        Some(Spread { median_ms: v[(v.len() - 1) / 2], max_ms })
    }
}

/// One of the slowest children of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlowChild {
    /// Global child index.
    pub index: u64,
    pub job_id: String,
    pub status: JobStatus,
    pub run_ms: i64,
}

/// A stage's (or the aggregation's, the cleanup's) timings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageTimings {
    pub stage: String,
    pub children: u64,
    /// Children that started.
    pub started: u64,
    /// When its jobs were created (submitted).
    pub created_at: Option<i64>,
    pub first_started_at: Option<i64>,
    /// When its last child stopped; `None` while one still runs or waits.
    pub last_stopped_at: Option<i64>,
    /// First start to last stop (to now while it runs).
    pub duration_ms: Option<i64>,
    /// `startedAt − createdAt` of its children that started.
    pub queue_wait: Option<Spread>,
    /// How long its children ran.
    pub run_time: Option<Spread>,
    /// The longest-running children, longest first.
    pub slowest: Vec<SlowChild>,
}

/// A child and its global index.
type Placed<'a> = (u64, &'a ChildTime);

/// Per stage timings of a run's jobs, in the order of `jobs`; `now` measures what still runs.
pub fn stage_timings(
    jobs: &[RunJob],
    times: &BTreeMap<String, Vec<ChildTime>>,
    now: i64,
) -> Vec<StageTimings> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_stage: BTreeMap<&str, (u64, Vec<Placed<'_>>)> = BTreeMap::new();
    for job in jobs {
        if !by_stage.contains_key(job.stage.as_str()) {
            order.push(&job.stage);
        }
        let entry = by_stage.entry(&job.stage).or_default();
        entry.0 += job.children;
        for c in times.get(&job.job_id).into_iter().flatten() {
            entry.1.push((job.global(u64::from(c.index)), c));
        }
    }
    order
        .into_iter()
        .map(|stage| {
            let (children, list) = &by_stage[stage];
            let ran: Vec<&(u64, &ChildTime)> = list.iter().filter(|(_, c)| c.started_at.is_some()).collect();
            let first_started_at = ran.iter().filter_map(|(_, c)| c.started_at).min();
            let all_done = list.len() as u64 == *children && list.iter().all(|(_, c)| c.status.is_terminal());
            let last_stopped_at =
                if all_done { list.iter().filter_map(|(_, c)| c.stopped_at).max() } else { None };
            let duration_ms = first_started_at.map(|s| last_stopped_at.unwrap_or(now).max(s) - s);
            let mut slowest: Vec<SlowChild> = ran
                .iter()
                .filter_map(|(g, c)| {
                    Some(SlowChild {
                        index: *g,
                        job_id: c.job_id.clone(),
                        status: c.status,
                        run_ms: c.run_ms(now)?,
                    })
                })
                .collect();
            slowest.sort_by(|a, b| b.run_ms.cmp(&a.run_ms).then(a.index.cmp(&b.index)));
            let run_time = Spread::of(slowest.iter().map(|s| s.run_ms).collect());
            slowest.truncate(SLOWEST);
            StageTimings {
                stage: stage.to_owned(),
                children: *children,
                started: ran.len() as u64,
                created_at: list.iter().map(|(_, c)| c.created_at).min(),
                first_started_at,
                last_stopped_at,
                duration_ms,
                queue_wait: Spread::of(
                    ran.iter().filter_map(|(_, c)| Some(c.started_at? - c.created_at)).collect(),
                ),
                run_time,
                slowest,
            }
        })
        .collect()
}

/// `1.2 s`, `3 min 05 s`, `2 h 01 min`: a duration for people.
pub fn human_ms(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} min {:02} s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{} h {:02} min", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

#[cfg(test)]
#[path = "timings_tests.rs"]
mod tests;
