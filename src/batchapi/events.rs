//! Job state change events of `batchfan batch-api`, as AWS Batch sends them
//! to EventBridge: one `Batch Job State Change` envelope per status change of
//! every job (array parents and children), none for the initial SUBMITTED,
//! `detail` rendered exactly as DescribeJobs renders the job at that change
//! (ARNs, `attempts[].container`, `arrayProperties.statusSummary`).
//!
//! Sinks, chosen at start ([`EventOptions`]):
//! - `--events-file PATH`: JSON lines, one envelope per line, appended;
//! - `--events-url URL --events-bus NAME`: EventBridge `PutEvents` (AWS JSON
//!   1.1, e.g. moto's endpoint), up to 10 entries per call.
//!
//! Each job's events are delivered in order: a PutEvents call never carries
//! two events of one job, and a call's failed entries are retried before the
//! next call. Transient failures are retried with backoff; an event that still
//! cannot be delivered is never dropped silently: it is logged, counted, and
//! appended to `STATE/events-undelivered.jsonl`. The same publisher ships
//! finished attempts' logs ([`super::logs`], `--logs-url`).

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde_json::{json, Value};
use tokio::{
    sync::{mpsc::UnboundedReceiver, oneshot},
    task::JoinHandle,
};

use super::{awsjson::AwsJson, logs::LogShipper, ApiError, ApiResult, BatchApi};
use crate::batch::{
    event::{DETAIL_TYPE, SOURCE},
    Batch, JobStateChange, JobStatus,
};

/// Most entries in one PutEvents call.
const MAX_ENTRIES: usize = 10;
/// Where events that could not be delivered are kept, in the state directory.
pub const UNDELIVERED_FILE: &str = "events-undelivered.jsonl";

/// Where events and logs go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventOptions {
    /// JSON lines file of envelopes.
    pub file: Option<PathBuf>,
    /// EventBridge endpoint and bus name.
    pub eventbridge: Option<(String, String)>,
    /// CloudWatch Logs endpoint for attempts' logs.
    pub logs_url: Option<String>,
}

impl EventOptions {
    /// Whether any sink is chosen (else no publisher runs).
    pub fn any(&self) -> bool {
        self.file.is_some() || self.eventbridge.is_some() || self.logs_url.is_some()
    }
}

/// What a publisher did, when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Envelopes written or accepted, per sink.
    pub events: u64,
    /// Envelopes a sink could not take (kept in [`UNDELIVERED_FILE`]).
    pub undelivered: u64,
    /// Attempts whose log could not be shipped.
    pub logs_failed: u64,
}

/// The running publisher.
pub struct Publisher {
    task: JoinHandle<Delivered>,
    stop: oneshot::Sender<()>,
}

impl Publisher {
    /// Subscribes to `api`'s engine and delivers its events to the sinks in `options`.
    pub fn start(api: Arc<BatchApi>, options: EventOptions) -> Publisher {
        let events = api.engine().subscribe();
        let (stop, stopped) = oneshot::channel();
        Publisher { task: tokio::spawn(run(api, options, events, stopped)), stop }
    }

    /// Delivers the events sent so far, then stops (call it after the engine shut down).
    pub async fn finish(self) -> Delivered {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

struct Sinks {
    file: Option<(PathBuf, std::fs::File)>,
    bus: Option<(AwsJson, String)>,
    logs: Option<LogShipper>,
    undelivered: PathBuf,
    count: Delivered,
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path)
}

async fn run(
    api: Arc<BatchApi>,
    options: EventOptions,
    mut events: UnboundedReceiver<JobStateChange>,
    mut stop: oneshot::Receiver<()>,
) -> Delivered {
    let region = api.config.region.clone();
    let file = options.file.and_then(|path| match open_append(&path) {
        Ok(f) => Some((path, f)),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot open --events-file: events go to the undelivered file");
            None
        }
    });
    let mut sinks = Sinks {
        file,
        bus: options.eventbridge.map(|(url, bus)| (AwsJson::new(&url, "events", &region), bus)),
        logs: options.logs_url.map(|url| LogShipper::new(&url, &region)),
        undelivered: api.config.state_dir.join(UNDELIVERED_FILE),
        count: Delivered::default(),
    };
    let mut stopping = false;
    loop {
        let first = if stopping {
            match events.try_recv() {
                Ok(ev) => ev,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => ev,
                    None => break,
                },
                _ = &mut stop => {
                    stopping = true;
                    continue;
                }
            }
        };
        let mut batch = vec![first];
        while let Ok(more) = events.try_recv() {
            batch.push(more);
        }
        let mut envelopes = Vec::with_capacity(batch.len());
        for ev in &batch {
            if let Some(logs) = sinks.logs.as_mut() {
                logs.on_event(ev, &api.log_target(&ev.job_definition)).await;
            }
            match api.envelope(ev).await {
                Ok(env) => envelopes.push((ev.job_id.clone(), env)),
                Err(e) => {
                    tracing::error!(job_id = %ev.job_id, status = %ev.status, error = %e, "event not rendered")
                }
            }
        }
        sinks.deliver(&envelopes).await;
    }
    sinks.count.logs_failed = sinks.logs.as_ref().map_or(0, |l| l.failed);
    if sinks.count.undelivered > 0 {
        tracing::error!(
            undelivered = sinks.count.undelivered,
            file = %sinks.undelivered.display(),
            "some events were not delivered: they are kept in the file"
        );
    }
    sinks.count
}

