# Least privilege. Each component's "code" policy grants exactly the actions
# its code calls (deploy::COMPONENTS in src/deploy.rs; the contract test
# compares them), scoped to this pipeline's resources. The "runtime" policies
# grant what the platform needs around the code (logs, traces, dead letters,
# image pulls), nothing the code calls.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  for_each           = local.functions
  name               = "${var.pipeline_name}-${each.key}"
  description        = "batchfan ${var.pipeline_name}: the ${each.key} Lambda"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = local.tags
}

# ---- code policies: exactly deploy::COMPONENTS[..].iam_actions ----

data "aws_iam_policy_document" "trigger_code" {
  statement {
    sid       = "ReadSpecAndInputs"
    actions   = ["s3:GetObject"]
    resources = concat(["${local.bucket_arn}/*"], [for b in local.input_bucket_arns : "${b}/*"])
  }

  statement {
    sid       = "ListInputs"
    actions   = ["s3:ListBucket"]
    resources = concat([local.bucket_arn], local.input_bucket_arns)
  }

  statement {
    sid       = "Table"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchWriteItem"]
    resources = [aws_dynamodb_table.this.arn]
  }

  statement {
    sid       = "PublishPlan"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.plan.arn]
  }

  statement {
    sid       = "WebhookSecret"
    actions   = ["ssm:GetParameter"]
    resources = [local.webhook_parameter_arn]
  }

  # A webhook secret in Secrets Manager is read through SSM, which checks
  # this too. (A secret under a customer-managed KMS key also needs
  # kms:Decrypt on that key, granted in the key's policy.)
  dynamic "statement" {
    for_each = local.webhook_in_secrets_manager ? ["secret"] : []
    content {
      sid       = "WebhookSecretInSecretsManager"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.webhook_secret_arn]
    }
  }

  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

data "aws_iam_policy_document" "submit_code" {
  statement {
    sid       = "ReadSpec"
    actions   = ["s3:GetObject"]
    resources = [local.spec_object_arn]
  }

  statement {
    sid       = "Table"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
    resources = [aws_dynamodb_table.this.arn]
  }

  statement {
    sid       = "SubmitToQueue"
    actions   = ["batch:SubmitJob"]
    resources = concat([local.job_queue_arn], local.job_definition_arns)
  }

  # ListJobs has no resource-level permissions in IAM: "*" is the only resource.
  statement {
    sid       = "ReconcileByName"
    actions   = ["batch:ListJobs"]
    resources = ["*"]
  }

  statement {
    sid       = "TagSubmittedJobs"
    actions   = ["batch:TagResource"]
    resources = ["arn:${local.partition}:batch:${local.region}:${local.account}:job/*"]
  }
}

data "aws_iam_policy_document" "alert_code" {
  # The spec, and the inputs of the schedule slots it plans when a run ends
  # (cron overlap = "queue" holds them in the table meanwhile).
  statement {
    sid       = "ReadSpecAndInputs"
    actions   = ["s3:GetObject"]
    resources = concat(["${local.bucket_arn}/*"], [for b in local.input_bucket_arns : "${b}/*"])
  }

  statement {
    sid       = "ListInputs"
    actions   = ["s3:ListBucket"]
    resources = concat([local.bucket_arn], local.input_bucket_arns)
  }

  # DeleteItem: a run leaves the list of failure cleanups that wait.
  statement {
    sid = "Table"
    actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.this.arn]
  }

  # DescribeJobs and ListJobs have no resource-level permissions in IAM.
  statement {
    sid       = "InspectJobs"
    actions   = ["batch:DescribeJobs", "batch:ListJobs"]
    resources = ["*"]
  }

  statement {
    sid       = "SubmitCleanup"
    actions   = ["batch:SubmitJob"]
    resources = concat([local.job_queue_arn], local.job_definition_arns)
  }

  statement {
    sid       = "TagSubmittedJobs"
    actions   = ["batch:TagResource"]
    resources = ["arn:${local.partition}:batch:${local.region}:${local.account}:job/*"]
  }

  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  statement {
    sid       = "PublishPlan"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.plan.arn]
  }

  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

