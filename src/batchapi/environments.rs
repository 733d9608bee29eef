//! Compute environments: Create, Describe, Update, Delete. Each is kept as its
//! AWS detail (what was sent, plus ARN, `status`, `state`) and goes through
//! AWS's statuses (`CREATING` → `VALID`, `UPDATING` → `VALID`, `DELETING` →
//! gone: see [`super::resources`]). The local engine's capacity (`--vcpus`,
//! `--memory`) stands behind every compute environment. Job queues are in
//! [`super::queues`].

use serde_json::{json, Map, Value};

use super::{
    error::{ApiError, ApiResult},
    resources::{begin, object, status, string_field, DescribeRequest},
    BatchApi,
};

/// The store's kind and the ARN's resource type of compute environments.
pub(crate) const CE: &str = "compute-environment";
/// The store's kind and the ARN's resource type of job queues.
pub(crate) const JQ: &str = "job-queue";

/// `computeResources.type` values AWS accepts.
const RESOURCE_TYPES: [&str; 5] = ["EC2", "SPOT", "FARGATE", "FARGATE_SPOT", "ECS_MANAGED_INSTANCES"];

/// Whether a compute environment runs on Fargate (its queue may not mix Fargate and EC2).
pub(crate) fn is_fargate(detail: &Map<String, Value>) -> bool {
    let kind = detail.get("computeResources").and_then(|r| r.get("type")).and_then(Value::as_str);
    matches!(kind, Some("FARGATE" | "FARGATE_SPOT"))
}

fn non_empty_list(resources: &Map<String, Value>, field: &str) -> bool {
    resources.get(field).and_then(Value::as_array).is_some_and(|l| !l.is_empty())
}

/// What AWS requires of `computeResources` when creating a MANAGED compute environment.
fn check_compute_resources(resources: Option<&Value>) -> ApiResult<()> {
    let Some(Value::Object(r)) = resources else {
        return Err(ApiError::client(
            "computeResources is required for a MANAGED compute environment: give its type, maxvCpus and subnets",
        ));
    };
    let kind = r.get("type").and_then(Value::as_str).unwrap_or_default();
    if !RESOURCE_TYPES.contains(&kind) {
        return Err(ApiError::client(format!(
            "computeResources.type {} is not valid: use one of {}",
            r.get("type").cloned().unwrap_or(Value::Null),
            RESOURCE_TYPES.join(", ")
        )));
    }
    if r.get("maxvCpus").and_then(Value::as_i64).is_none_or(|n| n < 0) {
        return Err(ApiError::client(
            "computeResources.maxvCpus is required: give a whole number of vCPUs, 0 or more",
        ));
    }
    if !non_empty_list(r, "subnets") {
        return Err(ApiError::client(
            "computeResources.subnets is required: give the VPC subnets to launch in",
        ));
    }
    let fargate = kind.starts_with("FARGATE");
    if fargate && !non_empty_list(r, "securityGroupIds") {
        return Err(ApiError::client(format!(
            "computeResources.securityGroupIds is required for {kind} compute resources: give 1 to 5 security groups"
        )));
    }
    if fargate {
        if let Some(field) =
            ["minvCpus", "desiredvCpus", "instanceTypes", "instanceRole", "imageId", "ec2KeyPair"]
                .into_iter()
                .find(|f| r.contains_key(*f))
        {
            return Err(ApiError::client(format!(
                "computeResources.{field} does not apply to {kind} compute resources: leave it out"
            )));
        }
    } else if kind != "ECS_MANAGED_INSTANCES" {
        for field in ["instanceRole", "instanceTypes"] {
            if !r.contains_key(field) {
                return Err(ApiError::client(format!(
                    "computeResources.{field} is required for {kind} compute resources"
                )));
            }
        }
    }
    Ok(())
}

impl BatchApi {
    pub(crate) async fn create_compute_environment(&self, body: Value) -> ApiResult<Value> {
        let map = object(body, CE)?;
        match string_field(&map, "type")? {
            "MANAGED" => check_compute_resources(map.get("computeResources"))?,
            "UNMANAGED" if map.contains_key("computeResources") => {
                return Err(ApiError::client(
                    "computeResources is not valid for an UNMANAGED compute environment: leave it out (you launch its instances)",
                ))
            }
            "UNMANAGED" => {}
            other => {
                return Err(ApiError::client(format!(
                    "type {other:?} is not valid: use MANAGED or UNMANAGED"
                )))
            }
        }
        self.create(CE, map)
    }

    pub(crate) async fn describe_compute_environments(&self, req: DescribeRequest) -> ApiResult<Value> {
        self.describe(CE, req, "computeEnvironments")
    }

    /// Applies the changes at once (`state` included), and is `UPDATING` for a while.
    pub(crate) async fn update_compute_environment(&self, body: Value) -> ApiResult<Value> {
        let (changes, name, mut detail) =
            self.updating(CE, body, "computeEnvironment", "DescribeComputeEnvironments")?;
        for (k, v) in changes {
            match (detail.get_mut(&k), v) {
                (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
                (_, v) => {
                    detail.insert(k, v);
                }
            }
        }
        begin(&mut detail, "UPDATING");
        self.save(CE, &name, detail)
    }

    /// Deletes a DISABLED compute environment that no job queue uses: `DELETING`, then gone.
    pub(crate) async fn delete_compute_environment(&self, body: Value) -> ApiResult<Value> {
        let map = object(body, CE)?;
        let reference = string_field(&map, "computeEnvironment")?;
        let (name, mut detail) = self.existing(CE, reference, "computeEnvironment")?;
        if detail.get("state").and_then(Value::as_str) != Some("DISABLED") {
            return Err(ApiError::client(format!(
                "computeEnvironment {name:?} is ENABLED: disable it with UpdateComputeEnvironment (state DISABLED) first"
            )));
        }
        // A queue being deleted no longer holds its compute environments.
        for queue in self.current(JQ)? {
            if status(&queue) == "DELETING" {
                continue;
            }
            if super::queues::uses_environment(&queue, &name) {
                return Err(ApiError::client(format!(
                    "computeEnvironment {name:?} is used by job queue {}: remove it from the queue's computeEnvironmentOrder, or delete the queue, first",
                    queue["jobQueueName"]
                )));
            }
        }
        if status(&detail) != "DELETING" {
            begin(&mut detail, "DELETING");
            self.save(CE, &name, detail)?;
        }
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(resources: Value) -> String {
        check_compute_resources(Some(&resources)).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn managed_compute_resources_follow_aws_rules() {
        let fargate =
            json!({"type": "FARGATE_SPOT", "maxvCpus": 64, "subnets": ["s"], "securityGroupIds": ["g"]});
        assert_eq!(check(fargate.clone()), "");
        let mut with_min = fargate.clone();
        with_min["minvCpus"] = json!(0);
        assert!(check(with_min).contains("computeResources.minvCpus does not apply"));
        let mut no_groups = fargate;
        no_groups.as_object_mut().unwrap().remove("securityGroupIds");
        assert!(check(no_groups).contains("securityGroupIds is required"));
        let ec2 = json!({"type": "EC2", "maxvCpus": 4, "subnets": ["s"], "instanceTypes": ["optimal"]});
        assert!(check(ec2).contains("computeResources.instanceRole is required"));
        assert!(check(json!({"type": "GPU", "maxvCpus": 1})).contains("computeResources.type \"GPU\""));
        assert!(check(json!({"type": "EC2"})).contains("maxvCpus is required"));
        assert!(check_compute_resources(None).unwrap_err().to_string().contains("MANAGED"));
    }
}
