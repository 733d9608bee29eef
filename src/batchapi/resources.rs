//! What compute environments and job queues share: their stored AWS detail,
//! looking one up by name or ARN, Create and Describe, and their `status`
//! lifecycle.
//!
//! As on AWS, a change is not done when the call returns: a new resource is
//! `CREATING`, an updated one `UPDATING`, a deleted one `DELETING`, and
//! [`TRANSITION`] later it is `VALID` (or gone), so that clients' waiters
//! (Terraform's, `aws batch wait`) see the states they wait through. The
//! moment a transition ends is kept in the stored detail ([`SETTLES_AT`],
//! never answered) and applied when the resource is next read, so a restarted
//! server finishes what was in flight.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    environments::CE,
    error::{ApiError, ApiResult},
    name_of, page, validate, BatchApi,
};

/// How long a compute environment or job queue stays `CREATING`, `UPDATING`
/// or `DELETING` (AWS takes minutes; clients poll until it is over).
pub const TRANSITION: Duration = Duration::from_millis(1000);

/// Key of the stored detail holding when the current transition ends (epoch ms).
const SETTLES_AT: &str = "batchfanSettlesAt";

/// `DescribeComputeEnvironmentsRequest` / `DescribeJobQueuesRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRequest {
    #[serde(alias = "jobQueues")]
    compute_environments: Option<Vec<String>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// What an Update call changes: the changes asked, the resource's name and
/// its detail as it is now.
pub(crate) type Updating = (Map<String, Value>, String, Map<String, Value>);

/// The request body as a JSON object.
pub(crate) fn object(body: Value, what: &str) -> ApiResult<Map<String, Value>> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::client(format!("the {what} request body must be a JSON object"))),
    }
}

/// A required, non-empty string field.
pub(crate) fn string_field<'a>(map: &'a Map<String, Value>, field: &str) -> ApiResult<&'a str> {
    match map.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(other) => Err(ApiError::client(format!("{field} {other} is not valid: give a string"))),
        None => Err(ApiError::client(format!("{field} is required: set it in the request"))),
    }
}

/// `state`, when given, is ENABLED or DISABLED.
pub(crate) fn check_state(map: &Map<String, Value>) -> ApiResult<()> {
    match map.get("state") {
        None => Ok(()),
        Some(Value::String(s)) if s == "ENABLED" || s == "DISABLED" => Ok(()),
        Some(other) => Err(ApiError::client(format!("state {other} is not valid: use ENABLED or DISABLED"))),
    }
}

