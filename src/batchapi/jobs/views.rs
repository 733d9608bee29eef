//! The engine's [`JobDetail`] and [`JobSummary`] in AWS's shapes: ARNs for the
//! job and its queue, `attempts[].container`, `arrayProperties.statusSummary`,
//! the container's requirements as `resourceRequirements`.

use serde_json::Value;

use super::super::{
    error::{ApiError, ApiResult},
    logs,
    model::{
        ArrayOut, AttemptContainer, AttemptOut, ContainerOut, ContainerSummaryOut, DependencyIn,
        EvaluateOnExitIn, JobDetailOut, JobSummaryOut, JobTimeout, KeyValuePair, ResourceRequirement,
        RetryStrategyIn,
    },
    BatchApi,
};
use crate::batch::{
    ArrayProperties, Attempt, DependencyKind, JobDetail, JobSummary, RetryAction, RetryStrategy,
};

fn retry_json(r: &RetryStrategy) -> RetryStrategyIn {
    RetryStrategyIn {
        attempts: Some(i64::from(r.attempts)),
        evaluate_on_exit: Some(
            r.evaluate_on_exit
                .iter()
                .map(|e| EvaluateOnExitIn {
                    on_status_reason: e.on_status_reason.clone(),
                    on_reason: e.on_reason.clone(),
                    on_exit_code: e.on_exit_code.clone(),
                    action: Some(match e.action {
                        RetryAction::Retry => "RETRY".into(),
                        RetryAction::Exit => "EXIT".into(),
                    }),
                })
                .collect(),
        ),
    }
}

fn array_json(a: &ArrayProperties) -> ArrayOut {
    ArrayOut {
        status_summary: (!a.status_summary.is_empty())
            .then(|| a.status_summary.iter().map(|(s, n)| (s.as_str().to_string(), *n)).collect()),
        size: a.size,
        index: a.index,
    }
}

/// vCPUs as AWS writes them: "1", "0.25".
fn vcpus_text(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as u64)
    } else {
        v.to_string()
    }
}

impl BatchApi {
    /// An attempt's outcome in `AttemptContainerDetail`'s shape: its log file
    /// named as AWS names the stream ([`logs::LogTarget`] of its job definition), its task ARN.
    fn attempt_container(&self, a: &Attempt, job_definition: &str) -> AttemptContainer {
        let file = a.log_stream_name.as_deref();
        AttemptContainer {
            exit_code: a.exit_code,
            reason: a.reason.clone(),
            log_stream_name: file.map(|f| self.log_target(job_definition).stream(f)),
            task_arn: file.map(|f| {
                let (region, account) = (&self.config.region, &self.config.account);
                format!("arn:aws:ecs:{region}:{account}:task/batchfan/{}", logs::task_id(f))
            }),
        }
    }

    pub(crate) fn detail_json(&self, d: &JobDetail) -> ApiResult<Value> {
        // A child's parameters are its parent's.
        let own_id = d.job_id.split_once(':').map_or(d.job_id.as_str(), |(parent, _)| parent);
        let extras = self.store.job(own_id)?;
        let out = JobDetailOut {
            job_arn: self.arn("job", &d.job_id),
            job_name: d.job_name.clone(),
            job_id: d.job_id.clone(),
            job_queue: self.arn("job-queue", &d.job_queue),
            status: d.status.as_str().into(),
            attempts: d
                .attempts
                .iter()
                .map(|a| AttemptOut {
                    container: self.attempt_container(a, &d.job_definition),
                    started_at: a.started_at,
                    stopped_at: a.stopped_at,
                    status_reason: a.status_reason.clone(),
                })
                .collect(),
            status_reason: d.status_reason.clone(),
            created_at: d.created_at,
            retry_strategy: Some(retry_json(&d.retry_strategy)),
            started_at: d.started_at,
            stopped_at: d.stopped_at,
            depends_on: d
                .depends_on
                .iter()
                .map(|dep| DependencyIn {
                    job_id: dep.job_id.clone(),
                    kind: match dep.kind {
                        DependencyKind::Standard => None,
                        DependencyKind::NToN => Some("N_TO_N".into()),
                        DependencyKind::Sequential => Some("SEQUENTIAL".into()),
                    },
                })
                .collect(),
            job_definition: d.job_definition.clone(),
            parameters: extras.parameters,
            container: ContainerOut {
                image: d.container.image.clone(),
                command: d.container.command.clone(),
                environment: d
                    .container
                    .environment
                    .iter()
                    .filter(|(k, _)| !k.starts_with("AWS_BATCH"))
                    .map(|(k, v)| KeyValuePair { name: Some(k.clone()), value: Some(v.clone()) })
                    .collect(),
                resource_requirements: vec![
                    ResourceRequirement { kind: "VCPU".into(), value: vcpus_text(d.container.vcpus) },
                    ResourceRequirement { kind: "MEMORY".into(), value: d.container.memory_mib.to_string() },
                ],
                last_attempt: d
                    .attempts
                    .last()
                    .map(|a| self.attempt_container(a, &d.job_definition))
                    .unwrap_or_default(),
                ..ContainerOut::default()
            },
            array_properties: d.array_properties.as_ref().map(array_json),
            timeout: d.timeout_seconds.map(|s| JobTimeout { attempt_duration_seconds: Some(s as i64) }),
            tags: d.tags.clone(),
            propagate_tags: extras.propagate_tags,
            platform_capabilities: vec!["EC2".into()],
        };
        serde_json::to_value(out)
            .map_err(|e| ApiError::Server(format!("cannot encode job {}: {e}", d.job_id)))
    }

    pub(super) fn summary_json(&self, s: &JobSummary) -> Value {
        let out = JobSummaryOut {
            job_arn: self.arn("job", &s.job_id),
            job_id: s.job_id.clone(),
            job_name: s.job_name.clone(),
            created_at: s.created_at,
            status: s.status.as_str().into(),
            status_reason: s.status_reason.clone(),
            started_at: s.started_at,
            stopped_at: s.stopped_at,
            container: ContainerSummaryOut { exit_code: s.exit_code, reason: None },
            array_properties: s.array_properties.as_ref().map(array_json),
        };
        serde_json::to_value(out).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcpus_are_written_like_aws() {
        assert_eq!(vcpus_text(1.0), "1");
        assert_eq!(vcpus_text(0.25), "0.25");
    }
}
