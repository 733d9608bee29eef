//! Run records and their store: what a run is, in the batchfan table.
//!
//! Layout in the table (every key a string; see [`crate::table`]):
//!
//! | pk | sk | what |
//! | --- | --- | --- |
//! | `run#{run}` | `run` | the [`RunRecord`] |
//! | `runs` | `{created_at:013}#{run}` | index of every run |
//! | `claim#{pipeline}#{key}` | `claim` | an idempotency key → run id |
//! | `items#{run}` | `{index:010}` | a work item |
//! | `results#{run}#{stage}` | `{index:010}` | a child's result |

use std::{collections::BTreeMap, fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{
    error::{PortError, PortResult},
    objects::ObjectRef,
    plan::{Sizing, WorkItem},
    table::{Condition, Item, Key, Table, Written, TTL},
};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunState {
    /// Claimed; the planner is writing work items.
    Planning,
    /// Work items written; RunPlanned published; jobs not all submitted yet.
    Planned,
    /// Every job submitted; running.
    Submitted,
    /// Cleanup succeeded after every stage and the aggregation succeeded.
    Succeeded,
    /// A job failed; the alert is out and cleanup ran.
    Failed,
    /// Cancelled on request: its jobs were cancelled or terminated, cleanup ran, the notice is out.
    Cancelled,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Planning => "PLANNING",
            RunState::Planned => "PLANNED",
            RunState::Submitted => "SUBMITTED",
            RunState::Succeeded => "SUCCEEDED",
            RunState::Failed => "FAILED",
            RunState::Cancelled => "CANCELLED",
        }
    }
    pub fn is_terminal(self) -> bool {
        matches!(self, RunState::Succeeded | RunState::Failed | RunState::Cancelled)
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            RunState::Planning,
            RunState::Planned,
            RunState::Submitted,
            RunState::Succeeded,
            RunState::Failed,
            RunState::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| format!("unknown run state {s:?}"))
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerSource {
    Manual,
    Cron,
    S3,
    Webhook,
}

/// A trigger, normalised: every source becomes one of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerEvent {
    pub pipeline: String,
    pub source: TriggerSource,
    /// Same key → same run (S3: bucket/key/version; cron: pipeline + slot; webhook: delivery id; manual: request id).
    pub idempotency_key: String,
    pub input: Option<ObjectRef>,
    pub params: BTreeMap<String, String>,
}

impl TriggerEvent {
    /// The run id this trigger maps to: deterministic, so a duplicate trigger finds the same run.
    pub fn run_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.pipeline.as_bytes());
        h.update([0]);
        h.update(self.idempotency_key.as_bytes());
        format!("r{}", &hex::encode(h.finalize())[..11])
    }
}

/// The first failure of a run: what the alert says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub job_name: String,
    pub job_id: String,
    /// Stage name, or `aggregation` / `cleanup`.
    pub stage: String,
    /// Global child index, when an array child failed.
    pub index: Option<u64>,
    pub exit_code: Option<i32>,
    pub status_reason: Option<String>,
    pub log_tail: String,
}

impl Failure {
    /// Where the run failed: `stage[index]` for an array child, else the stage.
    pub fn at(&self) -> String {
        match self.index {
            Some(i) => format!("{}[{i}]", self.stage),
            None => self.stage.clone(),
        }
    }

    /// `exit 1`, or `no exit code` (a job that never ran, or whose host was lost).
    pub fn exit(&self) -> String {
        self.exit_code.map_or_else(|| "no exit code".to_owned(), |c| format!("exit {c}"))
    }

    /// `failed at STAGE[INDEX]: exit CODE: REASON`, as the CLI prints it.
    pub fn summary_line(&self) -> String {
        format!("failed at {}: {}: {}", self.at(), self.exit(), self.status_reason.as_deref().unwrap_or("-"))
    }

    /// The command that prints the failed attempt's whole log (the alert
    /// names it); on AWS it names the run's table (`--table`), which the
    /// command would otherwise take from `BATCHFAN_TABLE` or default to `batchfan`.
    pub fn logs_command(&self, run_id: &str, backend: super::BackendKind, table: &str) -> String {
        let aws = if backend == super::BackendKind::Aws {
            format!(" --backend aws --table {table}")
        } else {
            String::new()
        };
        format!("batchfan logs {run_id} {} {}{aws}", self.stage, self.index.unwrap_or(0))
    }
}

