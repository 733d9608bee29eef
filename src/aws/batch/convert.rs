//! The Batch port's types ↔ aws-sdk-batch's.

use std::collections::BTreeMap;

use aws_sdk_batch::types as aws;

use crate::batch::{
    ArrayProperties, Attempt, ContainerSpec, DependencyKind, EvaluateOnExit, JobDependency, JobDetail,
    JobStatus, JobSummary, RetryAction, RetryStrategy, SubmitJob,
};

/// The SDK's status of ours.
pub(crate) fn to_status(status: JobStatus) -> aws::JobStatus {
    aws::JobStatus::from(status.as_str())
}

fn from_status(status: Option<&aws::JobStatus>, job_id: &str) -> Result<JobStatus, String> {
    let s = status.map(aws::JobStatus::as_str).unwrap_or_default();
    s.parse().map_err(|e| format!("job {job_id}: {e}"))
}

/// `dependsOn` as AWS takes it.
pub(crate) fn to_dependency(dep: &JobDependency) -> aws::JobDependency {
    let kind = match dep.kind {
        DependencyKind::Standard => None,
        DependencyKind::NToN => Some(aws::ArrayJobDependency::NToN),
        DependencyKind::Sequential => Some(aws::ArrayJobDependency::Sequential),
    };
    aws::JobDependency::builder().set_job_id(dep.job_id.clone()).set_type(kind).build()
}

fn from_dependency(dep: aws::JobDependency) -> JobDependency {
    let kind = match dep.r#type {
        Some(aws::ArrayJobDependency::NToN) => DependencyKind::NToN,
        Some(aws::ArrayJobDependency::Sequential) => DependencyKind::Sequential,
        _ => DependencyKind::Standard,
    };
    JobDependency { job_id: dep.job_id, kind }
}

/// `retryStrategy` as AWS takes it.
pub(crate) fn to_retry(strategy: &RetryStrategy) -> aws::RetryStrategy {
    let rules = strategy
        .evaluate_on_exit
        .iter()
        .map(|r| {
            aws::EvaluateOnExit::builder()
                .set_on_status_reason(r.on_status_reason.clone())
                .set_on_reason(r.on_reason.clone())
                .set_on_exit_code(r.on_exit_code.clone())
                .action(match r.action {
                    RetryAction::Retry => aws::RetryAction::Retry,
                    RetryAction::Exit => aws::RetryAction::Exit,
                })
                .build()
        })
        .collect::<Vec<_>>();
    aws::RetryStrategy::builder()
        .attempts(strategy.attempts as i32)
        .set_evaluate_on_exit((!rules.is_empty()).then_some(rules))
        .build()
}

fn from_retry(strategy: Option<aws::RetryStrategy>) -> RetryStrategy {
    let Some(s) = strategy else { return RetryStrategy::default() };
    let rules = s
        .evaluate_on_exit
        .unwrap_or_default()
        .into_iter()
        .map(|r| EvaluateOnExit {
            on_status_reason: r.on_status_reason,
            on_reason: r.on_reason,
            on_exit_code: r.on_exit_code,
            // AWS matches the action case-insensitively; anything but EXIT retries.
            action: match r.action.as_ref().map(|a| a.as_str().to_ascii_uppercase()) {
                Some(a) if a == "EXIT" => RetryAction::Exit,
                _ => RetryAction::Retry,
            },
        })
        .collect();
    RetryStrategy { attempts: s.attempts.unwrap_or(1).max(1) as u32, evaluate_on_exit: rules }
}

/// Container overrides: command, environment, and vCPU / memory requirements.
/// (The image is the job definition's: SubmitJob cannot override it.)
pub(crate) fn to_overrides(c: &ContainerSpec) -> aws::ContainerOverrides {
    let env = c
        .environment
        .iter()
        .map(|(k, v)| aws::KeyValuePair::builder().name(k).value(v).build())
        .collect::<Vec<_>>();
    let resources = vec![
        aws::ResourceRequirement::builder()
            .r#type(aws::ResourceType::Vcpu)
            .value(c.vcpus.to_string())
            .build(),
        aws::ResourceRequirement::builder()
            .r#type(aws::ResourceType::Memory)
            .value(c.memory_mib.to_string())
            .build(),
    ];
    aws::ContainerOverrides::builder()
        .set_command(Some(c.command.clone()))
        .set_environment((!env.is_empty()).then_some(env))
        .set_resource_requirements(Some(resources))
        .build()
}

