//! RegisterJobDefinition, DescribeJobDefinitions, DeregisterJobDefinition, and
//! resolving the `jobDefinition` of a SubmitJob (name, `name:revision`, ARN).
//! A revision is kept as the request that registered it, so describing it
//! answers what was sent (what Terraform compares to re-plan).

use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    error::{ApiError, ApiResult},
    model::{ContainerIn, DefinitionIn, Tags},
    name_of, page,
    store::DefinitionRow,
    validate, BatchApi,
};

const KIND: &str = "job-definition";

/// `DescribeJobDefinitionsRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRequest {
    job_definitions: Option<Vec<String>>,
    max_results: Option<i64>,
    job_definition_name: Option<String>,
    status: Option<String>,
    next_token: Option<String>,
}

/// `DeregisterJobDefinitionRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterRequest {
    job_definition: Option<String>,
}

/// A definition reference split into name and revision (`None`: the latest ACTIVE one).
fn split_ref(reference: &str) -> (&str, Option<&str>) {
    let name = name_of(reference, KIND);
    match name.rsplit_once(':') {
        Some((n, rev)) => (n, Some(rev)),
        None => (name, None),
    }
}

/// vCPU values a Fargate job may ask for.
const FARGATE_VCPUS: [&str; 7] = ["0.25", "0.5", "1", "2", "4", "8", "16"];

/// `platformCapabilities` is `EC2` or `FARGATE`; a Fargate definition states
/// its vCPU (a Fargate size) and memory in `resourceRequirements`.
fn platform_capabilities(body: &Value, container: Option<&ContainerIn>) -> ApiResult<()> {
    let caps = match body.get("platformCapabilities") {
        None => return Ok(()),
        Some(Value::Array(caps)) => caps,
        Some(other) => {
            return Err(ApiError::client(format!(
                "platformCapabilities {other} is not valid: give a list, [\"EC2\"] or [\"FARGATE\"]"
            )))
        }
    };
    let mut fargate = false;
    for cap in caps {
        match cap.as_str() {
            Some("EC2") => {}
            Some("FARGATE") => fargate = true,
            _ => {
                return Err(ApiError::client(format!(
                    "platformCapabilities {cap} is not valid: use EC2 or FARGATE"
                )))
            }
        }
    }
    if !fargate {
        return Ok(());
    }
    let requirements = container.and_then(|c| c.resource_requirements.as_deref()).unwrap_or_default();
    let value = |kind: &str| requirements.iter().find(|r| r.kind == kind).map(|r| r.value.as_str());
    match value("VCPU") {
        Some(v) if FARGATE_VCPUS.contains(&v) => {}
        other => {
            return Err(ApiError::client(format!(
                "containerProperties.resourceRequirements VCPU {} is not valid for FARGATE: use one of {}",
                other.map_or("(none)".to_string(), |v| format!("{v:?}")),
                FARGATE_VCPUS.join(", ")
            )))
        }
    }
    if !value("MEMORY").is_some_and(|m| m.parse::<u64>().is_ok_and(|m| m >= 512)) {
        return Err(ApiError::client(
            "containerProperties.resourceRequirements MEMORY is required for FARGATE: give MiB, 512 or more",
        ));
    }
    Ok(())
}

impl BatchApi {
    fn definition_arn(&self, row: &DefinitionRow) -> String {
        self.arn(KIND, &format!("{}:{}", row.name, row.revision))
    }

    pub(crate) async fn register_job_definition(&self, body: Value) -> ApiResult<Value> {
        let req: DefinitionIn = serde_json::from_value(body.clone()).map_err(|e| {
            ApiError::client(format!("request body is not a RegisterJobDefinition request: {e}"))
        })?;
        let name = validate::required(&req.job_definition_name, "jobDefinitionName")?;
        validate::name(name, "jobDefinitionName")?;
        match validate::required(&req.kind, "type")? {
            "container" => {}
            other => {
                return Err(ApiError::client(format!(
                    "type {other:?} is not emulated: the local engine runs type \"container\" job definitions"
                )))
            }
        }
        if let Some(r) = &req.retry_strategy {
            validate::retry_strategy(r, "retryStrategy")?;
        }
        if let Some(t) = req.timeout.as_ref().and_then(|t| t.attempt_duration_seconds) {
            validate::timeout(t, "timeout.attemptDurationSeconds")?;
        }
        if let Some(env) = req.container_properties.as_ref().and_then(|c| c.environment.as_ref()) {
            validate::environment(env, "containerProperties.environment")?;
        }
        platform_capabilities(&body, req.container_properties.as_ref())?;
        let revision = self.store.add_definition(name, &body)?;
        let arn = self.arn(KIND, &format!("{name}:{revision}"));
        if let Some(tags) = &req.tags {
            self.store.tag(&arn, tags)?;
        }
        Ok(json!({ "jobDefinitionName": name, "jobDefinitionArn": arn, "revision": revision }))
    }

