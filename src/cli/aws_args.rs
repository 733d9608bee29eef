//! `--backend` and the flags that say where a pipeline is deployed on AWS.

use clap::ValueEnum;

use crate::{backend::AwsTarget, env};

/// Which backend a command talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum BackendArg {
    /// The embedded backend under --state (default).
    #[default]
    Local,
    /// AWS: DynamoDB, S3, SNS and Batch, with the SDK's credentials, region and endpoint overrides.
    Aws,
}

/// Where the pipeline is deployed on AWS (`--backend aws`). Each flag falls
/// back to its `BATCHFAN_*` env var; the pipeline's Terraform module outputs all of them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AwsArgs {
    /// AWS region (default: the SDK's, from AWS_REGION or the profile).
    #[arg(long, env = "AWS_REGION", hide_env_values = true)]
    pub region: Option<String>,
    /// batchfan's DynamoDB table (default: the spec's storage.table).
    #[arg(long, env = env::TABLE)]
    pub table: Option<String>,
    /// The run bucket (default: the spec's storage.bucket).
    #[arg(long, env = env::BUCKET)]
    pub bucket: Option<String>,
    /// The Batch job queue jobs are submitted to.
    #[arg(long, env = env::JOB_QUEUE)]
    pub job_queue: Option<String>,
    /// Job definitions are {prefix}{stage}, {prefix}aggregation, {prefix}cleanup, {prefix}barrier.
    #[arg(long, env = env::JOB_DEFINITION_PREFIX)]
    pub job_definition_prefix: Option<String>,
    /// ARN of the plan topic (RunPlanned messages).
    #[arg(long, env = env::PLAN_TOPIC_ARN)]
    pub plan_topic_arn: Option<String>,
    /// ARN of the alerts topic.
    #[arg(long, env = env::ALERTS_TOPIC_ARN)]
    pub alerts_topic_arn: Option<String>,
}

impl AwsArgs {
    pub fn target(&self) -> AwsTarget {
        AwsTarget {
            region: self.region.clone(),
            table: self.table.clone(),
            bucket: self.bucket.clone(),
            job_queue: self.job_queue.clone(),
            job_definition_prefix: self.job_definition_prefix.clone(),
            plan_topic_arn: self.plan_topic_arn.clone(),
            alerts_topic_arn: self.alerts_topic_arn.clone(),
        }
    }
}

/// Where a command finds runs: `--backend`, and for AWS batchfan's table and
/// region (`status`, `logs`).
#[derive(Debug, Clone, clap::Args)]
pub struct RunsAt {
    /// Where the runs are: the embedded backend's state (--state), or AWS (DynamoDB and Batch).
    #[arg(long, value_enum, default_value_t, env = "BATCHFAN_BACKEND")]
    pub backend: BackendArg,
    /// --table is batchfan's table (default batchfan); --region for AWS.
    #[command(flatten)]
    pub aws: AwsArgs,
}
