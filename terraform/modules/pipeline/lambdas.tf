# The three dispatchers (dispatchers/ in the repository): trigger, submit and
# alert. One binary serves the three: each function's zip,
# {lambda_package_dir}/{name}/bootstrap.zip, holds it as `bootstrap`, and the
# function's handler ({name}) names the dispatcher it runs. Built by
# scripts/package-lambdas.sh.

resource "aws_cloudwatch_log_group" "lambda" {
  for_each          = local.functions
  name              = "/aws/lambda/${var.pipeline_name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

# Events a function failed on after Lambda's retries (and the schedule's and
# the Batch rule's undeliverable events) land here.
resource "aws_sqs_queue" "dlq" {
  for_each                          = local.functions
  name                              = "${var.pipeline_name}-${each.key}-dlq"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.this.id
  kms_data_key_reuse_period_seconds = 3600
  tags                              = local.tags
}

data "aws_iam_policy_document" "alert_dlq" {
  statement {
    sid       = "BatchRuleDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq["alert"].arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.batch_job_state.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "alert_dlq" {
  queue_url = aws_sqs_queue.dlq["alert"].id
  policy    = data.aws_iam_policy_document.alert_dlq.json
}

resource "aws_lambda_function" "this" {
  for_each      = local.functions
  function_name = "${var.pipeline_name}-${each.key}"
  description   = "batchfan ${var.pipeline_name}: ${each.key} dispatcher"
  role          = aws_iam_role.lambda[each.key].arn
  runtime       = "provided.al2023"
  handler       = each.key
  architectures = [var.lambda_architecture]

  filename         = "${local.lambda_dir}/${each.key}/bootstrap.zip"
  source_code_hash = filebase64sha256("${local.lambda_dir}/${each.key}/bootstrap.zip")

  memory_size                    = var.lambda_memory_mb
  timeout                        = var.lambda_timeout_seconds
  reserved_concurrent_executions = each.key == "submit" ? var.submit_reserved_concurrency : lookup(var.lambda_reserved_concurrency, each.key, -1)
  kms_key_arn                    = aws_kms_key.this.arn
  code_signing_config_arn        = var.lambda_code_signing_config_arn
  tags                           = local.tags

  environment {
    variables = local.lambda_env[each.key]
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq[each.key].arn
  }

  tracing_config {
    mode = var.lambda_tracing
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.lambda[each.key].name
  }

  dynamic "vpc_config" {
    for_each = var.lambda_vpc == null ? [] : [var.lambda_vpc]
    content {
      subnet_ids         = vpc_config.value.subnet_ids
      security_group_ids = vpc_config.value.security_group_ids
    }
  }

  depends_on = [
    aws_iam_role_policy.lambda_code,
    aws_iam_role_policy.lambda_runtime,
    aws_cloudwatch_log_group.lambda,
  ]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  for_each                     = local.functions
  function_name                = aws_lambda_function.this[each.key].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600
}

# ---- the webhook: a Function URL on the trigger ----

# The webhook's HMAC secret: 48 random letters and digits from Secrets
# Manager's GetRandomPassword, written to an SSM SecureString (KMS) through a
# write-only argument. The value is ephemeral: it is in neither the plan nor
# the state. Rotate it with `aws ssm put-parameter --overwrite` (Terraform
# never reads it back), or bump webhook_secret_version to have Terraform write
# a fresh one. None when the spec keeps the secret in Secrets Manager (the user
# creates that).
ephemeral "aws_secretsmanager_random_password" "webhook" {
  count               = var.webhook == null || local.webhook_in_secrets_manager ? 0 : 1
  password_length     = 48
  exclude_punctuation = true
  include_space       = false
}

resource "aws_ssm_parameter" "webhook_secret" {
  count            = var.webhook == null || local.webhook_in_secrets_manager ? 0 : 1
  name             = local.webhook_parameter_name
  description      = "batchfan ${var.pipeline_name}: HMAC-SHA256 secret of the webhook trigger"
  type             = "SecureString"
  key_id           = aws_kms_key.this.arn
  value_wo         = ephemeral.aws_secretsmanager_random_password.webhook[0].random_password
  value_wo_version = var.webhook_secret_version
  tags             = local.tags
}

# Authorization NONE on purpose: the trigger verifies every request's
# HMAC-SHA256 signature (timestamp + body, constant-time compare, +-5 min replay
# window) with the secret above, and rejects unsigned or stale requests before
# doing anything. IAM auth would require callers to SigV4-sign, which webhook
# senders cannot.
resource "aws_lambda_function_url" "webhook" {
  count              = var.webhook == null ? 0 : 1
  function_name      = aws_lambda_function.this["trigger"].function_name
  authorization_type = "NONE"
  invoke_mode        = "BUFFERED"

  #checkov:skip=CKV_AWS_258:The webhook is authenticated in code by an HMAC-SHA256 signature over timestamp and body (src/trigger/webhook.rs); senders cannot SigV4-sign.
}

resource "aws_lambda_permission" "webhook" {
  count                  = var.webhook == null ? 0 : 1
  statement_id           = "WebhookFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this["trigger"].function_name
  principal              = "*"
  function_url_auth_type = "NONE"

  #checkov:skip=CKV_AWS_301:The Function URL is public by design (HMAC-signed webhook); the permission only allows InvokeFunctionUrl with auth type NONE.
}
