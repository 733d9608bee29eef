//! Where the status pages read runs and jobs from: the served pipelines'
//! specs, the table of their run records, Batch, the jobs' logs and the
//! alerts — the embedded backend of `batchfan serve`, or a pipeline deployed
//! on AWS (`batchfan serve --backend aws`: DynamoDB, DescribeJobs/ListJobs,
//! CloudWatch Logs). The page and API handlers read only through this, so both
//! show the same pages.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use serde::Serialize;

use crate::{
    aws::job_logs::CloudWatchLogs, batch::Batch, error::PortResult, run::LogTail, spec::PipelineSpec,
    table::Table, topic::bus::Bus,
};

/// Bytes of a log tail shown at most (its end is kept).
const TAIL_BYTES: usize = 16 * 1024;
/// Bytes of a whole log shown at most (its end is kept).
pub const FULL_LOG_LIMIT: usize = 4 * 1024 * 1024;

/// One attempt's whole log, as asked with `?log=N`.
#[derive(Debug, Clone, Serialize)]
pub struct FullLog {
    pub attempt: usize,
    pub text: String,
    /// Bytes left out at the start (the log was over [`FULL_LOG_LIMIT`]).
    pub skipped: u64,
}

impl FullLog {
    fn of(attempt: usize, bytes: &[u8]) -> FullLog {
        let from = bytes.len().saturating_sub(FULL_LOG_LIMIT);
        FullLog { attempt, text: String::from_utf8_lossy(&bytes[from..]).into_owned(), skipped: from as u64 }
    }
}

/// Where the jobs' logs are.
pub enum JobLogs {
    /// The engine's files under `STATE/logs/` (nothing outside it is read for a whole log).
    Files { tail: Arc<dyn LogTail>, root: PathBuf },
    /// CloudWatch Logs: the group of each job definition (`awslogs-group`, else `/aws/batch/job`).
    CloudWatch { logs: CloudWatchLogs, groups: Mutex<BTreeMap<String, String>> },
}

impl JobLogs {
    /// CloudWatch Logs through `logs`.
    pub fn cloudwatch(logs: CloudWatchLogs) -> JobLogs {
        JobLogs::CloudWatch { logs, groups: Mutex::new(BTreeMap::new()) }
    }

    async fn group(
        logs: &CloudWatchLogs,
        groups: &Mutex<BTreeMap<String, String>>,
        def: &str,
    ) -> PortResult<String> {
        let known = groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(def).cloned();
        if let Some(g) = known {
            return Ok(g);
        }
        let g = logs.log_group(def).await?;
        groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(def.to_owned(), g.clone());
        Ok(g)
    }

    /// The last `lines` lines of an attempt's log (`stream`) of a job of `job_definition`.
    pub async fn tail(&self, job_definition: &str, stream: &str, lines: usize) -> PortResult<String> {
        match self {
            JobLogs::Files { tail, .. } => tail.tail(stream, lines).await,
            JobLogs::CloudWatch { logs, groups } => {
                let group = JobLogs::group(logs, groups, job_definition).await?;
                let text = logs.tail(&group, stream, lines).await?.join("\n");
                let from = text.len().saturating_sub(TAIL_BYTES);
                let from = (from..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
                Ok(text[from..].to_owned())
            }
        }
    }

    /// An attempt's whole log (its last [`FULL_LOG_LIMIT`] bytes); `None` when it is not here.
    pub async fn whole(&self, job_definition: &str, stream: &str, attempt: usize) -> Option<FullLog> {
        match self {
            JobLogs::Files { root, .. } => {
                let path = super::jobs::local_log(root, stream)?;
                let bytes = tokio::fs::read(&path).await.ok()?;
                Some(FullLog::of(attempt, &bytes))
            }
            JobLogs::CloudWatch { logs, groups } => {
                let group = JobLogs::group(logs, groups, job_definition).await.ok()?;
                let page = logs.read(&group, stream, None).await.ok()?;
                (!page.lines.is_empty())
                    .then(|| FullLog::of(attempt, (page.lines.join("\n") + "\n").as_bytes()))
            }
        }
    }

    /// Where a whole log would have been, and the command that prints it.
    pub fn missing(&self, run_id: &str, stage: &str, index: u64, attempt: usize) -> String {
        let (place, flags) = match self {
            JobLogs::Files { root, .. } => (format!("under {}", root.join("logs").display()), ""),
            JobLogs::CloudWatch { .. } => ("in CloudWatch Logs".to_owned(), " --backend aws"),
        };
        format!("attempt {attempt} has no log {place}: `batchfan logs {run_id} {stage} {index} --attempt {attempt}{flags}` prints it")
    }
}

/// What the pages read from.
pub struct Source {
    specs: BTreeMap<String, PipelineSpec>,
    /// The table port holding the run records (each spec's `storage.table`).
    pub table: Arc<dyn Table>,
    pub batch: Arc<dyn Batch>,
    pub logs: JobLogs,
    /// The local bus whose alerts topics the pages list; `None` on AWS (SNS keeps no messages).
    pub alerts: Option<Bus>,
}

impl Source {
    pub fn new(
        specs: impl IntoIterator<Item = PipelineSpec>,
        table: Arc<dyn Table>,
        batch: Arc<dyn Batch>,
        logs: JobLogs,
        alerts: Option<Bus>,
    ) -> Source {
        let specs = specs.into_iter().map(|s| (s.name.clone(), s)).collect();
        Source { specs, table, batch, logs, alerts }
    }

    /// The embedded backend's tables, engine, log files and bus.
    pub fn local(
        specs: impl IntoIterator<Item = PipelineSpec>,
        backend: &crate::backend::LocalBackend,
    ) -> Source {
        let ports = &backend.ports;
        let logs = JobLogs::Files { tail: ports.logs.clone(), root: backend.layout.root.clone() };
        Source::new(specs, ports.table.clone(), ports.batch.clone(), logs, Some(backend.bus.clone()))
    }

    pub fn spec(&self, pipeline: &str) -> Option<&PipelineSpec> {
        self.specs.get(pipeline)
    }

    pub fn specs(&self) -> impl Iterator<Item = &PipelineSpec> {
        self.specs.values()
    }

    /// The tables that hold the served pipelines' runs, once each.
    pub fn tables(&self) -> Vec<&str> {
        let mut tables: Vec<&str> = self.specs().map(|s| s.storage.table.as_str()).collect();
        tables.sort_unstable();
        tables.dedup();
        tables
    }
}
