//! Job state change events in the shape of EventBridge's
//! `Batch Job State Change` (`source: aws.batch`): `detail` is shaped like
//! DescribeJobs' `JobDetail` — each attempt's exit code, reason and log
//! stream under `attempts[].container` ([`Attempt`]), the last attempt's
//! repeated in the top-level `container`, `arrayProperties.statusSummary` on
//! an array parent and `arrayProperties.index` on a child, times in epoch ms.
//! AWS sends no event for the initial submission (SUBMITTED).
//!
//! Parsed tolerantly: every field defaults, unknown fields are ignored, since
//! AWS adds fields over time. The fixtures in `tests/fixtures/batch_events/`
//! (AWS's documented sample and API-reference shapes) pin the format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ArrayProperties, Attempt, JobDependency, JobStatus, RetryStrategy};

/// The EventBridge `source` of Batch events.
pub const SOURCE: &str = "aws.batch";
/// The EventBridge `detail-type` of Batch job state changes.
pub const DETAIL_TYPE: &str = "Batch Job State Change";

/// An EventBridge envelope around a `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<D> {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub id: String,
    #[serde(rename = "detail-type", default)]
    pub detail_type: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub resources: Vec<String>,
    pub detail: D,
}

/// `container` inside the detail: the part batchfan reads. The exit code,
/// reason and log stream are the last attempt's (the current one while RUNNING).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_stream_name: Option<String>,
}

/// The `detail` of a Batch Job State Change event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStateChange {
    #[serde(default)]
    pub job_arn: String,
    pub job_name: String,
    pub job_id: String,
    #[serde(default)]
    pub job_queue: String,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    #[serde(default)]
    pub depends_on: Vec<JobDependency>,
    #[serde(default)]
    pub job_definition: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub container: ContainerDetail,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_properties: Option<ArrayProperties>,
    /// The job's tags (AWS puts them at the top of `detail`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Whether the tags were propagated to the ECS task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<bool>,
}

impl JobStateChange {
    /// Wraps the detail in an EventBridge envelope as AWS would deliver it.
    pub fn into_envelope(self, id: String, time: String) -> Envelope<JobStateChange> {
        Envelope {
            version: "0".into(),
            id,
            detail_type: DETAIL_TYPE.into(),
            source: SOURCE.into(),
            account: String::new(),
            time,
            region: String::new(),
            resources: vec![self.job_arn.clone()],
            detail: self,
        }
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