/// A submitter's hold on a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    /// Milliseconds since the epoch.
    pub until: i64,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub pipeline: String,
    pub state: RunState,
    pub trigger: TriggerEvent,
    /// Set once planned.
    pub sizing: Option<Sizing>,
    /// Job name → job id, as submitted.
    #[serde(default)]
    pub jobs: BTreeMap<String, String>,
    /// Set by the alerter with the first failure.
    #[serde(default)]
    pub failure: Option<Failure>,
    /// Whether the failure alert was published.
    #[serde(default)]
    pub alerted: bool,
    /// The submitter holding the run while it submits.
    #[serde(default)]
    pub lease: Option<Lease>,
    /// Where the aggregation writes.
    pub output: ObjectRef,
    /// The pipeline's stage names, in order (jobs read them from here).
    #[serde(default)]
    pub stages: Vec<String>,
    /// Percentage of failed items the aggregation tolerates.
    #[serde(default)]
    pub tolerated_failure_percent: f64,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
    /// What the aggregation reported: items, failed items, output.
    #[serde(default)]
    pub summary: Option<ChildResult>,
    /// Per-phase timestamps (ms): `plan_start`, `plan_end`, `submitted`, `finished`.
    #[serde(default)]
    pub times: BTreeMap<String, i64>,
    /// Optimistic concurrency: bumped by every update.
    pub version: u64,
    /// Which attempt of the run this is: 0 or 1 the first, n after n-1 retries (`batchfan retry`).
    #[serde(default)]
    pub attempt: u32,
    /// The retry attempt's plan: which children it runs (set by `batchfan retry`).
    #[serde(default)]
    pub retry: Option<super::retry::RetryPlan>,
    /// The plans of earlier retry attempts (2 .. attempt-1), oldest first: the
    /// status page shows any attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub past_retries: Vec<super::retry::RetryPlan>,
    /// Set by `batchfan cancel`: the run ends CANCELLED.
    #[serde(default)]
    pub cancel: Option<CancelRequest>,
}

impl RunRecord {
    /// The attempt number, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt.max(1)
    }
}

/// A cancel of a run, as requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    /// Milliseconds since the epoch.
    pub requested_at: i64,
    /// Who asked (`cli`, `serve`, a user name).
    pub by: String,
    /// Whether the cancelled notice was published.
    #[serde(default)]
    pub notified: bool,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn run_key(run_id: &str) -> Key {
    Key::new(format!("run#{run_id}"), "run")
}

fn to_item(key: Key, value: &impl Serialize) -> PortResult<Item> {
    match serde_json::to_value(value) {
        Ok(Value::Object(attrs)) => Ok(Item { key, attrs }),
        Ok(_) => Err(PortError::backend("record did not serialise to an object")),
        Err(e) => Err(PortError::backend(format!("serialise record: {e}"))),
    }
}

fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> PortResult<T> {
    serde_json::from_value(Value::Object(item.attrs)).map_err(|e| {
        PortError::backend(format!("stored record {:?} is not readable: {e}", item.key)).caused_by(e)
    })
}

/// Index padding for sort keys.
fn idx(i: u64) -> String {
    format!("{i:010}")
}

/// The run record's `times` entry set when its scratch rows expired ([`RunStore::sweep_expired`]).
pub const SCRATCH_EXPIRED: &str = "scratch_expired";

/// batchfan's records in one table.
#[derive(Clone)]
pub struct RunStore<'a> {
    pub table: &'a dyn Table,
    pub name: &'a str,
    /// Days the scratch rows this store writes are kept ([`crate::spec::Storage::scratch_days`]).
    pub scratch_days: u32,
}

impl<'a> RunStore<'a> {
    pub fn new(table: &'a dyn Table, name: &'a str) -> Self {
        RunStore { table, name, scratch_days: crate::spec::DEFAULT_SCRATCH_DAYS }
    }

    /// The store of `spec`'s table, its scratch rows kept as the spec says.
    pub fn of(table: &'a dyn Table, spec: &'a crate::spec::PipelineSpec) -> Self {
        RunStore::new(table, &spec.storage.table).keeping_scratch(spec.storage.scratch_days)
    }

    /// Keeps the scratch rows this store writes for `days`.
    pub fn keeping_scratch(self, days: u32) -> Self {
        RunStore { scratch_days: days, ..self }
    }

    /// The [`TTL`] value of a scratch row written now: Unix seconds, `scratch_days` ahead.
    pub fn scratch_expiry(&self) -> i64 {
        now_ms() / 1000 + i64::from(self.scratch_days) * 86_400
    }

    /// Claims `key` for `run_id`; returns the run id that owns the key (ours, or an earlier one).
    pub async fn claim(&self, pipeline: &str, key: &str, run_id: &str) -> PortResult<String> {
        let item = Item::new(Key::new(format!("claim#{pipeline}#{key}"), "claim"))
            .with("run_id", run_id)
            .with("claimed_at", now_ms());
        match self.table.put(self.name, item, Condition::NotExists).await? {
            Written::Yes => Ok(run_id.to_owned()),
            Written::ConditionFailed(Some(existing)) => {
                Ok(existing.str("run_id").unwrap_or(run_id).to_owned())
            }
            Written::ConditionFailed(None) => Ok(run_id.to_owned()),
        }
    }

