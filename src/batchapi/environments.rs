//! Compute environments and job queues: Create, Describe, Update, Delete.
//! Each is kept as its AWS detail (what was sent, plus ARN, `status`, `state`)
//! and is `VALID` as soon as it is created: the local engine's capacity
//! (`--vcpus`, `--memory`) stands behind every compute environment.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    error::{ApiError, ApiResult},
    name_of, page, validate, BatchApi,
};
use crate::batch::{Batch, JobQuery, JobStatus};

/// The store's kind and the ARN's resource type of compute environments.
pub(crate) const CE: &str = "compute-environment";
/// The store's kind and the ARN's resource type of job queues.
pub(crate) const JQ: &str = "job-queue";

/// `DescribeComputeEnvironmentsRequest` / `DescribeJobQueuesRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRequest {
    #[serde(alias = "jobQueues")]
    compute_environments: Option<Vec<String>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

fn object(body: Value, what: &str) -> ApiResult<Map<String, Value>> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::client(format!("the {what} request body must be a JSON object"))),
    }
}

fn string_field<'a>(map: &'a Map<String, Value>, field: &str) -> ApiResult<&'a str> {
    match map.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(other) => Err(ApiError::client(format!("{field} {other} is not valid: give a string"))),
        None => Err(ApiError::client(format!("{field} is required: set it in the request"))),
    }
}

fn check_state(map: &Map<String, Value>) -> ApiResult<()> {
    match map.get("state") {
        None => Ok(()),
        Some(Value::String(s)) if s == "ENABLED" || s == "DISABLED" => Ok(()),
        Some(other) => Err(ApiError::client(format!("state {other} is not valid: use ENABLED or DISABLED"))),
    }
}

impl BatchApi {
    /// The stored detail of a compute environment or queue named by name or ARN.
    pub(crate) fn existing(
        &self,
        kind: &str,
        reference: &str,
        field: &str,
    ) -> ApiResult<(String, Map<String, Value>)> {
        let name = name_of(reference, kind);
        match self.store.resource(kind, name)? {
            Some(Value::Object(map)) => Ok((name.to_string(), map)),
            _ => Err(ApiError::client(format!("{field} {reference:?} does not exist: create it first"))),
        }
    }

    fn create(&self, kind: &str, body: Value, name_field: &str, arn_field: &str) -> ApiResult<Value> {
        let mut map = object(body, kind)?;
        let name = string_field(&map, name_field)?.to_string();
        validate::name(&name, name_field)?;
        check_state(&map)?;
        let arn = self.arn(kind, &name);
        if let Some(tags) = map.remove("tags") {
            let tags = serde_json::from_value(tags)
                .map_err(|e| ApiError::client(format!("tags is not valid: {e}: give a map of strings")))?;
            self.store.tag(&arn, &tags)?;
        }
        map.insert(arn_field.into(), json!(arn));
        map.entry("state").or_insert(json!("ENABLED"));
        map.insert("status".into(), json!("VALID"));
        if kind == CE {
            map.insert("statusReason".into(), json!("ComputeEnvironment Healthy"));
            map.insert("ecsClusterArn".into(), json!(format!("arn:aws:ecs:local:cluster/{name}")));
            map.insert("containerOrchestrationType".into(), json!("ECS"));
        } else {
            map.insert("statusReason".into(), json!("JobQueue Healthy"));
            map.entry("jobStateTimeLimitActions").or_insert(json!([]));
        }
        if !self.store.insert_resource(kind, &name, &Value::Object(map))? {
            return Err(ApiError::client(format!(
                "{name_field} {name:?} already exists: choose another name"
            )));
        }
        Ok(json!({ name_field: name, arn_field: arn }))
    }

    fn describe(&self, kind: &str, req: DescribeRequest, out_field: &str) -> ApiResult<Value> {
        let mut all = self.store.resources(kind)?;
        if let Some(wanted) = &req.compute_environments {
            let name_field = if kind == CE { "computeEnvironmentName" } else { "jobQueueName" };
            all.retain(|d| {
                let name = d.get(name_field).and_then(Value::as_str).unwrap_or_default();
                wanted.iter().any(|w| name_of(w, kind) == name)
            });
        }
        let (rows, next) = page(all, req.max_results, req.next_token.as_deref())?;
        let arn_field = if kind == CE { "computeEnvironmentArn" } else { "jobQueueArn" };
        let mut out = Vec::with_capacity(rows.len());
        for mut d in rows {
            let arn = d.get(arn_field).and_then(Value::as_str).unwrap_or_default().to_string();
            d["tags"] = json!(self.store.tags(&arn)?);
            out.push(d);
        }
        Ok(json!({ out_field: out, "nextToken": next }))
    }

    pub(crate) async fn create_compute_environment(&self, body: Value) -> ApiResult<Value> {
        let map = object(body.clone(), CE)?;
        match string_field(&map, "type")? {
            "MANAGED" | "UNMANAGED" => {}
            other => {
                return Err(ApiError::client(format!(
                    "type {other:?} is not valid: use MANAGED or UNMANAGED"
                )))
            }
        }
        self.create(CE, body, "computeEnvironmentName", "computeEnvironmentArn")
    }

    pub(crate) async fn describe_compute_environments(&self, req: DescribeRequest) -> ApiResult<Value> {
        self.describe(CE, req, "computeEnvironments")
    }

