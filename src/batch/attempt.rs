//! One attempt of a job (AWS `AttemptDetail`), in AWS's JSON shape: the
//! container's outcome nested under `container` —
//! `{"container": {"exitCode", "reason", "logStreamName", "taskArn"}, "startedAt", "stoppedAt", "statusReason"}` —
//! as DescribeJobs answers and as `Batch Job State Change` events carry it.
//!
//! The Rust fields stay flat (one struct, no `container.` hops in the
//! engine); the JSON is AWS's. Reading is tolerant: unknown fields are
//! ignored (AWS adds some, e.g. `networkInterfaces`), and the flat form that
//! state directories written before this change hold (`exitCode` beside
//! `startedAt`) still reads, so an upgraded engine resumes an old state.

use serde::{Deserialize, Serialize};

/// One attempt of a job (AWS `attempts[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "AttemptJson", into = "AttemptJson")]
pub struct Attempt {
    /// Exit code of the process; `None` when it never started or was lost.
    pub exit_code: Option<i32>,
    /// Short machine reason (e.g. `CannotStartContainerError`, `Signal 9`).
    pub reason: Option<String>,
    /// Human status reason (e.g. `Job attempt duration exceeded timeout`).
    pub status_reason: Option<String>,
    /// Where this attempt's log is (a file path locally, a log stream on AWS).
    pub log_stream_name: Option<String>,
    /// Milliseconds since the epoch.
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
}

/// `AttemptContainerDetail`: the container part of an attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AttemptContainer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_stream_name: Option<String>,
    /// The ECS task of the attempt (AWS); not set by the local engine itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
}

/// `AttemptDetail` as JSON; the flat `exitCode`/`reason`/`logStreamName` are read, never written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AttemptJson {
    container: AttemptContainer,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_reason: Option<String>,
    #[serde(skip_serializing)]
    exit_code: Option<i32>,
    #[serde(skip_serializing)]
    reason: Option<String>,
    #[serde(skip_serializing)]
    log_stream_name: Option<String>,
}

impl From<AttemptJson> for Attempt {
    fn from(j: AttemptJson) -> Self {
        Attempt {
            exit_code: j.container.exit_code.or(j.exit_code),
            reason: j.container.reason.or(j.reason),
            status_reason: j.status_reason,
            log_stream_name: j.container.log_stream_name.or(j.log_stream_name),
            started_at: j.started_at,
            stopped_at: j.stopped_at,
        }
    }
}

impl From<Attempt> for AttemptJson {
    fn from(a: Attempt) -> Self {
        AttemptJson {
            container: a.container(),
            started_at: a.started_at,
            stopped_at: a.stopped_at,
            status_reason: a.status_reason,
            ..AttemptJson::default()
        }
    }
}

impl Attempt {
    /// The attempt's `container` part, as AWS nests it.
    pub fn container(&self) -> AttemptContainer {
        AttemptContainer {
            exit_code: self.exit_code,
            reason: self.reason.clone(),
            log_stream_name: self.log_stream_name.clone(),
            task_arn: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Attempt {
        Attempt {
            exit_code: Some(75),
            reason: Some("Signal 9".into()),
            status_reason: Some("Essential container in task exited".into()),
            log_stream_name: Some("def/default/0f1e".into()),
            started_at: Some(10),
            stopped_at: Some(20),
        }
    }

    /// Issue 13: attempts were read flat, so AWS's per-attempt exit code and log stream were lost.
    #[test]
    fn attempts_are_written_and_read_in_aws_shape() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            v,
            json!({
                "container": {"exitCode": 75, "reason": "Signal 9", "logStreamName": "def/default/0f1e"},
                "startedAt": 10, "stoppedAt": 20, "statusReason": "Essential container in task exited"
            })
        );
        let aws = json!({
            "container": {"containerInstanceArn": "arn:x", "taskArn": "arn:t", "exitCode": 75,
                          "reason": "Signal 9", "logStreamName": "def/default/0f1e", "networkInterfaces": []},
            "startedAt": 10, "stoppedAt": 20, "statusReason": "Essential container in task exited",
            "taskProperties": []
        });
        assert_eq!(serde_json::from_value::<Attempt>(aws).unwrap(), sample());
    }

    #[test]
    fn the_flat_form_of_older_state_directories_still_reads() {
        let old = json!({"exitCode": 75, "reason": "Signal 9", "statusReason": "Essential container in task exited",
                         "logStreamName": "def/default/0f1e", "startedAt": 10, "stoppedAt": 20});
        assert_eq!(serde_json::from_value::<Attempt>(old).unwrap(), sample());
        let empty: Attempt = serde_json::from_value(json!({})).unwrap();
        assert_eq!(empty, Attempt::default());
        assert_eq!(serde_json::to_value(&empty).unwrap(), json!({"container": {}}));
    }
}