fn from_container(c: Option<aws::ContainerDetail>) -> ContainerSpec {
    let Some(c) = c else { return ContainerSpec::default() };
    let mut vcpus = c.vcpus.map(f64::from).unwrap_or_default();
    let mut memory_mib = c.memory.map(|m| m.max(0) as u64).unwrap_or_default();
    for r in c.resource_requirements.unwrap_or_default() {
        match (r.r#type, r.value) {
            (Some(aws::ResourceType::Vcpu), Some(v)) => vcpus = v.parse().unwrap_or(vcpus),
            (Some(aws::ResourceType::Memory), Some(v)) => memory_mib = v.parse().unwrap_or(memory_mib),
            _ => {}
        }
    }
    let environment = c
        .environment
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| Some((kv.name?, kv.value.unwrap_or_default())))
        .collect();
    ContainerSpec {
        image: c.image.unwrap_or_default(),
        command: c.command.unwrap_or_default(),
        environment,
        vcpus,
        memory_mib,
    }
}

/// The index of an array child from its id (`parent:index`), for servers
/// that leave `arrayProperties.index` out.
fn index_from_id(job_id: &str) -> Option<u32> {
    job_id.rsplit_once(':').and_then(|(_, i)| i.parse().ok())
}

/// Whether `job_id` is an array child's (`parent:index`).
pub(crate) fn is_child_id(job_id: &str) -> bool {
    index_from_id(job_id).is_some()
}

fn array_properties(
    job_id: &str,
    size: Option<i32>,
    index: Option<i32>,
    summary: Option<std::collections::HashMap<String, i32>>,
) -> Option<ArrayProperties> {
    let index = index.map(|i| i.max(0) as u32).or_else(|| index_from_id(job_id));
    let size = size.map(|s| s.max(0) as u32);
    let status_summary: BTreeMap<JobStatus, u32> = summary
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.max(0) as u32)))
        .collect();
    (size.is_some() || index.is_some()).then_some(ArrayProperties { size, index, status_summary })
}

/// DescribeJobs' view of a job, in the port's terms.
pub(crate) fn from_detail(j: aws::JobDetail) -> Result<JobDetail, String> {
    let job_id = j.job_id.unwrap_or_default();
    let status = from_status(j.status.as_ref(), &job_id)?;
    let array = j.array_properties.map_or_else(
        || array_properties(&job_id, None, None, None),
        |a| array_properties(&job_id, a.size, a.index, a.status_summary),
    );
    let attempts = j
        .attempts
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            let c = a.container.unwrap_or_else(|| aws::AttemptContainerDetail::builder().build());
            Attempt {
                exit_code: c.exit_code,
                reason: c.reason,
                status_reason: a.status_reason,
                log_stream_name: c.log_stream_name,
                started_at: a.started_at,
                stopped_at: a.stopped_at,
            }
        })
        .collect();
    Ok(JobDetail {
        job_name: j.job_name.unwrap_or_default(),
        job_queue: j.job_queue.unwrap_or_default(),
        job_definition: j.job_definition.unwrap_or_default(),
        status,
        status_reason: j.status_reason,
        created_at: j.created_at.unwrap_or_default(),
        // botocore marks startedAt required: the SDK reads a missing one as 0 (never started).
        started_at: j.started_at.filter(|t| *t > 0),
        stopped_at: j.stopped_at,
        depends_on: j.depends_on.unwrap_or_default().into_iter().map(from_dependency).collect(),
        array_properties: array,
        attempts,
        container: from_container(j.container),
        retry_strategy: from_retry(j.retry_strategy),
        timeout_seconds: j.timeout.and_then(|t| t.attempt_duration_seconds).map(|s| s.max(0) as u64),
        tags: j.tags.unwrap_or_default().into_iter().collect(),
        job_id,
    })
}

