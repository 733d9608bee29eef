//! Request and response shapes of the Batch API, with AWS's field names (the
//! botocore service model `batch/2016-08-10`). Inputs keep required fields
//! optional so that a missing one gets a message naming it, and numbers
//! signed so that a negative one gets a range message, not a parse error.
//!
//! Job request shapes know every member of the service model (a test walks
//! it: tests/batch_api_support/service_model.rs) and refuse any other
//! (`deny_unknown_fields`), so a misspelt or newer member is an error naming
//! it, never silently dropped. Members the engine does not emulate are listed
//! in [`super::members`]: refused when they would change what runs, else
//! accepted and ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Tags: `TagrisTagsMap`.
pub type Tags = BTreeMap<String, String>;

/// `KeyValuePair` (environment variables).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValuePair {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// `ResourceRequirement`: `type` is `VCPU`, `MEMORY` or `GPU`; `value` a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRequirement {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// `EvaluateOnExit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvaluateOnExitIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit_code: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
}

/// `RetryStrategy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryStrategyIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluate_on_exit: Option<Vec<EvaluateOnExitIn>>,
}

/// `JobTimeout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobTimeout {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_duration_seconds: Option<i64>,
}

/// `JobDependency`: `type` is `N_TO_N`, `SEQUENTIAL` or absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DependencyIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `ArrayProperties` of SubmitJob.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayPropertiesIn {
    #[serde(default)]
    pub size: Option<i64>,
}

/// The container part of a job definition, or of `containerOverrides`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerIn {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub environment: Option<Vec<KeyValuePair>>,
    #[serde(default)]
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
    /// Deprecated form of the `VCPU` requirement.
    #[serde(default)]
    pub vcpus: Option<i64>,
    /// Deprecated form of the `MEMORY` requirement (MiB).
    #[serde(default)]
    pub memory: Option<i64>,
}

/// `ContainerOverrides` of SubmitJob.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerOverridesIn {
    pub vcpus: Option<i64>,
    pub memory: Option<i64>,
    pub command: Option<Vec<String>>,
    /// Multi-node jobs only: ignored ([`super::members::IGNORED`]).
    pub instance_type: Option<String>,
    pub environment: Option<Vec<KeyValuePair>>,
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
}

impl ContainerOverridesIn {
    /// The overrides as a container to lay over the definition's.
    pub fn to_container(&self) -> ContainerIn {
        ContainerIn {
            image: None,
            command: self.command.clone(),
            environment: self.environment.clone(),
            resource_requirements: self.resource_requirements.clone(),
            vcpus: self.vcpus,
            memory: self.memory,
        }
    }
}

/// A member kept only to be refused or ignored by name ([`super::members`]).
pub type NotEmulated = Option<serde::de::IgnoredAny>;

/// `SubmitJobRequest`: every member of the service model.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitJobRequest {
    pub job_name: Option<String>,
    pub job_queue: Option<String>,
    pub share_identifier: Option<String>,
    pub scheduling_priority_override: Option<i64>,
    pub array_properties: Option<ArrayPropertiesIn>,
    pub depends_on: Option<Vec<DependencyIn>>,
    pub job_definition: Option<String>,
    pub parameters: Option<BTreeMap<String, String>>,
    pub container_overrides: Option<ContainerOverridesIn>,
    pub node_overrides: NotEmulated,
    pub retry_strategy: Option<RetryStrategyIn>,
    pub propagate_tags: Option<bool>,
    pub timeout: Option<JobTimeout>,
    pub tags: Option<Tags>,
    pub eks_properties_override: NotEmulated,
    pub ecs_properties_override: NotEmulated,
    pub consumable_resource_properties_override: NotEmulated,
}

/// The parts of a registered job definition that a submission uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionIn {
    pub job_definition_name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub parameters: Option<BTreeMap<String, String>>,
    pub container_properties: Option<ContainerIn>,
    pub retry_strategy: Option<RetryStrategyIn>,
    pub propagate_tags: Option<bool>,
    pub timeout: Option<JobTimeout>,
    pub tags: Option<Tags>,
}

/// `AttemptContainerDetail`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptContainer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_stream_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
}

/// `AttemptDetail`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptOut {
    pub container: AttemptContainer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

/// `ArrayPropertiesDetail` / `ArrayPropertiesSummary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArrayOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_summary: Option<BTreeMap<String, u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

/// `ContainerDetail`, the fields the local engine knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOut {
    pub image: String,
    pub command: Vec<String>,
    pub environment: Vec<KeyValuePair>,
    pub resource_requirements: Vec<ResourceRequirement>,
    /// Always empty locally (no volumes, mount points, ulimits, network
    /// interfaces or secrets), present as in AWS's answers and events.
    pub volumes: Vec<Value>,
    pub mount_points: Vec<Value>,
    pub ulimits: Vec<Value>,
    pub network_interfaces: Vec<Value>,
    pub secrets: Vec<Value>,
    /// The last attempt's exit code, reason, log stream and task, as AWS repeats them here.
    #[serde(flatten)]
    pub last_attempt: AttemptContainer,
}

/// `JobDetail`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDetailOut {
    pub job_arn: String,
    pub job_name: String,
    pub job_id: String,
    pub job_queue: String,
    pub status: String,
    pub attempts: Vec<AttemptOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategyIn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
    pub depends_on: Vec<DependencyIn>,
    pub job_definition: String,
    pub parameters: BTreeMap<String, String>,
    pub container: ContainerOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub array_properties: Option<ArrayOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<JobTimeout>,
    pub tags: Tags,
    pub propagate_tags: bool,
    pub platform_capabilities: Vec<String>,
}

/// `ContainerSummary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSummaryOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `JobSummary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummaryOut {
    pub job_arn: String,
    pub job_id: String,
    pub job_name: String,
    pub created_at: i64,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
    pub container: ContainerSummaryOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub array_properties: Option<ArrayOut>,
}
