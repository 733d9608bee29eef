# One customer managed key per pipeline encrypts its topics, dead-letter
# queues, table, bucket, log groups, Lambda environments and webhook secret.
# The key policy (a resource policy: "*" as Resource means this key) lets the
# AWS services that encrypt for us use it, and the pipeline's own roles use it
# only through those services.

locals {
  kms_services_via = [
    "dynamodb.${local.region}.amazonaws.com",
    "s3.${local.region}.amazonaws.com",
    "sns.${local.region}.amazonaws.com",
    "sqs.${local.region}.amazonaws.com",
    "ssm.${local.region}.amazonaws.com",
    "lambda.${local.region}.amazonaws.com",
  ]
  kms_pipeline_roles = concat(
    [for f in local.functions : aws_iam_role.lambda[f].arn],
    [aws_iam_role.job.arn, aws_iam_role.job_execution.arn],
  )
}

resource "aws_kms_key" "this" {
  description             = "batchfan ${var.pipeline_name}: topics, queues, table, bucket, logs, Lambda environment, webhook secret"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = local.tags

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid    = "ServicesPublishEncrypted"
        Effect = "Allow"
        Principal = { Service = [
          "sns.amazonaws.com",
          "events.amazonaws.com",
          "cloudwatch.amazonaws.com",
          "scheduler.amazonaws.com",
        ] }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
      },
      {
        Sid       = "CloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = { ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:*" } }
      },
      {
        Sid       = "PipelineRolesThroughServices"
        Effect    = "Allow"
        Principal = { AWS = local.kms_pipeline_roles }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"]
        Resource  = "*"
        Condition = { StringEquals = { "kms:ViaService" = local.kms_services_via } }
      },
      ], var.schedule == null ? [] : [
      {
        # Decrypts the schedule's encrypted input, writes its dead letters.
        Sid       = "SchedulerRole"
        Effect    = "Allow"
        Principal = { AWS = aws_iam_role.scheduler[0].arn }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
      },
    ])
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/batchfan-${var.pipeline_name}"
  target_key_id = aws_kms_key.this.key_id
}