/// ListJobs' view of a job, in the port's terms.
pub(crate) fn from_summary(j: aws::JobSummary) -> Result<JobSummary, String> {
    let job_id = j.job_id.unwrap_or_default();
    let status = from_status(j.status.as_ref(), &job_id)?;
    let array = j.array_properties.map_or_else(
        || array_properties(&job_id, None, None, None),
        |a| array_properties(&job_id, a.size, a.index, a.status_summary),
    );
    Ok(JobSummary {
        job_name: j.job_name.unwrap_or_default(),
        status,
        status_reason: j.status_reason,
        created_at: j.created_at.unwrap_or_default(),
        // botocore marks startedAt required: the SDK reads a missing one as 0 (never started).
        started_at: j.started_at.filter(|t| *t > 0),
        stopped_at: j.stopped_at,
        array_properties: array,
        exit_code: j.container.and_then(|c| c.exit_code),
        job_id,
    })
}

/// The tags and settings SubmitJob gets beyond the port's request: tags are
/// always propagated to the ECS tasks (so costs can be split by run).
pub(crate) const PROPAGATE_TAGS: bool = true;

/// A one-line description of a request, for error messages.
pub(crate) fn describe(req: &SubmitJob) -> String {
    format!("batch SubmitJob {} on queue {}", req.job_name, req.job_queue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_round_trip() {
        for dep in [JobDependency::on("a"), JobDependency::n_to_n("b"), JobDependency::sequential()] {
            assert_eq!(from_dependency(to_dependency(&dep)), dep);
        }
        assert_eq!(
            to_dependency(&JobDependency::on("a")).r#type,
            None,
            "a plain dependency has no type on aws"
        );
    }

    #[test]
    fn retry_strategies_round_trip() {
        let s = RetryStrategy::batchfan_default(3);
        assert_eq!(from_retry(Some(to_retry(&s))), s);
        let plain = RetryStrategy::default();
        assert_eq!(to_retry(&plain).evaluate_on_exit, None);
        assert_eq!(from_retry(Some(to_retry(&plain))), plain);
        assert_eq!(from_retry(None), plain);
    }

    #[test]
    fn overrides_carry_command_env_and_resources() {
        let c = ContainerSpec {
            image: "ignored".into(),
            command: vec!["orders-confirm".into(), "--fast".into()],
            environment: BTreeMap::from([("BATCHFAN_RUN".into(), "r1".into())]),
            vcpus: 0.25,
            memory_mib: 512,
        };
        let o = to_overrides(&c);
        assert_eq!(o.command.as_deref(), Some(&c.command[..]));
        let env = o.environment.clone().unwrap();
        assert_eq!((env[0].name.as_deref(), env[0].value.as_deref()), (Some("BATCHFAN_RUN"), Some("r1")));
        let res: Vec<(String, String)> = o
            .resource_requirements
            .clone()
            .unwrap()
            .into_iter()
            .map(|r| (r.r#type.unwrap().as_str().to_owned(), r.value.unwrap()))
            .collect();
        assert_eq!(res, [("VCPU".to_owned(), "0.25".to_owned()), ("MEMORY".to_owned(), "512".to_owned())]);
        let detail = aws::ContainerDetail::builder()
            .set_command(o.command)
            .set_environment(o.environment)
            .set_resource_requirements(o.resource_requirements)
            .image("img")
            .build();
        let back = from_container(Some(detail));
        assert_eq!(back, ContainerSpec { image: "img".into(), ..c });
    }

    #[test]
    fn children_get_their_index_from_the_id_when_missing() {
        assert_eq!(index_from_id("0f1e:7"), Some(7));
        assert_eq!(index_from_id("0f1e"), None);
        let props = array_properties("abc:3", None, None, None).unwrap();
        assert_eq!((props.size, props.index), (None, Some(3)));
        assert_eq!(array_properties("abc", None, None, None), None);
        let summary = std::collections::HashMap::from([("SUCCEEDED".to_owned(), 2), ("BOGUS".to_owned(), 1)]);
        let parent = array_properties("abc", Some(2), None, Some(summary)).unwrap();
        assert_eq!(parent.status_summary, BTreeMap::from([(JobStatus::Succeeded, 2)]));
    }

    #[test]
    fn statuses_map_by_their_aws_strings() {
        for st in JobStatus::ALL {
            assert_eq!(from_status(Some(&to_status(st)), "j"), Ok(st));
        }
        assert!(from_status(None, "j-1").unwrap_err().contains("j-1"));
    }
}
