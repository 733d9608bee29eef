//! Job state change events in the shape of EventBridge's
//! `Batch Job State Change` (`source: aws.batch`). Parsed tolerantly: every
//! field defaults, unknown fields are ignored, since AWS adds fields over time.

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

/// `container` inside the detail: the part batchfan reads.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerDetail {
    pub image: Option<String>,
    pub command: Vec<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub log_stream_name: Option<String>,
}

/// The `detail` of a Batch Job State Change event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStateChange {
    #[serde(default)]
    pub job_arn: String,
    pub job_name: String,
    pub job_id: String,
    #[serde(default)]
    pub job_queue: String,
    pub status: JobStatus,
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub started_at: Option<i64>,
    #[serde(default)]
    pub stopped_at: Option<i64>,
    #[serde(default)]
    pub retry_strategy: Option<RetryStrategy>,
    #[serde(default)]
    pub depends_on: Vec<JobDependency>,
    #[serde(default)]
    pub job_definition: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub container: ContainerDetail,
    #[serde(default)]
    pub array_properties: Option<ArrayProperties>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
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
mod tests {
    use super::*;

    /// A recorded event with fields batchfan does not know about.
    const RECORDED: &str = r#"{
      "version": "0", "id": "c8f9c4b5-76e5-d76a-f980-7011e206042b",
      "detail-type": "Batch Job State Change", "source": "aws.batch",
      "account": "123456789012", "time": "2022-01-11T23:36:40Z", "region": "us-east-1",
      "resources": ["arn:aws:batch:us-east-1:123456789012:job/4c7599ae-0a82-49aa-ba5a-4727fcce14a8"],
      "detail": {
        "jobArn": "arn:aws:batch:us-east-1:123456789012:job/4c7599ae-0a82-49aa-ba5a-4727fcce14a8",
        "jobName": "orders-r1-confirm-s0", "jobId": "4c7599ae-0a82-49aa-ba5a-4727fcce14a8:3",
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/q", "status": "FAILED",
        "statusReason": "Essential container in task exited",
        "attempts": [{"container": {"exitCode": 1}, "startedAt": 1641944200100, "stoppedAt": 1641944201100, "statusReason": "Essential container in task exited"}],
        "createdAt": 1641944200058, "retryStrategy": {"attempts": 2, "evaluateOnExit": []},
        "dependsOn": [], "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/d:1",
        "parameters": {}, "container": {"image": "x", "command": ["echo"], "exitCode": 1, "volumes": [], "futureField": true},
        "arrayProperties": {"index": 3}, "tags": {"batchfan:run": "r1"}, "propagateTags": false, "platformCapabilities": []
      }
    }"#;

    #[test]
    fn parses_recorded_event_with_unknown_fields() {
        let ev: Envelope<JobStateChange> = serde_json::from_str(RECORDED).unwrap();
        assert_eq!(ev.source, SOURCE);
        assert_eq!(ev.detail_type, DETAIL_TYPE);
        assert_eq!(ev.detail.status, JobStatus::Failed);
        assert_eq!(ev.detail.container.exit_code, Some(1));
        assert_eq!(ev.detail.array_properties.as_ref().and_then(|a| a.index), Some(3));
        assert_eq!(ev.detail.tags["batchfan:run"], "r1");
        let again: Envelope<JobStateChange> =
            serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
        assert_eq!(again, ev);
    }
}