locals {
  lambda_code_policies = {
    trigger = data.aws_iam_policy_document.trigger_code.json
    submit  = data.aws_iam_policy_document.submit_code.json
    alert   = data.aws_iam_policy_document.alert_code.json
  }
}

resource "aws_iam_role_policy" "lambda_code" {
  for_each = local.functions
  name     = "code"
  role     = aws_iam_role.lambda[each.key].id
  policy   = local.lambda_code_policies[each.key]
}

# ---- Lambda runtime: logs, traces, dead letters ----

data "aws_iam_policy_document" "lambda_runtime" {
  for_each = local.functions

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda[each.key].arn}:*"]
  }

  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq[each.key].arn]
  }

  # X-Ray has no resource-level permissions: "*" is the only resource.
  statement {
    sid       = "Traces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "lambda_runtime" {
  for_each = local.functions
  name     = "runtime"
  role     = aws_iam_role.lambda[each.key].id
  policy   = data.aws_iam_policy_document.lambda_runtime[each.key].json
}

resource "aws_iam_role_policy_attachment" "lambda_vpc" {
  for_each   = var.lambda_vpc == null ? toset([]) : local.functions
  role       = aws_iam_role.lambda[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

# ---- the job role: what job binaries call ----

resource "aws_iam_role" "job" {
  name               = "${var.pipeline_name}-job"
  description        = "batchfan ${var.pipeline_name}: what the jobs' code calls"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "job_code" {
  statement {
    sid       = "ReadInputs"
    actions   = ["s3:GetObject"]
    resources = concat(["${local.bucket_arn}/*"], [for b in local.input_bucket_arns : "${b}/*"])
  }

  statement {
    sid       = "ListInputs"
    actions   = ["s3:ListBucket"]
    resources = concat([local.bucket_arn], local.input_bucket_arns)
  }

  statement {
    sid       = "WriteRunObjects"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.bucket_arn}/${local.runs_prefix}*"]
  }

  statement {
    sid       = "Tables"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem"]
    resources = concat([aws_dynamodb_table.this.arn], var.job_table_arns)
  }
}

resource "aws_iam_role_policy" "job_code" {
  name   = "code"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job_code.json
}

# ---- the job execution role: ECS pulls the image and ships the logs ----

resource "aws_iam_role" "job_execution" {
  name               = "${var.pipeline_name}-job-execution"
  description        = "batchfan ${var.pipeline_name}: image pulls and logs of the jobs"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "job_execution" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.jobs.arn}:*"]
  }

  # GetAuthorizationToken has no resource-level permissions.
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) == 0 ? [] : [var.ecr_repository_arns]
    content {
      sid       = "PullImages"
      actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
      resources = statement.value
    }
  }
}

resource "aws_iam_role_policy" "job_execution" {
  name   = "runtime"
  role   = aws_iam_role.job_execution.id
  policy = data.aws_iam_policy_document.job_execution.json
}

# ---- EC2 / Spot compute: the container instances' role ----

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ecs_instance" {
  count              = local.create_ec2_role ? 1 : 0
  name               = "${var.pipeline_name}-ecs-instance"
  description        = "batchfan ${var.pipeline_name}: Batch EC2 container instances"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "ecs_instance" {
  count      = local.create_ec2_role ? 1 : 0
  role       = aws_iam_role.ecs_instance[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

resource "aws_iam_instance_profile" "ecs_instance" {
  count = local.create_ec2_role ? 1 : 0
  name  = "${var.pipeline_name}-ecs-instance"
  role  = aws_iam_role.ecs_instance[0].name
  tags  = local.tags
}

# ---- EventBridge Scheduler: invokes the trigger ----

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  count              = var.schedule == null ? 0 : 1
  name               = "${var.pipeline_name}-scheduler"
  description        = "batchfan ${var.pipeline_name}: the cron schedule invokes the trigger"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "InvokeTrigger"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this["trigger"].arn, "${aws_lambda_function.this["trigger"].arn}:*"]
  }

  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq["trigger"].arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  count  = var.schedule == null ? 0 : 1
  name   = "runtime"
  role   = aws_iam_role.scheduler[0].id
  policy = data.aws_iam_policy_document.scheduler.json
}
