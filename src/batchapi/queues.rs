//! Job queues: Create, Describe, Update, Delete, with AWS's rules: the
//! compute environments of a queue (1 to 3) must be VALID, all Fargate or all
//! EC2; a queue is deleted only once DISABLED, and its unfinished jobs are
//! terminated. Statuses as for compute environments ([`super::resources`]).

use serde_json::{json, Map, Value};

use super::{
    environments::{is_fargate, CE, JQ},
    error::{ApiError, ApiResult},
    resources::{begin, object, status, string_field, DescribeRequest},
    BatchApi,
};
use crate::batch::{Batch, JobQuery, JobStatus};

impl BatchApi {
    /// `computeEnvironmentOrder` checked (each environment exists and is
    /// VALID, no Fargate beside EC2) and with ARNs, as AWS answers it.
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
        let mut platforms = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let field = format!("computeEnvironmentOrder[{i}].computeEnvironment");
            let ce = e["computeEnvironment"]
                .as_str()
                .ok_or_else(|| ApiError::client(format!("{field} is required")))?;
            let order = e["order"].as_i64().ok_or_else(|| {
                ApiError::client(format!("computeEnvironmentOrder[{i}].order is required: give an integer"))
            })?;
            let (name, detail) = self.existing(CE, ce, &field)?;
            if status(&detail) != "VALID" {
                return Err(ApiError::client(format!(
                    "{field} {name:?} is {}: a compute environment must be VALID before a job queue uses it; wait for it (DescribeComputeEnvironments)",
                    status(&detail)
                )));
            }
            platforms.push((name, is_fargate(&detail)));
            out.push(json!({ "order": order, "computeEnvironment": detail["computeEnvironmentArn"] }));
        }
        if let (Some(f), Some(e)) = (platforms.iter().find(|(_, f)| *f), platforms.iter().find(|(_, f)| !*f))
        {
            return Err(ApiError::client(format!(
                "computeEnvironmentOrder mixes Fargate ({:?}) and EC2 ({:?}) compute environments: a job queue uses one or the other",
                f.0, e.0
            )));
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
        self.create(JQ, map)
    }

    pub(crate) async fn describe_job_queues(&self, req: DescribeRequest) -> ApiResult<Value> {
        self.describe(JQ, req, "jobQueues")
    }

    /// Applies the changes at once (`state` included), and is `UPDATING` for a while.
    pub(crate) async fn update_job_queue(&self, body: Value) -> ApiResult<Value> {
        let (mut changes, name, mut detail) = self.updating(JQ, body, "jobQueue", "DescribeJobQueues")?;
        if let Some(order) = changes.get("computeEnvironmentOrder").cloned() {
            changes.insert("computeEnvironmentOrder".into(), self.ce_order(&order)?);
        }
        if let Some(p) = changes.get("priority").filter(|p| !p.is_i64()) {
            return Err(ApiError::client(format!("priority {p} is not valid: give an integer")));
        }
        detail.extend(changes);
        begin(&mut detail, "UPDATING");
        self.save(JQ, &name, detail)
    }

    /// Deletes a DISABLED queue (`DELETING`, then gone); its jobs not yet
    /// finished are terminated, as on AWS.
    pub(crate) async fn delete_job_queue(&self, body: Value) -> ApiResult<Value> {
        let map = object(body, JQ)?;
        let reference = string_field(&map, "jobQueue")?;
        let (name, mut detail) = self.existing(JQ, reference, "jobQueue")?;
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
        if status(&detail) != "DELETING" {
            begin(&mut detail, "DELETING");
            self.save(JQ, &name, detail)?;
        }
        Ok(json!({}))
    }
}

/// Whether `detail` (a queue) lists compute environment `name`.
pub(crate) fn uses_environment(detail: &Map<String, Value>, name: &str) -> bool {
    detail
        .get("computeEnvironmentOrder")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|o| o["computeEnvironment"].as_str().is_some_and(|ce| super::name_of(ce, CE) == name))
}
