//! Each job queue's capacity, from its compute environments: the stored
//! queue and compute environment details (their AWS shape) turned into the
//! engine's [`CapacityPools`] after every change to either, and at start.
//!
//! | detail | capacity |
//! | --- | --- |
//! | MANAGED, `computeResources.maxvCpus` N | N vCPUs, shared by every queue on it |
//! | UNMANAGED (no `maxvCpus` on AWS) | the engine's `--vcpus` |
//! | `state` DISABLED, `status` INVALID/DELETING/DELETED | none: jobs wait RUNNABLE |
//!
//! The engine's `--vcpus`/`--memory` cap the sum (the machine). A DISABLED
//! queue takes no new jobs (SubmitJob refuses them) but its jobs keep
//! running, as AWS documents ("jobs already in the queue can finish").

use serde_json::Value;

use super::{
    environments::{CE, JQ},
    error::ApiResult,
    name_of, BatchApi,
};
use crate::engine::{CapacityPools, PoolEnvironment, PoolQueue};

/// A compute environment's capacity from its stored detail.
fn environment(detail: &Value) -> PoolEnvironment {
    let usable = detail["state"].as_str() != Some("DISABLED")
        && !matches!(detail["status"].as_str(), Some("INVALID" | "DELETING" | "DELETED"));
    let max_vcpus = match detail["type"].as_str() {
        Some("UNMANAGED") => None,
        _ => detail["computeResources"]["maxvCpus"].as_f64(),
    };
    PoolEnvironment { max_vcpus, usable }
}

/// A queue's compute environments by name, in `order`.
fn queue(detail: &Value) -> PoolQueue {
    let mut order: Vec<(i64, String)> = detail["computeEnvironmentOrder"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            let ce = o["computeEnvironment"].as_str()?;
            Some((o["order"].as_i64().unwrap_or(0), name_of(ce, CE).to_string()))
        })
        .collect();
    order.sort();
    PoolQueue { environments: order.into_iter().map(|(_, name)| name).collect() }
}

/// The pools of every stored compute environment and queue.
pub(crate) fn pools(environments: &[Value], queues: &[Value]) -> CapacityPools {
    let named = |d: &Value, field: &str| d[field].as_str().map(str::to_string);
    CapacityPools {
        environments: environments
            .iter()
            .filter_map(|d| Some((named(d, "computeEnvironmentName")?, environment(d))))
            .collect(),
        queues: queues.iter().filter_map(|d| Some((named(d, "jobQueueName")?, queue(d)))).collect(),
    }
}

impl BatchApi {
    /// Gives the engine the capacity of every queue as it is now (due status
    /// transitions applied first, as every Describe does).
    pub(crate) fn sync_capacity(&self) -> ApiResult<()> {
        let now = |kind| -> ApiResult<Vec<Value>> {
            Ok(self.current(kind)?.into_iter().map(Value::Object).collect())
        };
        let pools = pools(&now(CE)?, &now(JQ)?);
        self.engine.set_capacity_pools(Some(pools));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn details_become_pools() {
        let ces = [
            json!({"computeEnvironmentName": "m", "type": "MANAGED", "state": "ENABLED", "status": "VALID",
                   "computeResources": {"maxvCpus": 2}}),
            json!({"computeEnvironmentName": "u", "type": "UNMANAGED", "state": "ENABLED", "status": "VALID"}),
            json!({"computeEnvironmentName": "off", "type": "MANAGED", "state": "DISABLED", "status": "VALID",
                   "computeResources": {"maxvCpus": 8}}),
            json!({"computeEnvironmentName": "bad", "type": "UNMANAGED", "state": "ENABLED", "status": "INVALID"}),
        ];
        let queues = [json!({"jobQueueName": "q", "computeEnvironmentOrder": [
            {"order": 2, "computeEnvironment": "arn:aws:batch:us-east-1:123456789012:compute-environment/u"},
            {"order": 1, "computeEnvironment": "arn:aws:batch:us-east-1:123456789012:compute-environment/m"}]})];
        let p = pools(&ces, &queues);
        assert_eq!(p.environments["m"], PoolEnvironment { max_vcpus: Some(2.0), usable: true });
        assert_eq!(p.environments["u"], PoolEnvironment { max_vcpus: None, usable: true });
        assert!(!p.environments["off"].usable && !p.environments["bad"].usable);
        assert_eq!(p.queues["q"].environments, ["m", "u"], "by order, names out of ARNs");
    }
}
