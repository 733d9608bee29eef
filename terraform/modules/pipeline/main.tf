# One batchfan pipeline on AWS: see README.md for the resources and the
# contract with the code (src/deploy.rs), which tests/terraform_contract.rs
# checks against this module.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name
  tags      = merge(var.tags, { "batchfan:pipeline" = var.pipeline_name })

  # ---- compute ----
  fargate          = contains(["FARGATE", "FARGATE_SPOT"], var.compute.type)
  platform         = local.fargate ? "FARGATE" : "EC2"
  create_queue     = var.existing_job_queue_arn == null
  create_compute   = local.create_queue && var.existing_compute_environment_arn == null
  create_ec2_role  = local.create_compute && !local.fargate
  job_queue_arn    = local.create_queue ? aws_batch_job_queue.this[0].arn : var.existing_job_queue_arn
  job_queue_name   = local.create_queue ? aws_batch_job_queue.this[0].name : element(split("/", var.existing_job_queue_arn), 1)
  job_log_group    = "/aws/batch/batchfan/${var.pipeline_name}"
  job_def_arn_base = "arn:${local.partition}:batch:${local.region}:${local.account}:job-definition/"

  # Every job definition: the stages, then the pipeline's own jobs. The key is
  # the stage or role; the definition is named {prefix}{key}.
  own_jobs = { aggregation = var.aggregation, cleanup = var.cleanup, barrier = var.barrier }
  jobs = merge(
    { for s in var.stages : s.name => {
      role            = "stage"
      image           = s.image
      command         = s.command
      vcpus           = s.vcpus
      memory_mib      = s.memory_mib
      environment     = s.environment
      retry           = s.retry
      timeout_seconds = s.timeout_seconds
    } },
    { for role, j in local.own_jobs : role => {
      role            = role
      image           = j.image
      command         = j.command
      vcpus           = j.vcpus
      memory_mib      = j.memory_mib
      environment     = j.environment
      retry           = j.retry
      timeout_seconds = j.timeout_seconds
    } },
  )
  # An image naming no registry host gets var.image_registry in front.
  job_images = { for k, j in local.jobs : k => (
    var.image_registry != "" && !can(regex("^[^/]*[.:][^/]*/", j.image)) ? "${var.image_registry}/${j.image}" : j.image
  ) }
  job_definition_arns = [for k in keys(local.jobs) : "${local.job_def_arn_base}${var.job_definition_prefix}${k}:*"]

  # What every job definition sets (deploy::JOB_DEFINITION_ENV); the submitter
  # adds the run's pointers (deploy::JOB_OVERRIDE_ENV) in container overrides.
  job_definition_env = {
    BATCHFAN_BACKEND = "aws"
    BATCHFAN_TABLE   = aws_dynamodb_table.this.name
    BATCHFAN_BUCKET  = var.bucket_name
  }

  # ---- storage ----
  bucket_arn        = "arn:${local.partition}:s3:::${var.bucket_name}"
  bucket_id         = var.create_bucket ? aws_s3_bucket.this[0].id : var.bucket_name
  runs_prefix       = "runs/${var.pipeline_name}/"
  spec_key          = "batchfan/specs/${var.pipeline_name}.toml"
  spec_uri          = "s3://${var.bucket_name}/${local.spec_key}"
  spec_object_arn   = "${local.bucket_arn}/${local.spec_key}"
  input_buckets     = distinct(concat(var.input_bucket_names, var.s3_trigger == null ? [] : [var.s3_trigger.bucket]))
  input_bucket_arns = [for b in local.input_buckets : "arn:${local.partition}:s3:::${b}"]

  # ---- Lambdas ----
  functions  = toset(["trigger", "submit", "alert"])
  lambda_dir = coalesce(var.lambda_package_dir, "${path.module}/../../../target/lambda")
  webhook_parameter_name = (
    var.webhook == null ? "/batchfan/${var.pipeline_name}/webhook-secret" : var.webhook.secret_parameter
  )
  webhook_parameter_arn = "arn:${local.partition}:ssm:${local.region}:${local.account}:parameter/${trimprefix(local.webhook_parameter_name, "/")}"
  # A secret_parameter under SSM's Secrets Manager reference path names a
  # Secrets Manager secret (spec: secret_secretsmanager): the module creates
  # no parameter, and the trigger may read that secret.
  webhook_secret_id = (
    startswith(local.webhook_parameter_name, "/aws/reference/secretsmanager/")
    ? trimprefix(local.webhook_parameter_name, "/aws/reference/secretsmanager/") : null
  )
  webhook_in_secrets_manager = var.webhook != null && local.webhook_secret_id != null
  # Secrets Manager appends 6 random characters to a secret's ARN.
  webhook_secret_arn = (
    local.webhook_secret_id == null ? null
    : startswith(local.webhook_secret_id, "arn:") ? local.webhook_secret_id
    : "arn:${local.partition}:secretsmanager:${local.region}:${local.account}:secret:${local.webhook_secret_id}-??????"
  )

  # The environment each Lambda reads (deploy::COMPONENTS[..].env).
  lambda_env = {
    trigger = {
      BATCHFAN_SPEC_URI                 = local.spec_uri
      BATCHFAN_TABLE                    = aws_dynamodb_table.this.name
      BATCHFAN_BUCKET                   = var.bucket_name
      BATCHFAN_PLAN_TOPIC_ARN           = aws_sns_topic.plan.arn
      BATCHFAN_WEBHOOK_SECRET_PARAMETER = var.webhook == null ? "" : local.webhook_parameter_name
    }
    submit = {
      BATCHFAN_SPEC_URI              = local.spec_uri
      BATCHFAN_TABLE                 = aws_dynamodb_table.this.name
      BATCHFAN_BUCKET                = var.bucket_name
      BATCHFAN_JOB_QUEUE             = local.job_queue_name
      BATCHFAN_JOB_DEFINITION_PREFIX = var.job_definition_prefix
    }
    alert = {
      BATCHFAN_SPEC_URI              = local.spec_uri
      BATCHFAN_TABLE                 = aws_dynamodb_table.this.name
      BATCHFAN_BUCKET                = var.bucket_name
      BATCHFAN_JOB_QUEUE             = local.job_queue_name
      BATCHFAN_JOB_DEFINITION_PREFIX = var.job_definition_prefix
      BATCHFAN_ALERTS_TOPIC_ARN      = aws_sns_topic.alerts.arn
      # Plans the schedule slots held while a run was going (overlap = "queue").
      BATCHFAN_PLAN_TOPIC_ARN = aws_sns_topic.plan.arn
      # The alert's log pointer names the group the job definitions log to.
      BATCHFAN_JOB_LOG_GROUP = aws_cloudwatch_log_group.jobs.name
    }
  }
}
