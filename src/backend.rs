//! Assembling the ports for a backend: the embedded local backend (the
//! default) and the AWS backend ([`aws_ports`] at an [`AwsTarget`]). Jobs
//! take theirs in [`crate::runtime`].
//!
//! Local state directory layout:
//!
//! ```text
//! .batchfan/
//!   engine.sqlite, engine.lock   the local Batch engine
//!   logs/                        one file per job attempt
//!   tables/{table}/NN.sqlite     the Table port, hash-sharded by pk (batchfan's records, job tables like Orders)
//!   buckets/{bucket}/{key}       the Objects port
//!   bus.sqlite                   the Topic port (plan and alert topics)
//! ```

use std::{path::PathBuf, sync::Arc};

use crate::{
    aws::{self, AwsSettings},
    env,
    error::PortError,
    run::{plan_topic, BackendKind, Ports},
    spec::PipelineSpec,
    topic::routes::Routed,
};

#[cfg(feature = "local")]
mod local;
#[cfg(feature = "local")]
pub use local::{BackendError, LocalBackend, LocalOptions};

/// Paths inside a local state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalLayout {
    pub root: PathBuf,
}

impl LocalLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalLayout { root: root.into() }
    }
    pub fn tables(&self) -> PathBuf {
        self.root.join("tables")
    }
    pub fn buckets(&self) -> PathBuf {
        self.root.join("buckets")
    }
    pub fn bus(&self) -> PathBuf {
        self.root.join("bus.sqlite")
    }
    /// The table relay's sockets (see [`crate::table::relay`]).
    pub fn relay(&self) -> PathBuf {
        self.root.join("relay")
    }
}

/// Where a pipeline is deployed on AWS: the names `--backend aws` and the
/// dispatchers use over the spec's (each from a flag or its `BATCHFAN_*` env var).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsTarget {
    /// AWS region; `None`: the SDK's (`AWS_REGION`, the profile).
    pub region: Option<String>,
    /// batchfan's DynamoDB table (`BATCHFAN_TABLE`; default: the spec's `storage.table`).
    pub table: Option<String>,
    /// The run bucket (`BATCHFAN_BUCKET`; default: the spec's `storage.bucket`).
    pub bucket: Option<String>,
    /// The Batch job queue (`BATCHFAN_JOB_QUEUE`).
    pub job_queue: Option<String>,
    /// Job definitions are `{prefix}{stage|aggregation|cleanup|barrier}` (`BATCHFAN_JOB_DEFINITION_PREFIX`).
    pub job_definition_prefix: Option<String>,
    /// The plan topic's ARN (`BATCHFAN_PLAN_TOPIC_ARN`).
    pub plan_topic_arn: Option<String>,
    /// The alerts topic's ARN (`BATCHFAN_ALERTS_TOPIC_ARN`).
    pub alerts_topic_arn: Option<String>,
}

impl AwsTarget {
    /// The target's names over the spec's: table, bucket, queue, job definition prefix.
    pub fn apply(&self, spec: &mut PipelineSpec) {
        if let Some(t) = &self.table {
            spec.storage.table = t.clone();
        }
        if let Some(b) = &self.bucket {
            spec.storage.bucket = b.clone();
        }
        if let Some(q) = &self.job_queue {
            spec.job_queue = q.clone();
        }
        if let Some(p) = &self.job_definition_prefix {
            spec.job_definition_prefix = p.clone();
        }
    }

    /// Routes the pipeline's topic names (`{pipeline}-plan`, the spec's
    /// alerts topic) to the target's ARNs in front of `ports.topic`.
    pub fn route_topics(&self, spec: &PipelineSpec, ports: &mut Ports) {
        let mut routed = Routed::new(ports.topic.clone());
        if let Some(arn) = &self.plan_topic_arn {
            routed = routed.route(plan_topic(&spec.name), arn.clone());
        }
        if let Some(arn) = &self.alerts_topic_arn {
            routed = routed.route(spec.alerts.topic.clone(), arn.clone());
        }
        ports.topic = Arc::new(routed);
    }

    /// The names a run driven from here needs, each missing one named with
    /// its flag and env var.
    pub fn require_for_run(&self) -> Result<(), String> {
        let missing: Vec<String> = [
            (self.job_queue.is_none(), "--job-queue", env::JOB_QUEUE),
            (self.job_definition_prefix.is_none(), "--job-definition-prefix", env::JOB_DEFINITION_PREFIX),
            (self.plan_topic_arn.is_none(), "--plan-topic-arn", env::PLAN_TOPIC_ARN),
            (self.alerts_topic_arn.is_none(), "--alerts-topic-arn", env::ALERTS_TOPIC_ARN),
        ]
        .into_iter()
        .filter(|(missing, _, _)| *missing)
        .map(|(_, flag, var)| format!("{flag} (or {var})"))
        .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "--backend aws needs where the pipeline is deployed: pass {}; the pipeline's Terraform module outputs each",
            missing.join(", ")
        ))
    }
}

/// Every port on AWS, on `clients`.
pub fn ports_on_aws(clients: &aws::AwsClients) -> Ports {
    Ports {
        kind: BackendKind::Aws,
        batch: Arc::new(clients.batch()),
        table: Arc::new(clients.table()),
        objects: Arc::new(clients.objects()),
        topic: Arc::new(clients.topic()),
        logs: Arc::new(clients.logs()),
    }
}

/// Every port on AWS for `spec` (if given) at `target`: the adapters on the
/// SDK's configuration, topics routed to the target's ARNs; and the clients
/// behind them (for their API-call tally).
pub async fn aws_ports(
    target: &AwsTarget,
    spec: Option<&PipelineSpec>,
) -> Result<(Ports, aws::AwsClients), PortError> {
    let settings = AwsSettings { region: target.region.clone(), ..AwsSettings::default() };
    let clients = aws::connect(settings).await?;
    let mut ports = ports_on_aws(&clients);
    if let Some(spec) = spec {
        target.route_topics(spec, &mut ports);
    }
    Ok((ports, clients))
}
