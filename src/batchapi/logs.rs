//! Attempt logs as AWS Batch names and ships them.
//!
//! The engine appends each attempt's stdout and stderr to a file in the state
//! directory (`STATE/logs/JOB/attempt-N.log`). The API names that file as AWS
//! names the attempt's CloudWatch Logs stream — `JOBDEFINITION/default/TASKID`
//! in group `/aws/batch/job`, TASKID 32 hex digits like an ECS task id; with
//! the job definition's `logConfiguration` (driver `awslogs`) its options
//! `awslogs-group` (the group) and `awslogs-stream-prefix` (the stream is
//! then `PREFIX/default/TASKID`), as AWS Batch documents them ([`LogTarget`])
//! — in `attempts[].container.logStreamName`, `container.logStreamName`
//! and `taskArn` (DescribeJobs and events). With `--logs-url`, an attempt's
//! log is sent to that CloudWatch Logs endpoint when the attempt ends
//! (CreateLogGroup if needed, CreateLogStream, PutLogEvents in batches);
//! without it the log stays in the state directory.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{
    awsjson::{AwsJson, CallError},
    name_of, BatchApi,
};
use crate::batch::{Attempt, JobStateChange};

/// The log group of AWS Batch jobs.
pub const LOG_GROUP: &str = "/aws/batch/job";
/// Most events in one PutLogEvents call.
const MAX_EVENTS: usize = 10_000;
/// Most bytes in one PutLogEvents call (each event counts 26 bytes more).
const MAX_BATCH_BYTES: usize = 1_048_576;
/// Longest event message, in bytes.
const MAX_EVENT_BYTES: usize = 256 * 1024 - 26;

/// The ECS-like task id of the attempt whose log is `log_file`.
pub fn task_id(log_file: &str) -> String {
    // Relative to the state directory, so that a moved state keeps its names.
    let key = log_file.rsplit_once("/logs/").map_or(log_file, |(_, rest)| rest);
    hex::encode(&Sha256::digest(key.as_bytes())[..16])
}

/// `JOBDEFINITION/default/TASKID` for the attempt of a job of `job_definition`
/// (name or ARN) that has no `awslogs-stream-prefix`.
pub fn stream_name(job_definition: &str, log_file: &str) -> String {
    LogTarget::default_of(job_definition).stream(log_file)
}

/// Where the jobs of a job definition log: its CloudWatch Logs group and the
/// prefix of each attempt's stream (`PREFIX/default/TASKID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub group: String,
    pub stream_prefix: String,
}

impl LogTarget {
    /// AWS Batch's default: group `/aws/batch/job`, streams prefixed by the
    /// definition's name (`job_definition`: a name or an ARN).
    pub fn default_of(job_definition: &str) -> LogTarget {
        let def = name_of(job_definition, "job-definition");
        let def = def.rsplit_once(':').map_or(def, |(name, _)| name);
        LogTarget { group: LOG_GROUP.to_owned(), stream_prefix: def.to_owned() }
    }

    /// The target of definition `name` registered with `body` (the
    /// RegisterJobDefinition request): with `logConfiguration.logDriver`
    /// `awslogs`, its `awslogs-group` and `awslogs-stream-prefix` options
    /// where set; otherwise AWS Batch's default.
    pub fn of_definition(name: &str, body: &Value) -> LogTarget {
        let mut target = LogTarget::default_of(name);
        let config = &body["containerProperties"]["logConfiguration"];
        if config["logDriver"].as_str() != Some("awslogs") {
            return target;
        }
        let option = |k: &str| config["options"][k].as_str().filter(|v| !v.is_empty()).map(str::to_owned);
        if let Some(group) = option("awslogs-group") {
            target.group = group;
        }
        if let Some(prefix) = option("awslogs-stream-prefix") {
            target.stream_prefix = prefix;
        }
        target
    }

    /// The stream of the attempt whose log is `log_file`.
    pub fn stream(&self, log_file: &str) -> String {
        format!("{}/default/{}", self.stream_prefix, task_id(log_file))
    }
}

impl BatchApi {
    /// Where the jobs of `job_definition` (the ARN a job keeps, with its
    /// revision) log; AWS Batch's default if the revision is gone.
    pub(crate) fn log_target(&self, job_definition: &str) -> LogTarget {
        match self.resolve_definition(job_definition, true) {
            Ok(row) => LogTarget::of_definition(&row.name, &row.body),
            Err(_) => LogTarget::default_of(job_definition),
        }
    }
}

/// Sends finished attempts' logs to a CloudWatch Logs endpoint.
#[derive(Debug)]
pub struct LogShipper {
    client: AwsJson,
    /// Groups created (or found) already.
    groups_ready: HashSet<String>,
    /// Attempts already shipped, per job id (a job's events come in order).
    shipped: HashMap<String, usize>,
    /// Attempts whose log could not be shipped.
    pub failed: u64,
}

impl LogShipper {
    pub fn new(url: &str, region: &str) -> LogShipper {
        LogShipper {
            client: AwsJson::new(url, "logs", region),
            groups_ready: HashSet::new(),
            shipped: HashMap::new(),
            failed: 0,
        }
    }