    /// Creates the run record unless it exists; returns the stored record either way.
    pub async fn create(&self, record: &RunRecord) -> PortResult<RunRecord> {
        let item = to_item(run_key(&record.run_id), record)?;
        match self.table.put(self.name, item, Condition::NotExists).await? {
            Written::Yes => {
                let index =
                    Item::new(Key::new("runs", format!("{:013}#{}", record.created_at, record.run_id)))
                        .with("run_id", record.run_id.as_str())
                        .with("pipeline", record.pipeline.as_str());
                self.table.put(self.name, index, Condition::None).await?;
                Ok(record.clone())
            }
            Written::ConditionFailed(Some(existing)) => from_item(existing),
            Written::ConditionFailed(None) => self.get(&record.run_id).await?.ok_or_else(|| {
                PortError::backend(format!("run {} vanished while being created", record.run_id))
            }),
        }
    }

    pub async fn get(&self, run_id: &str) -> PortResult<Option<RunRecord>> {
        match self.table.get(self.name, &run_key(run_id)).await? {
            Some(item) => from_item(item).map(Some),
            None => Ok(None),
        }
    }

    /// Applies `change` to the stored record with optimistic concurrency, retrying on conflict.
    /// `change` returns false to leave the record as it is. Returns the record as stored after.
    pub async fn update(
        &self,
        run_id: &str,
        mut change: impl FnMut(&mut RunRecord) -> bool,
    ) -> PortResult<RunRecord> {
        loop {
            let mut rec =
                self.get(run_id).await?.ok_or_else(|| PortError::not_found(format!("run {run_id}")))?;
            let old_version = rec.version;
            if !change(&mut rec) {
                return Ok(rec);
            }
            rec.version = old_version + 1;
            rec.updated_at = now_ms();
            let item = to_item(run_key(run_id), &rec)?;
            let cond = Condition::Equals("version".into(), json!(old_version));
            if let Written::Yes = self.table.put(self.name, item, cond).await? {
                return Ok(rec);
            }
        }
    }

    /// Run ids, newest first, of one pipeline or all.
    pub async fn list_runs(&self, pipeline: Option<&str>) -> PortResult<Vec<String>> {
        let items = self.table.query(self.name, "runs", "").await?;
        Ok(items
            .iter()
            .rev()
            .filter(|i| pipeline.is_none_or(|p| i.str("pipeline") == Some(p)))
            .filter_map(|i| i.str("run_id").map(str::to_owned))
            .collect())
    }

    /// The latest schedule slot of `pipeline` that started a run: its
    /// idempotency key (`cron:{time}`, ordered by time) and run id.
    pub async fn last_scheduled(&self, pipeline: &str) -> PortResult<Option<(String, String)>> {
        let item = self.table.get(self.name, &Key::new(format!("cron#{pipeline}"), "last")).await?;
        Ok(item.and_then(|i| Some((i.str("key")?.to_owned(), i.str("run_id")?.to_owned()))))
    }

    /// Points [`RunStore::last_scheduled`] at slot `key`'s run, unless it
    /// already points at that slot or a later one (a late delivery of an
    /// older slot never moves it back).
    pub async fn set_last_scheduled(&self, pipeline: &str, key: &str, run_id: &str) -> PortResult<()> {
        loop {
            let condition = match self.last_scheduled(pipeline).await? {
                Some((current, _)) if current.as_str() >= key => return Ok(()),
                Some((current, _)) => Condition::Equals("key".into(), current.into()),
                None => Condition::NotExists,
            };
            let item = Item::new(Key::new(format!("cron#{pipeline}"), "last"))
                .with("key", key)
                .with("run_id", run_id)
                .with("updated_at", now_ms());
            if let Written::Yes = self.table.put(self.name, item, condition).await? {
                return Ok(());
            }
        }
    }

    /// Records that schedule slot `key` was skipped (so a redelivery skips it
    /// too); returns whether it already was.
    pub async fn mark_slot_skipped(&self, pipeline: &str, key: &str, reason: &str) -> PortResult<bool> {
        let item = Item::new(Key::new(format!("skipped#{pipeline}#{key}"), "skipped"))
            .with("reason", reason)
            .with("at", now_ms());
        Ok(!matches!(self.table.put(self.name, item, Condition::NotExists).await?, Written::Yes))
    }

    /// Whether schedule slot `key` was skipped.
    pub async fn slot_skipped(&self, pipeline: &str, key: &str) -> PortResult<Option<String>> {
        let item =
            self.table.get(self.name, &Key::new(format!("skipped#{pipeline}#{key}"), "skipped")).await?;
        Ok(item.map(|i| i.str("reason").unwrap_or("skipped").to_owned()))
    }