    pub(crate) async fn update_compute_environment(&self, body: Value) -> ApiResult<Value> {
        let mut changes = object(body, CE)?;
        check_state(&changes)?;
        let reference = string_field(&changes, "computeEnvironment")?.to_string();
        let (name, mut detail) = self.existing(CE, &reference, "computeEnvironment")?;
        changes.remove("computeEnvironment");
        for (k, v) in changes {
            match (detail.get_mut(&k), v) {
                (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
                (_, v) => {
                    detail.insert(k, v);
                }
            }
        }
        let arn = detail.get("computeEnvironmentArn").cloned().unwrap_or_default();
        self.store.update_resource(CE, &name, &Value::Object(detail))?;
        Ok(json!({ "computeEnvironmentName": name, "computeEnvironmentArn": arn }))
    }

    pub(crate) async fn delete_compute_environment(&self, body: Value) -> ApiResult<Value> {
        let map = object(body, CE)?;
        let reference = string_field(&map, "computeEnvironment")?;
        let (name, detail) = self.existing(CE, reference, "computeEnvironment")?;
        let arn = detail.get("computeEnvironmentArn").and_then(Value::as_str).unwrap_or_default().to_string();
        if detail.get("state").and_then(Value::as_str) != Some("DISABLED") {
            return Err(ApiError::client(format!(
                "computeEnvironment {name:?} is ENABLED: disable it with UpdateComputeEnvironment (state DISABLED) first"
            )));
        }
        for queue in self.store.resources(JQ)? {
            let uses = queue["computeEnvironmentOrder"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["computeEnvironment"].as_str().is_some_and(|ce| name_of(ce, CE) == name));
            if uses {
                return Err(ApiError::client(format!(
                    "computeEnvironment {name:?} is used by job queue {}: remove it from the queue's computeEnvironmentOrder first",
                    queue["jobQueueName"]
                )));
            }
        }
        self.store.delete_resource(CE, &name, &arn)?;
        Ok(json!({}))
    }

    /// `computeEnvironmentOrder` checked (each environment exists) and with ARNs, as AWS answers it.
    fn ce_order(&self, order: &Value) -> ApiResult<Value> {
        let entries = order.as_array().ok_or_else(|| {
            ApiError::client(
                "computeEnvironmentOrder is not valid: give a list of {order, computeEnvironment}",
            )
        })?;
        if entries.is_empty() || entries.len() > 3 {
            return Err(ApiError::client(format!(
                "computeEnvironmentOrder has {} entries: AWS Batch allows 1 to 3",
                entries.len()
            )));
        }
        let mut out = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let ce = e["computeEnvironment"].as_str().ok_or_else(|| {
                ApiError::client(format!("computeEnvironmentOrder[{i}].computeEnvironment is required"))
            })?;
            let order = e["order"].as_i64().ok_or_else(|| {
                ApiError::client(format!("computeEnvironmentOrder[{i}].order is required: give an integer"))
            })?;
            let (_, detail) =
                self.existing(CE, ce, &format!("computeEnvironmentOrder[{i}].computeEnvironment"))?;
            out.push(json!({ "order": order, "computeEnvironment": detail["computeEnvironmentArn"] }));
        }
        Ok(Value::Array(out))
    }

    pub(crate) async fn create_job_queue(&self, body: Value) -> ApiResult<Value> {
        let mut map = object(body, JQ)?;
        if !map.get("priority").is_some_and(Value::is_i64) {
            return Err(ApiError::client("priority is required: give an integer (higher runs first)"));
        }
        let order = map.get("computeEnvironmentOrder").cloned().unwrap_or(Value::Array(Vec::new()));
        map.insert("computeEnvironmentOrder".into(), self.ce_order(&order)?);
        self.create(JQ, Value::Object(map), "jobQueueName", "jobQueueArn")
    }

    pub(crate) async fn describe_job_queues(&self, req: DescribeRequest) -> ApiResult<Value> {
        self.describe(JQ, req, "jobQueues")
    }

    pub(crate) async fn update_job_queue(&self, body: Value) -> ApiResult<Value> {
        let mut changes = object(body, JQ)?;
        check_state(&changes)?;
        let reference = string_field(&changes, "jobQueue")?.to_string();
        let (name, mut detail) = self.existing(JQ, &reference, "jobQueue")?;
        changes.remove("jobQueue");
        if let Some(order) = changes.get("computeEnvironmentOrder").cloned() {
            changes.insert("computeEnvironmentOrder".into(), self.ce_order(&order)?);
        }
        detail.extend(changes);
        let arn = detail.get("jobQueueArn").cloned().unwrap_or_default();
        self.store.update_resource(JQ, &name, &Value::Object(detail))?;
        Ok(json!({ "jobQueueName": name, "jobQueueArn": arn }))
    }

    /// Deletes a DISABLED queue; its jobs not yet finished are terminated, as on AWS.
    pub(crate) async fn delete_job_queue(&self, body: Value) -> ApiResult<Value> {
        let map = object(body, JQ)?;
        let reference = string_field(&map, "jobQueue")?;
        let (name, detail) = self.existing(JQ, reference, "jobQueue")?;
        if detail.get("state").and_then(Value::as_str) != Some("DISABLED") {
            return Err(ApiError::client(format!(
                "jobQueue {name:?} is ENABLED: disable it with UpdateJobQueue (state DISABLED) first"
            )));
        }
        for status in JobStatus::ALL.into_iter().filter(|s| !s.is_terminal()) {
            let query = JobQuery::ByStatus { queue: name.clone(), status };
            for job in self.engine.list_jobs(&query).await? {
                self.engine.terminate_job(&job.job_id, "Job queue deleted").await?;
            }
        }
        let arn = detail.get("jobQueueArn").and_then(Value::as_str).unwrap_or_default().to_string();
        self.store.delete_resource(JQ, &name, &arn)?;
        Ok(json!({}))
    }
}