/// The detail's `status`.
pub(crate) fn status(detail: &Map<String, Value>) -> &str {
    detail.get("status").and_then(Value::as_str).unwrap_or_default()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Field names of `kind`: (name, ARN, healthy status reason).
fn fields(kind: &str) -> (&'static str, &'static str, &'static str) {
    if kind == CE {
        ("computeEnvironmentName", "computeEnvironmentArn", "ComputeEnvironment Healthy")
    } else {
        ("jobQueueName", "jobQueueArn", "JobQueue Healthy")
    }
}

/// Starts a transition: `status` (CREATING, UPDATING or DELETING) until [`TRANSITION`] from now.
pub(crate) fn begin(detail: &mut Map<String, Value>, status: &str) {
    detail.insert("status".into(), json!(status));
    detail.remove("statusReason");
    detail.insert(SETTLES_AT.into(), json!(now_ms() + TRANSITION.as_millis() as i64));
}

impl BatchApi {
    /// Ends `detail`'s transition if its time has come: VALID, or deleted
    /// (`None`) after DELETING. Returns the detail as it now is.
    fn settle(
        &self,
        kind: &str,
        name: &str,
        mut detail: Map<String, Value>,
    ) -> ApiResult<Option<Map<String, Value>>> {
        let due = detail.get(SETTLES_AT).and_then(Value::as_i64).is_some_and(|at| at <= now_ms());
        if !due {
            return Ok(Some(detail));
        }
        let (_, arn_field, healthy) = fields(kind);
        let before = Value::Object(detail.clone());
        let arn = detail.get(arn_field).and_then(Value::as_str).unwrap_or_default().to_string();
        let settled = if status(&detail) == "DELETING" {
            None
        } else {
            detail.remove(SETTLES_AT);
            detail.insert("status".into(), json!("VALID"));
            detail.insert("statusReason".into(), json!(healthy));
            Some(detail)
        };
        let after = settled.clone().map(Value::Object);
        if self.store.settle_resource(kind, name, &before, after.as_ref(), &arn)? {
            return Ok(settled);
        }
        // Another request changed it since we read it: its detail now.
        match self.store.resource(kind, name)? {
            Some(Value::Object(now)) => self.settle(kind, name, now),
            _ => Ok(None),
        }
    }

    /// Every compute environment or queue (`kind`) as it is now, in creation order.
    pub(crate) fn current(&self, kind: &str) -> ApiResult<Vec<Map<String, Value>>> {
        let (name_field, _, _) = fields(kind);
        let mut out = Vec::new();
        for stored in self.store.resources(kind)? {
            let Value::Object(detail) = stored else { continue };
            let name = detail.get(name_field).and_then(Value::as_str).unwrap_or_default().to_string();
            out.extend(self.settle(kind, &name, detail)?);
        }
        Ok(out)
    }

    /// The detail, as it is now, of a compute environment or queue named by name or ARN.
    pub(crate) fn existing(
        &self,
        kind: &str,
        reference: &str,
        field: &str,
    ) -> ApiResult<(String, Map<String, Value>)> {
        let name = name_of(reference, kind);
        let found = match self.store.resource(kind, name)? {
            Some(Value::Object(map)) => self.settle(kind, name, map)?,
            _ => None,
        };
        found
            .map(|map| (name.to_string(), map))
            .ok_or_else(|| ApiError::client(format!("{field} {reference:?} does not exist: create it first")))
    }

    /// The start of an Update call on a compute environment or queue ([`Updating`]): the
    /// changes asked (the body without `field`, the resource's reference),
    /// the resource's name and its detail as it is now. A resource still
    /// being created or deleted is refused, naming `describe` to wait with.
    pub(crate) fn updating(
        &self,
        kind: &str,
        body: Value,
        field: &str,
        describe: &str,
    ) -> ApiResult<Updating> {
        let mut changes = object(body, kind)?;
        check_state(&changes)?;
        let reference = string_field(&changes, field)?.to_string();
        let (name, detail) = self.existing(kind, &reference, field)?;
        if matches!(status(&detail), "CREATING" | "DELETING") {
            return Err(ApiError::client(format!(
                "{field} {name:?} is {}: wait until it is VALID ({describe}) to update it",
                status(&detail)
            )));
        }
        changes.remove(field);
        Ok((changes, name, detail))
    }

    /// Stores `detail` after a change and answers the name and ARN, as Update answers.
    pub(crate) fn save(&self, kind: &str, name: &str, detail: Map<String, Value>) -> ApiResult<Value> {
        let (name_field, arn_field, _) = fields(kind);
        let arn = detail.get(arn_field).cloned().unwrap_or_default();
        self.store.update_resource(kind, name, &Value::Object(detail))?;
        Ok(json!({ name_field: name, arn_field: arn }))
    }

    /// Creates a compute environment or queue from its (checked) request: CREATING at first.
    pub(crate) fn create(&self, kind: &str, mut map: Map<String, Value>) -> ApiResult<Value> {
        let (name_field, arn_field, _) = fields(kind);
        let name = string_field(&map, name_field)?.to_string();
        validate::name(&name, name_field)?;
        check_state(&map)?;
        let arn = self.arn(kind, &name);
        let tags: Option<super::model::Tags> =
            match map.remove("tags") {
                Some(tags) => Some(serde_json::from_value(tags).map_err(|e| {
                    ApiError::client(format!("tags is not valid: {e}: give a map of strings"))
                })?),
                None => None,
            };
        map.insert(arn_field.into(), json!(arn));
        map.entry("state").or_insert(json!("ENABLED"));
        begin(&mut map, "CREATING");
        if kind == CE {
            map.insert("ecsClusterArn".into(), json!(format!("arn:aws:ecs:local:cluster/{name}")));
            map.insert("containerOrchestrationType".into(), json!("ECS"));
        } else {
            map.entry("jobStateTimeLimitActions").or_insert(json!([]));
        }
        // A namesake whose deletion is over no longer holds the name.
        if let Some(Value::Object(old)) = self.store.resource(kind, &name)? {
            self.settle(kind, &name, old)?;
        }
        if !self.store.insert_resource(kind, &name, &Value::Object(map))? {
            return Err(ApiError::client(format!(
                "{name_field} {name:?} already exists: choose another name"
            )));
        }
        if let Some(tags) = tags {
            self.store.tag(&arn, &tags)?;
        }
        Ok(json!({ name_field: name, arn_field: arn }))
    }

    /// Describe: the details as they are now, filtered by name or ARN, paged, with their tags.
    pub(crate) fn describe(&self, kind: &str, req: DescribeRequest, out_field: &str) -> ApiResult<Value> {
        let (name_field, arn_field, _) = fields(kind);
        let mut all = self.current(kind)?;
        if let Some(wanted) = &req.compute_environments {
            all.retain(|d| {
                let name = d.get(name_field).and_then(Value::as_str).unwrap_or_default();
                wanted.iter().any(|w| name_of(w, kind) == name)
            });
        }
        let (rows, next) = page(all, req.max_results, req.next_token.as_deref())?;
        let mut out = Vec::with_capacity(rows.len());
        for mut d in rows {
            d.remove(SETTLES_AT);
            let arn = d.get(arn_field).and_then(Value::as_str).unwrap_or_default().to_string();
            d.insert("tags".into(), json!(self.store.tags(&arn)?));
            out.push(d);
        }
        Ok(json!({ out_field: out, "nextToken": next }))
    }
}
