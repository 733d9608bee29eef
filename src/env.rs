//! Names of the environment variables jobs are started with.
//!
//! `AWS_BATCH_*` are set by AWS Batch (and the local engine, identically);
//! `BATCHFAN_*` are the pointers the submitter passes in container overrides:
//! never data, only where to find it.

/// `parent:index` for array children, the job id otherwise.
pub const AWS_BATCH_JOB_ID: &str = "AWS_BATCH_JOB_ID";
/// The child's index in its array; absent for plain jobs (read as 0).
pub const AWS_BATCH_JOB_ARRAY_INDEX: &str = "AWS_BATCH_JOB_ARRAY_INDEX";
/// The size of the child's array; absent for plain jobs.
pub const AWS_BATCH_JOB_ARRAY_SIZE: &str = "AWS_BATCH_JOB_ARRAY_SIZE";
/// Attempt number, from 1.
pub const AWS_BATCH_JOB_ATTEMPT: &str = "AWS_BATCH_JOB_ATTEMPT";
/// Job queue name.
pub const AWS_BATCH_JQ_NAME: &str = "AWS_BATCH_JQ_NAME";
/// Compute environment name.
pub const AWS_BATCH_CE_NAME: &str = "AWS_BATCH_CE_NAME";

/// `local` or `aws`.
pub const BACKEND: &str = "BATCHFAN_BACKEND";
/// The local state directory (local backend).
pub const STATE_DIR: &str = "BATCHFAN_STATE_DIR";
/// Pipeline name.
pub const PIPELINE: &str = "BATCHFAN_PIPELINE";
/// Run id.
pub const RUN: &str = "BATCHFAN_RUN";
/// Stage name (absent for aggregation and cleanup).
pub const STAGE: &str = "BATCHFAN_STAGE";
/// What the job is: `stage`, `aggregation`, `cleanup` or `barrier`.
pub const ROLE: &str = "BATCHFAN_ROLE";
/// Global index of the shard's child 0: global index = offset + array index.
pub const INDEX_OFFSET: &str = "BATCHFAN_INDEX_OFFSET";
/// Set on a retry attempt's jobs (`batchfan retry`): the attempt number. A stage
/// child then runs the global index stored at position offset + array index
/// of the stage's rerun list (see `run::retry`).
pub const RERUN: &str = "BATCHFAN_RERUN";
/// The run's stages, in order, comma-separated (from the spec).
pub const STAGES: &str = "BATCHFAN_STAGES";
/// The run's input object (`s3://bucket/key`), when it has one: set by the
/// submitter on stage jobs, so that a child needs no read of the run record.
pub const INPUT: &str = "BATCHFAN_INPUT";
/// Set by the submitter on a `range` run's stage jobs: `{units}:{items_per_child}`.
/// Such a run stores no work items: child i's are units `i × per .. min((i + 1) × per, units)`
/// ([`crate::plan::range_item`]).
pub const RANGE: &str = "BATCHFAN_RANGE";
/// Days the rows a job writes to batchfan's table are kept (`[storage] scratch_days`).
pub const SCRATCH_DAYS: &str = "BATCHFAN_SCRATCH_DAYS";
/// Local backend: the Unix socket of the service's table relay, through which
/// a job reaches the tables without opening their files (see `table::relay`).
pub const TABLE_SOCKET: &str = "BATCHFAN_TABLE_SOCKET";
/// batchfan's table (work items, results, runs).
pub const TABLE: &str = "BATCHFAN_TABLE";
/// The run's scratch and output bucket.
pub const BUCKET: &str = "BATCHFAN_BUCKET";
/// `batchfan job exec`: the file holding the child's work item (JSON).
pub const ITEM_FILE: &str = "BATCHFAN_ITEM_FILE";
/// `batchfan job exec`: the file the command writes its result to (JSON), if any.
pub const RESULT_FILE: &str = "BATCHFAN_RESULT_FILE";
/// `batchfan job exec`: the file the command writes the child's output to, if any.
pub const OUTPUT_FILE: &str = "BATCHFAN_OUTPUT_FILE";
/// Prefix of run parameters: `--param k=v` reaches jobs as `BATCHFAN_PARAM_K=v`.
pub const PARAM_PREFIX: &str = "BATCHFAN_PARAM_";

/// Exit code of success.
pub const EXIT_OK: i32 = 0;
/// Exit code of a transient failure the default retry rules retry (EX_TEMPFAIL).
pub const EXIT_RETRYABLE: i32 = 75;
/// Exit code of a permanent failure.
pub const EXIT_PERMANENT: i32 = 1;

// ---- AWS deployment: what Terraform sets on the Lambdas and job definitions ----

/// `s3://bucket/key` of the pipeline spec (TOML) the Lambdas load at cold start.
pub const SPEC_URI: &str = "BATCHFAN_SPEC_URI";
/// Name or ARN of the Batch job queue the submitter submits to.
pub const JOB_QUEUE: &str = "BATCHFAN_JOB_QUEUE";
/// Job definitions are named `{prefix}{stage}`, `{prefix}aggregation`,
/// `{prefix}cleanup` and `{prefix}barrier`.
pub const JOB_DEFINITION_PREFIX: &str = "BATCHFAN_JOB_DEFINITION_PREFIX";
/// ARN of the plan topic (RunPlanned messages; drives the submitter).
pub const PLAN_TOPIC_ARN: &str = "BATCHFAN_PLAN_TOPIC_ARN";
/// ARN of the alerts topic.
pub const ALERTS_TOPIC_ARN: &str = "BATCHFAN_ALERTS_TOPIC_ARN";
/// Name of the SSM Parameter Store SecureString holding the webhook secret.
pub const WEBHOOK_SECRET_PARAMETER: &str = "BATCHFAN_WEBHOOK_SECRET_PARAMETER";
/// The CloudWatch Logs group the job definitions send job logs to
/// (`awslogs-group`): the alert's log pointer names it (AWS Batch's
/// `/aws/batch/job` when unset).
pub const JOB_LOG_GROUP: &str = "BATCHFAN_JOB_LOG_GROUP";