    /// Stores work items (idempotent: same run, same items); they expire
    /// after [`RunStore::scratch_days`].
    pub async fn put_work_items(&self, run_id: &str, items: &[WorkItem]) -> PortResult<()> {
        let pk = format!("items#{run_id}");
        let expires = self.scratch_expiry();
        let batch = items
            .iter()
            .map(|w| {
                Item::new(Key::new(pk.clone(), idx(w.index)))
                    .with("units", Value::Array(w.units.clone()))
                    .with(TTL, expires)
            })
            .collect();
        self.table.put_batch(self.name, batch).await
    }

    pub async fn work_item(&self, run_id: &str, index: u64) -> PortResult<Option<WorkItem>> {
        let item = self.table.get(self.name, &Key::new(format!("items#{run_id}"), idx(index))).await?;
        Ok(item.map(|i| WorkItem {
            index,
            units: match i.attrs.get("units") {
                Some(Value::Array(units)) => units.clone(),
                _ => Vec::new(),
            },
        }))
    }

    /// Stores a child's result (it expires after [`RunStore::scratch_days`]).
    pub async fn put_result(
        &self,
        run_id: &str,
        stage: &str,
        index: u64,
        result: &ChildResult,
    ) -> PortResult<()> {
        let item = to_item(Key::new(format!("results#{run_id}#{stage}"), idx(index)), result)?
            .with(TTL, self.scratch_expiry());
        self.table.put(self.name, item, Condition::None).await.map(|_| ())
    }

    pub async fn result(&self, run_id: &str, stage: &str, index: u64) -> PortResult<Option<ChildResult>> {
        match self.table.get(self.name, &Key::new(format!("results#{run_id}#{stage}"), idx(index))).await? {
            Some(item) => from_item(item).map(Some),
            None => Ok(None),
        }
    }

    /// Every result of a stage, by child index.
    pub async fn results(&self, run_id: &str, stage: &str) -> PortResult<Vec<(u64, ChildResult)>> {
        let items = self.table.query(self.name, &format!("results#{run_id}#{stage}"), "").await?;
        items
            .into_iter()
            .map(|i| {
                let index = i
                    .key
                    .sk
                    .parse::<u64>()
                    .map_err(|e| PortError::backend(format!("bad result key: {e}")).caused_by(e))?;
                Ok((index, from_item(i)?))
            })
            .collect()
    }

    /// What DynamoDB's TTL does on AWS, done for a table that has none
    /// (SQLite): deletes the scratch rows (work items, results, retry lists)
    /// of every ended run of this table last written more than
    /// `scratch_days` before `now_ms`, and marks the run ([`SCRATCH_EXPIRED`])
    /// so that it is not looked at again. Returns the rows deleted. A run
    /// whose rows are gone can no longer be retried.
    pub async fn sweep_expired(&self, pipeline: &str, now_ms: i64) -> PortResult<u64> {
        let kept_ms = i64::from(self.scratch_days) * 86_400_000;
        let mut rows = 0;
        for run_id in self.list_runs(Some(pipeline)).await? {
            let Some(rec) = self.get(&run_id).await? else { continue };
            if !rec.state.is_terminal()
                || rec.times.contains_key(SCRATCH_EXPIRED)
                || rec.updated_at + kept_ms > now_ms
            {
                continue;
            }
            rows += self.delete_scratch(&run_id, &rec.stages).await?
                + super::retry::delete_lists(self, &rec).await?;
            self.update(&run_id, |r| r.times.insert(SCRATCH_EXPIRED.into(), now_ms).is_none()).await?;
        }
        Ok(rows)
    }

    /// Deletes a run's work items and the results of `stages`.
    pub async fn delete_scratch(&self, run_id: &str, stages: &[String]) -> PortResult<u64> {
        let mut keys: Vec<Key> = self
            .table
            .query(self.name, &format!("items#{run_id}"), "")
            .await?
            .into_iter()
            .map(|i| i.key)
            .collect();
        for stage in stages {
            let pk = format!("results#{run_id}#{stage}");
            keys.extend(self.table.query(self.name, &pk, "").await?.into_iter().map(|i| i.key));
        }
        let n = keys.len() as u64;
        self.table.delete_batch(self.name, keys).await?;
        Ok(n)
    }
}

/// What a child leaves for the next stage and the aggregation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChildResult {
    /// The job's own result value (small: a pointer or a number).
    #[serde(default)]
    pub value: Value,
    /// Units (rows, objects) the child processed.
    #[serde(default)]
    pub items: u64,
    /// Units that failed without failing the child (e.g. malformed rows).
    #[serde(default)]
    pub failed: u64,
    /// The child's output object, if it wrote one.
    #[serde(default)]
    pub output: Option<ObjectRef>,
}