impl Sinks {
    async fn deliver(&mut self, envelopes: &[(String, Value)]) {
        if let Some((path, file)) = self.file.as_mut() {
            let text: String = envelopes.iter().map(|(_, e)| format!("{e}\n")).collect();
            match file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
                Ok(()) => self.count.events += envelopes.len() as u64,
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "events not written");
                    let all: Vec<&Value> = envelopes.iter().map(|(_, e)| e).collect();
                    self.keep(&all);
                }
            }
        }
        if self.bus.is_some() {
            let mut rest = envelopes;
            while !rest.is_empty() {
                let n = chunk_len(rest);
                self.put_events(&rest[..n]).await;
                rest = &rest[n..];
            }
        }
    }

    /// One PutEvents call, then its failed entries again until they pass or retries run out.
    async fn put_events(&mut self, chunk: &[(String, Value)]) {
        let Some((client, bus)) = self.bus.as_ref() else { return };
        let mut pending: Vec<&Value> = chunk.iter().map(|(_, e)| e).collect();
        for round in 0..3 {
            let entries: Vec<Value> = pending.iter().map(|e| entry(e, bus)).collect();
            let answer = client.call("AWSEvents.PutEvents", &json!({ "Entries": entries })).await;
            let results = match answer {
                Ok(v) => v["Entries"].as_array().cloned().unwrap_or_default(),
                Err(e) => {
                    tracing::error!(error = %e, events = pending.len(), "PutEvents failed");
                    break;
                }
            };
            let before = pending.len();
            let mut failed = Vec::new();
            for (i, e) in pending.iter().enumerate() {
                let code = results.get(i).and_then(|r| r["ErrorCode"].as_str());
                if let Some(code) = code {
                    tracing::warn!(round, code, "PutEvents entry failed");
                    failed.push(*e);
                }
            }
            self.count.events += (before - failed.len()) as u64;
            pending = failed;
            if pending.is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 << round)).await;
        }
        self.keep(&pending);
    }

    /// Counts and keeps envelopes a sink could not take.
    fn keep(&mut self, envelopes: &[&Value]) {
        self.count.undelivered += envelopes.len() as u64;
        let text: String = envelopes.iter().map(|e| format!("{e}\n")).collect();
        let kept = open_append(&self.undelivered).and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = kept {
            tracing::error!(path = %self.undelivered.display(), error = %e, lost = envelopes.len(), "events lost");
        }
    }
}

/// How many envelopes from the start of `rest` go in one call: at most 10, no job twice.
fn chunk_len(rest: &[(String, Value)]) -> usize {
    let mut seen = std::collections::HashSet::new();
    rest.iter().take(MAX_ENTRIES).take_while(|(job, _)| seen.insert(job.as_str())).count()
}

/// A PutEvents entry for `envelope` on `bus`.
fn entry(envelope: &Value, bus: &str) -> Value {
    json!({
        "Source": envelope["source"], "DetailType": envelope["detail-type"],
        "Detail": envelope["detail"].to_string(), "Resources": envelope["resources"],
        "EventBusName": bus,
    })
}

impl BatchApi {
    /// The EventBridge envelope of `ev`: the job as DescribeJobs renders it, at that change.
    pub(crate) async fn envelope(&self, ev: &JobStateChange) -> ApiResult<Value> {
        let mut d = self
            .engine
            .describe_jobs(std::slice::from_ref(&ev.job_id))
            .await?
            .pop()
            .ok_or_else(|| ApiError::Server(format!("job {} is gone from the engine", ev.job_id)))?;
        d.status = ev.status;
        d.status_reason = ev.status_reason.clone();
        d.started_at = ev.started_at;
        d.stopped_at = ev.stopped_at;
        d.attempts = ev.attempts.clone();
        d.array_properties = ev.array_properties.clone();
        let mut detail = self.detail_json(&d)?;
        if let (Some(file), JobStatus::Running) = (&ev.container.log_stream_name, ev.status) {
            // The attempt in flight has its stream from RUNNING on, as on AWS.
            let stream = self.log_target(&d.job_definition).stream(file);
            detail["container"]["logStreamName"] = Value::String(stream);
        }
        let arn = detail["jobArn"].clone();
        Ok(json!({
            "version": "0",
            "id": crate::engine::new_uuid(),
            "detail-type": DETAIL_TYPE,
            "source": SOURCE,
            "account": self.config.account,
            "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "region": self.config.region,
            "resources": [arn],
            "detail": detail,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_never_carries_two_events_of_one_job() {
        let e = |job: &str| (job.to_owned(), Value::Null);
        let rest = [e("a"), e("b"), e("a"), e("c")];
        assert_eq!(chunk_len(&rest), 2);
        let many: Vec<(String, Value)> = (0..25).map(|i| e(&i.to_string())).collect();
        assert_eq!(chunk_len(&many), MAX_ENTRIES);
        assert_eq!(chunk_len(&[]), 0);
    }
}