    /// Ships the logs of the attempts of `ev` not shipped yet, to `target`
    /// (its job definition's).
    pub async fn on_event(&mut self, ev: &JobStateChange, target: &LogTarget) {
        let from = self.shipped.get(&ev.job_id).copied().unwrap_or(0);
        for attempt in ev.attempts.iter().skip(from) {
            let Some(file) = attempt.log_stream_name.as_deref() else { continue };
            let stream = target.stream(file);
            if let Err(e) = self.ship(file, &target.group, &stream, attempt).await {
                self.failed += 1;
                tracing::error!(job_id = %ev.job_id, %stream, error = %e, "attempt log not sent: it stays in {file}");
            }
        }
        if ev.status.is_terminal() {
            self.shipped.remove(&ev.job_id);
        } else {
            self.shipped.insert(ev.job_id.clone(), ev.attempts.len());
        }
    }

    async fn create(&self, target: &str, body: Value) -> Result<(), CallError> {
        match self.client.call(target, &body).await {
            Err(e) if e.code() == Some("ResourceAlreadyExistsException") => Ok(()),
            other => other.map(drop),
        }
    }

    async fn ship(
        &mut self,
        file: &str,
        group: &str,
        stream: &str,
        attempt: &Attempt,
    ) -> Result<(), ShipError> {
        if !self.groups_ready.contains(group) {
            self.create("Logs_20140328.CreateLogGroup", json!({ "logGroupName": group })).await?;
            self.groups_ready.insert(group.to_owned());
        }
        let body = json!({ "logGroupName": group, "logStreamName": stream });
        self.create("Logs_20140328.CreateLogStream", body).await?;
        let text = match tokio::fs::read(file).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(ShipError::Read { file: file.to_owned(), source }),
        };
        let at = attempt
            .stopped_at
            .or(attempt.started_at)
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
        for batch in batches(&text) {
            let events: Vec<Value> = batch.iter().map(|m| json!({ "timestamp": at, "message": m })).collect();
            let body = json!({ "logGroupName": group, "logStreamName": stream, "logEvents": events });
            self.client.call("Logs_20140328.PutLogEvents", &body).await?;
        }
        Ok(())
    }
}

/// Why an attempt's log was not shipped.
#[derive(Debug, thiserror::Error)]
enum ShipError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Call(#[from] CallError),
}

/// The log's lines (each cut to CloudWatch's event size) in PutLogEvents-sized batches.
fn batches(text: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    let mut bytes = 0;
    for line in text.lines() {
        let mut end = line.len().min(MAX_EVENT_BYTES);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        let line = &line[..end];
        let size = line.len() + 26;
        match out.last_mut() {
            Some(b) if b.len() < MAX_EVENTS && bytes + size <= MAX_BATCH_BYTES => b.push(line),
            _ => {
                out.push(vec![line]);
                bytes = 0;
            }
        }
        bytes += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_named_as_aws_names_them() {
        let arn = "arn:aws:batch:us-east-1:123456789012:job-definition/orders-confirm:3";
        let s = stream_name(arn, "/tmp/st/logs/4c75/2.attempt-1.log");
        let (prefix, id) = s.rsplit_once('/').unwrap();
        assert_eq!(prefix, "orders-confirm/default");
        assert!(id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert_eq!(s, stream_name("orders-confirm", "/elsewhere/logs/4c75/2.attempt-1.log"), "moved state");
        assert_ne!(s, stream_name(arn, "/tmp/st/logs/4c75/2.attempt-2.log"));
    }

    #[test]
    fn a_definition_with_awslogs_options_names_its_group_and_stream_prefix() {
        let file = "/tmp/st/logs/4c75/2.attempt-1.log";
        let body = json!({"containerProperties": {"logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/aws/batch/batchfan/orders", "awslogs-stream-prefix": "orders"}}}});
        let t = LogTarget::of_definition("orders-confirm", &body);
        assert_eq!(t.group, "/aws/batch/batchfan/orders");
        assert_eq!(t.stream(file), format!("orders/default/{}", task_id(file)));
        let group_only = json!({"containerProperties": {"logConfiguration": {"logDriver": "awslogs",
            "options": {"awslogs-group": "/g"}}}});
        let t = LogTarget::of_definition("orders-confirm", &group_only);
        assert_eq!((t.group.as_str(), t.stream(file)), ("/g", stream_name("orders-confirm", file)));
        for other in [
            json!({}),
            json!({"containerProperties": {"logConfiguration": {"logDriver": "splunk",
            "options": {"awslogs-group": "/g"}}}}),
        ] {
            assert_eq!(
                LogTarget::of_definition("orders-confirm", &other),
                LogTarget::default_of("orders-confirm")
            );
        }
    }

    #[test]
    fn logs_split_into_batches_cloudwatch_accepts() {
        assert!(batches("").is_empty());
        let many = "x\n".repeat(MAX_EVENTS + 1);
        let b = batches(&many);
        assert_eq!((b.len(), b[0].len(), b[1].len()), (2, MAX_EVENTS, 1));
        let long = "é".repeat(MAX_EVENT_BYTES);
        let b = batches(&long);
        assert!(b[0][0].len() <= MAX_EVENT_BYTES);
        let big = format!("{}\n", "y".repeat(MAX_EVENT_BYTES)).repeat(5);
        assert!(batches(&big).iter().all(|b| b.len() * (MAX_EVENT_BYTES + 26) <= MAX_BATCH_BYTES));
    }
}
