//! A job's container: the definition's `containerProperties` with the
//! request's `containerOverrides` and `parameters` applied, as AWS does.

use std::collections::BTreeMap;

use super::super::{
    error::{ApiError, ApiResult},
    model::{ContainerIn, DefinitionIn},
    validate,
};
use crate::batch::ContainerSpec;

/// The array size AWS gives every child of an array job.
pub(crate) const AWS_BATCH_JOB_ARRAY_SIZE: &str = "AWS_BATCH_JOB_ARRAY_SIZE";

/// A `VCPU`/`MEMORY` requirement of `c` (or its deprecated `vcpus`/`memory`), as text.
fn requirement(c: &ContainerIn, kind: &str, field: &str) -> ApiResult<Option<String>> {
    let reqs = c.resource_requirements.as_deref().unwrap_or_default();
    if let Some(gpu) = reqs.iter().find(|r| r.kind == "GPU") {
        return Err(ApiError::client(format!(
            "{field}.resourceRequirements GPU {:?} is not emulated: the local engine has no GPUs; remove the GPU requirement",
            gpu.value
        )));
    }
    if let Some(r) = reqs.iter().find(|r| !matches!(r.kind.as_str(), "VCPU" | "MEMORY")) {
        return Err(ApiError::client(format!(
            "{field}.resourceRequirements type {:?} is not valid: use VCPU, MEMORY or GPU",
            r.kind
        )));
    }
    if let Some(r) = reqs.iter().find(|r| r.kind == kind) {
        return Ok(Some(r.value.clone()));
    }
    let legacy = if kind == "VCPU" { c.vcpus } else { c.memory };
    Ok(legacy.map(|v| v.to_string()))
}

/// Resolves the container of a submission of definition `def_name`.
pub(super) fn resolve(
    def_name: &str,
    def: &DefinitionIn,
    overrides: Option<&ContainerIn>,
    parameters: &BTreeMap<String, String>,
    array_size: Option<u32>,
) -> ApiResult<ContainerSpec> {
    let base = def.container_properties.clone().unwrap_or_default();
    let over = overrides.cloned().unwrap_or_default();
    let command = over.command.clone().or(base.command.clone()).unwrap_or_default();
    if command.first().is_none_or(String::is_empty) {
        return Err(ApiError::client(format!(
            "command is empty: set containerProperties.command on job definition {def_name:?}, or containerOverrides.command"
        )));
    }
    let mut environment: BTreeMap<String, String> = BTreeMap::new();
    environment.extend(validate::environment(
        base.environment.as_deref().unwrap_or_default(),
        "containerProperties.environment",
    )?);
    environment.extend(validate::environment(
        over.environment.as_deref().unwrap_or_default(),
        "containerOverrides.environment",
    )?);
    if let Some(n) = array_size {
        // The engine sets the index; the size is the API's to give, as AWS does.
        environment.insert(AWS_BATCH_JOB_ARRAY_SIZE.into(), n.to_string());
    }
    let pick = |kind: &str| -> ApiResult<Option<String>> {
        Ok(requirement(&over, kind, "containerOverrides")?.or(requirement(
            &base,
            kind,
            "containerProperties",
        )?))
    };
    let missing = |kind: &str| {
        ApiError::client(format!(
            "no {kind} requirement: set containerProperties.resourceRequirements (type {kind}) on job definition \
             {def_name:?}, or containerOverrides.resourceRequirements"
        ))
    };
    let vcpus_text = pick("VCPU")?.ok_or_else(|| missing("VCPU"))?;
    let vcpus: f64 = vcpus_text.parse().ok().filter(|v: &f64| v.is_finite() && *v > 0.0).ok_or_else(|| {
        ApiError::client(format!(
            "resourceRequirements VCPU {vcpus_text:?} is not valid: give a positive number of vCPUs, e.g. \"1\" or \"0.25\""
        ))
    })?;
    let memory_text = pick("MEMORY")?.ok_or_else(|| missing("MEMORY"))?;
    let memory_mib: u64 = memory_text.parse().ok().filter(|m| *m > 0).ok_or_else(|| {
        ApiError::client(format!(
            "resourceRequirements MEMORY {memory_text:?} is not valid: give a positive whole number of MiB, e.g. \"2048\""
        ))
    })?;
    Ok(ContainerSpec {
        image: base.image.unwrap_or_default(),
        command: validate::substitute(&command, parameters),
        environment,
        vcpus,
        memory_mib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batchapi::model::{KeyValuePair, ResourceRequirement};

    fn rr(kind: &str, value: &str) -> ResourceRequirement {
        ResourceRequirement { kind: kind.into(), value: value.into() }
    }

    #[test]
    fn overrides_win_over_the_definition() {
        let def = DefinitionIn {
            container_properties: Some(ContainerIn {
                image: Some("busybox".into()),
                command: Some(vec!["echo".into(), "Ref::who".into()]),
                environment: Some(vec![KeyValuePair { name: Some("A".into()), value: Some("1".into()) }]),
                resource_requirements: Some(vec![rr("VCPU", "1"), rr("MEMORY", "512")]),
                ..ContainerIn::default()
            }),
            ..DefinitionIn::default()
        };
        let over = ContainerIn {
            environment: Some(vec![KeyValuePair { name: Some("A".into()), value: Some("2".into()) }]),
            resource_requirements: Some(vec![rr("MEMORY", "256")]),
            ..ContainerIn::default()
        };
        let params = BTreeMap::from([("who".to_string(), "me".to_string())]);
        let c = resolve("d", &def, Some(&over), &params, Some(3)).unwrap();
        assert_eq!(c.command, ["echo", "me"]);
        assert_eq!((c.vcpus, c.memory_mib), (1.0, 256));
        assert_eq!(c.environment["A"], "2");
        assert_eq!(c.environment[AWS_BATCH_JOB_ARRAY_SIZE], "3");
        let gpu = ContainerIn { resource_requirements: Some(vec![rr("GPU", "1")]), ..ContainerIn::default() };
        assert!(resolve("d", &def, Some(&gpu), &params, None).unwrap_err().to_string().contains("GPU"));
        let e = resolve("d", &DefinitionIn::default(), None, &params, None).unwrap_err().to_string();
        assert!(e.starts_with("command is empty"), "{e}");
    }
}
