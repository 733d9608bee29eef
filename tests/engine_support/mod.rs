//! Shared helpers for the engine's integration tests: an engine in a temp dir
//! with its event stream, `sh -c` jobs, and waits on events with one generous
//! deadline (never fixed sleeps).
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use batchfan::{
    batch::{Batch, ContainerSpec, JobDetail, JobStateChange, JobStatus, SubmitJob},
    engine::{EngineConfig, LocalEngine},
};
use tokio::sync::mpsc::UnboundedReceiver;

/// Overall deadline of any wait in a test.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A test configuration: 8 vCPUs, 8 GiB, timeouts and kill grace scaled by 0.01.
pub fn config(state_dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(state_dir);
    c.vcpus = 8.0;
    c.memory_mib = 8192;
    c.time_scale = 0.01;
    c
}

/// A plain job running `sh -c script` with 1 vCPU and 64 MiB.
pub fn sh(name: &str, script: &str) -> SubmitJob {
    SubmitJob {
        job_name: name.into(),
        job_queue: "local".into(),
        job_definition: "test-def".into(),
        array_size: None,
        depends_on: Vec::new(),
        container: ContainerSpec {
            image: String::new(),
            command: vec!["sh".into(), "-c".into(), script.into()],
            environment: Default::default(),
            vcpus: 1.0,
            memory_mib: 64,
        },
        retry_strategy: Default::default(),
        timeout_seconds: None,
        tags: Default::default(),
    }
}

/// An engine on a fresh temp dir, subscribed from the start.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub engine: LocalEngine,
    events: UnboundedReceiver<JobStateChange>,
    /// Every event received so far.
    pub seen: Vec<JobStateChange>,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// A harness whose configuration `tune` adjusts.
    pub async fn with(tune: impl FnOnce(&mut EngineConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = config(&dir.path().join("state"));
        tune(&mut cfg);
        let engine = LocalEngine::open(cfg).await.expect("engine opens");
        let events = engine.subscribe();
        Harness { dir, engine, events, seen: Vec::new() }
    }

    /// The scratch directory as a string for scripts.
    pub fn d(&self) -> String {
        self.dir.path().display().to_string()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub async fn submit(&self, request: SubmitJob) -> String {
        self.engine.submit_job(request).await.expect("submit accepted").job_id
    }

    pub async fn describe(&self, id: &str) -> JobDetail {
        let mut found = self.engine.describe_jobs(&[id.to_string()]).await.expect("describe");
        assert_eq!(found.len(), 1, "job {id} should exist");
        found.remove(0)
    }

    /// Receives events until one satisfies `pred`; returns it.
    pub async fn wait_event(&mut self, what: &str, pred: impl Fn(&JobStateChange) -> bool) -> JobStateChange {
        if let Some(e) = self.seen.iter().find(|e| pred(e)) {
            return e.clone();
        }
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => {
                    self.seen.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                Ok(None) => panic!("event stream closed while waiting for {what}"),
                Err(_) => panic!("no event for {what} within {DEADLINE:?}"),
            }
        }
    }

    /// Waits for job `id` (parent, child or plain) to reach `status`.
    pub async fn wait_status(&mut self, id: &str, status: JobStatus) -> JobDetail {
        self.wait_event(&format!("{id} {status}"), |e| e.job_id == id && e.status == status).await;
        self.describe(id).await
    }

    /// Waits for job `id` to finish (SUCCEEDED or FAILED) and describes it.
    pub async fn wait_done(&mut self, id: &str) -> JobDetail {
        self.wait_event(&format!("{id} done"), |e| e.job_id == id && e.status.is_terminal()).await;
        self.describe(id).await
    }

    /// The statuses job `id` went through, in order.
    pub fn statuses(&self, id: &str) -> Vec<JobStatus> {
        self.seen.iter().filter(|e| e.job_id == id).map(|e| e.status).collect()
    }
}

/// Reads a `date +%s%N` timestamp a job wrote.
pub fn stamp(path: &Path) -> u128 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim().parse().unwrap_or_else(|e| panic!("{}: {text:?}: {e}", path.display()))
}

/// Waits for a job to create `path` (a job's "I am ready" marker).
pub async fn wait_file(path: &Path) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "{} not created within {DEADLINE:?}", path.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
