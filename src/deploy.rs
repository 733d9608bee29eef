//! The AWS deployment contract, as data: the Lambda binaries, the environment
//! each reads, the IAM actions each calls, and the table's key names.
//!
//! `terraform/modules/pipeline` must agree with this module; a test reads the
//! Terraform and fails when they disagree. Code that reads an env var or calls
//! an AWS action on AWS must be listed here.

use crate::env;

/// Partition key attribute of every batchfan DynamoDB table.
pub const TABLE_PARTITION_KEY: &str = "pk";
/// Sort key attribute of every batchfan DynamoDB table.
pub const TABLE_SORT_KEY: &str = "sk";
/// DynamoDB TTL attribute (Unix seconds) on scratch rows (work items, results, leases).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// What kind of thing runs the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// A Lambda function: `batchfan-lambda` as `bootstrap` in
    /// `{name}/bootstrap.zip`, with handler `{name}`.
    Lambda,
    /// A Batch job (the job role).
    Job,
}

/// One deployed component.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    /// The Lambda's handler and zip directory (`{name}/bootstrap.zip`), or `job`.
    pub name: &'static str,
    pub runs: Runs,
    /// Environment variables the component reads.
    pub env: &'static [&'static str],
    /// IAM actions the component calls.
    pub iam_actions: &'static [&'static str],
}

/// Every env var a job reads from batchfan: [`JOB_DEFINITION_ENV`], then
/// [`JOB_OVERRIDE_ENV`].
pub const JOB_ENV: &[&str] = &[
    env::BACKEND,
    env::TABLE,
    env::BUCKET,
    env::PIPELINE,
    env::RUN,
    env::STAGE,
    env::STAGES,
    env::ROLE,
    env::INDEX_OFFSET,
    env::RERUN,
    env::INPUT,
    env::RANGE,
    env::SCRATCH_DAYS,
];
/// Env vars every job definition sets.
pub const JOB_DEFINITION_ENV: &[&str] = JOB_ENV.split_at(3).0;
/// Env vars the submitter sets in each job's container overrides (pointers,
/// never data). Job definitions set the static ones: [`JOB_DEFINITION_ENV`].
pub const JOB_OVERRIDE_ENV: &[&str] = JOB_ENV.split_at(3).1;

/// SSM Parameter Store's path for reading a Secrets Manager secret with
/// `GetParameter` (the caller needs `secretsmanager:GetSecretValue` on it).
pub const SECRETS_MANAGER_REFERENCE: &str = "/aws/reference/secretsmanager/";

/// The SSM parameter the trigger Lambda reads a webhook secret from: an SSM
/// parameter as named, a Secrets Manager secret through
/// [`SECRETS_MANAGER_REFERENCE`]; `None` for secrets only a local `serve`
/// can read (env, file).
pub fn webhook_secret_parameter(source: &crate::spec::SecretSource) -> Option<String> {
    use crate::spec::SecretSource;
    match source {
        SecretSource::Ssm(name) => Some(name.clone()),
        SecretSource::SecretsManager(id) => Some(format!("{SECRETS_MANAGER_REFERENCE}{id}")),
        SecretSource::Env(_) | SecretSource::File(_) => None,
    }
}

/// The job definition of a stage (or `aggregation`, `cleanup`, `barrier`).
pub fn job_definition_name(prefix: &str, stage_or_role: &str) -> String {
    format!("{prefix}{stage_or_role}")
}

const KMS: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];

/// Every component of a deployed pipeline. Keep it true when a binary starts
/// reading an env var or calling an action (the Terraform contract test grants
/// exactly these, scoped to the pipeline's resources).
pub const COMPONENTS: &[Component] = &[
    Component {
        name: "trigger",
        runs: Runs::Lambda,
        env: &[env::SPEC_URI, env::TABLE, env::BUCKET, env::PLAN_TOPIC_ARN, env::WEBHOOK_SECRET_PARAMETER],
        iam_actions: &[
            "s3:GetObject",
            "s3:ListBucket",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:BatchWriteItem",
            "sns:Publish",
            "ssm:GetParameter",
            // Only when the webhook secret is in Secrets Manager (read through SSM).
            "secretsmanager:GetSecretValue",
            KMS[0],
            KMS[1],
        ],
    },
    Component {
        name: "submit",
        runs: Runs::Lambda,
        env: &[env::SPEC_URI, env::TABLE, env::BUCKET, env::JOB_QUEUE, env::JOB_DEFINITION_PREFIX],
        iam_actions: &[
            "s3:GetObject",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "batch:SubmitJob",
            "batch:ListJobs",
            "batch:TagResource",
        ],
    },
    Component {
        name: "alert",
        runs: Runs::Lambda,
        env: &[
            env::SPEC_URI,
            env::TABLE,
            env::BUCKET,
            env::JOB_QUEUE,
            env::JOB_DEFINITION_PREFIX,
            env::ALERTS_TOPIC_ARN,
            // Plans held schedule slots (cron overlap = "queue").
            env::PLAN_TOPIC_ARN,
            // The alert's log pointer: the job definitions' `awslogs-group`.
            env::JOB_LOG_GROUP,
        ],
        iam_actions: &[
            "s3:GetObject",
            "s3:ListBucket",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:BatchWriteItem",
            "dynamodb:DeleteItem",
            "batch:DescribeJobs",
            "batch:ListJobs",
            "batch:SubmitJob",
            "batch:TagResource",
            "sns:Publish",
            KMS[0],
            KMS[1],
        ],
    },
    Component {
        name: "job",
        runs: Runs::Job,
        env: JOB_ENV,
        iam_actions: &[
            "s3:GetObject",
            "s3:PutObject",
            "s3:ListBucket",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:BatchWriteItem",
            "dynamodb:DeleteItem",
        ],
    },
];

/// The module variable holding the submit Lambda's reserved concurrency.
pub const SUBMIT_CONCURRENCY_VARIABLE: &str = "submit_reserved_concurrency";

/// The submit Lambda's reserved concurrency the module sets by default: one
/// submitter process at a time, so the process's SubmitJob limiter
/// ([`crate::aws::RateLimiter::for_submit`]) is the pipeline's: at most
/// 2 × [`crate::aws::DEFAULT_SUBMIT_BURST`] + [`crate::aws::DEFAULT_SUBMIT_RATE`]
/// = 50 calls in any second, AWS Batch's SubmitJob limit per account, even
/// when Lambda hands over to a fresh process within that second.
pub const SUBMIT_RESERVED_CONCURRENCY: u32 = 1;

/// The component named `name`.
pub fn component(name: &str) -> Option<&'static Component> {
    COMPONENTS.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_definitions_set_the_static_env_and_overrides_the_rest() {
        assert_eq!(JOB_DEFINITION_ENV, [env::BACKEND, env::TABLE, env::BUCKET]);
        assert_eq!(JOB_OVERRIDE_ENV.len() + JOB_DEFINITION_ENV.len(), JOB_ENV.len());
        assert!(JOB_OVERRIDE_ENV.contains(&env::RUN) && JOB_OVERRIDE_ENV.contains(&env::INPUT));
    }
}