    fn definition_json(&self, row: &DefinitionRow) -> ApiResult<Value> {
        let mut out = match &row.body {
            Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        let arn = self.definition_arn(row);
        let tags: Tags = self.store.tags(&arn)?;
        out.insert("jobDefinitionName".into(), json!(row.name));
        out.insert("jobDefinitionArn".into(), json!(arn));
        out.insert("revision".into(), json!(row.revision));
        out.insert("status".into(), json!(row.status));
        out.insert("tags".into(), json!(tags));
        out.entry("containerOrchestrationType").or_insert(json!("ECS"));
        Ok(Value::Object(out))
    }

    pub(crate) async fn describe_job_definitions(&self, req: DescribeRequest) -> ApiResult<Value> {
        let mut rows = self.store.definitions(req.job_definition_name.as_deref())?;
        if let Some(refs) = &req.job_definitions {
            rows.retain(|row| {
                refs.iter().any(|r| match split_ref(r) {
                    (name, Some(rev)) => name == row.name && rev == row.revision.to_string(),
                    (name, None) => name == row.name,
                })
            });
        }
        if let Some(status) = &req.status {
            rows.retain(|row| row.status.eq_ignore_ascii_case(status));
        }
        let (rows, next) = page(rows, req.max_results, req.next_token.as_deref())?;
        let defs = rows.iter().map(|r| self.definition_json(r)).collect::<ApiResult<Vec<_>>>()?;
        Ok(json!({ "jobDefinitions": defs, "nextToken": next }))
    }

    pub(crate) async fn deregister_job_definition(&self, req: DeregisterRequest) -> ApiResult<Value> {
        let reference = validate::required(&req.job_definition, "jobDefinition")?;
        let row = self.resolve_definition(reference, true)?;
        self.store.deactivate_definition(&row.name, row.revision)?;
        Ok(json!({}))
    }

    /// The revision a `jobDefinition` names: `name` (the latest ACTIVE one),
    /// `name:revision` or its ARN. With `inactive_ok` an INACTIVE revision is found too.
    pub(crate) fn resolve_definition(&self, reference: &str, inactive_ok: bool) -> ApiResult<DefinitionRow> {
        let (name, revision) = split_ref(reference);
        let rows = self.store.definitions(Some(name))?;
        let found = match revision {
            Some(rev) => {
                let rev: i64 = rev.parse().map_err(|_| {
                    ApiError::client(format!(
                        "jobDefinition {reference:?} is not valid: use NAME, NAME:REVISION or the job definition's ARN"
                    ))
                })?;
                rows.into_iter().find(|r| r.revision == rev && (inactive_ok || r.status == "ACTIVE"))
            }
            None => rows.into_iter().rev().find(|r| r.status == "ACTIVE"),
        };
        found.ok_or_else(|| {
            ApiError::client(format!(
                "jobDefinition {reference:?} does not exist or is not ACTIVE: register it with RegisterJobDefinition"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{super::model::ResourceRequirement, *};

    #[test]
    fn fargate_definitions_state_a_fargate_size() {
        let props = |vcpu: &str, memory: &str| ContainerIn {
            resource_requirements: Some(vec![
                ResourceRequirement { kind: "VCPU".into(), value: vcpu.into() },
                ResourceRequirement { kind: "MEMORY".into(), value: memory.into() },
            ]),
            ..ContainerIn::default()
        };
        let fargate = json!({ "platformCapabilities": ["FARGATE"] });
        assert!(platform_capabilities(&fargate, Some(&props("1", "2048"))).is_ok());
        let e = platform_capabilities(&fargate, Some(&props("3", "2048"))).unwrap_err().to_string();
        assert!(e.contains("VCPU \"3\" is not valid"), "{e}");
        let e = platform_capabilities(&fargate, Some(&props("1", "64"))).unwrap_err().to_string();
        assert!(e.contains("MEMORY is required"), "{e}");
        let e =
            platform_capabilities(&json!({ "platformCapabilities": ["GPU"] }), None).unwrap_err().to_string();
        assert!(e.contains("\"GPU\""), "{e}");
        assert!(platform_capabilities(&json!({ "platformCapabilities": ["EC2"] }), None).is_ok());
    }

    #[test]
    fn references_split_into_name_and_revision() {
        assert_eq!(split_ref("d"), ("d", None));
        assert_eq!(split_ref("d:3"), ("d", Some("3")));
        assert_eq!(split_ref("arn:aws:batch:us-east-1:1:job-definition/d:3"), ("d", Some("3")));
    }
}
