# What starts runs (the cron schedule, S3 puts; the webhook is in lambdas.tf)
# and what watches them (Batch job state changes -> the alerter).

# ---- cron: EventBridge Scheduler -> trigger ----

locals {
  # The trigger receives an EventBridge "Scheduled Event"; Scheduler fills the
  # <aws.scheduler.*> placeholders. The run's idempotency key is pipeline +
  # scheduled time, so a retried delivery yields the same run. jsonencode
  # escapes '<' and '>', which Scheduler would not recognise: undo that.
  schedule_input = var.schedule == null ? null : replace(replace(jsonencode({
    version       = "0"
    id            = "<aws.scheduler.execution-id>"
    "detail-type" = "Scheduled Event"
    source        = "aws.scheduler"
    account       = local.account
    time          = "<aws.scheduler.scheduled-time>"
    region        = local.region
    resources     = ["<aws.scheduler.schedule-arn>"]
    detail = {
      pipeline = var.pipeline_name
      input    = var.schedule.input
    }
  }), "\\u003c", "<"), "\\u003e", ">")
}

resource "aws_scheduler_schedule" "cron" {
  count                        = var.schedule == null ? 0 : 1
  name                         = "${var.pipeline_name}-cron"
  description                  = "batchfan ${var.pipeline_name}: scheduled runs"
  schedule_expression          = var.schedule.expression
  schedule_expression_timezone = var.schedule.timezone
  kms_key_arn                  = aws_kms_key.this.arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this["trigger"].arn
    role_arn = aws_iam_role.scheduler[0].arn
    input    = local.schedule_input

    retry_policy {
      maximum_event_age_in_seconds = 86400
      maximum_retry_attempts       = 185
    }

    dead_letter_config {
      arn = aws_sqs_queue.dlq["trigger"].arn
    }
  }
}

# ---- S3 puts -> trigger ----

resource "aws_lambda_permission" "s3_trigger" {
  count          = var.s3_trigger == null ? 0 : 1
  statement_id   = "S3PutInvokesTrigger"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this["trigger"].function_name
  principal      = "s3.amazonaws.com"
  source_arn     = "arn:${local.partition}:s3:::${var.s3_trigger.bucket}"
  source_account = local.account
}

# Owns the bucket's whole notification configuration (an S3 rule of AWS):
# other notifications on that bucket must be added here, not elsewhere.
resource "aws_s3_bucket_notification" "trigger" {
  count  = var.s3_trigger == null ? 0 : 1
  bucket = var.create_bucket && var.s3_trigger.bucket == var.bucket_name ? aws_s3_bucket.this[0].id : var.s3_trigger.bucket

  lambda_function {
    id                  = "batchfan-${var.pipeline_name}"
    lambda_function_arn = aws_lambda_function.this["trigger"].arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = var.s3_trigger.prefix == "" ? null : var.s3_trigger.prefix
    filter_suffix       = var.s3_trigger.suffix == "" ? null : var.s3_trigger.suffix
  }

  depends_on = [aws_lambda_permission.s3_trigger]

  lifecycle {
    precondition {
      condition = var.s3_trigger.bucket != var.bucket_name || (var.s3_trigger.prefix != "" &&
        !startswith("runs/", var.s3_trigger.prefix) && !startswith(var.s3_trigger.prefix, "runs/") &&
      !startswith("batchfan/", var.s3_trigger.prefix) && !startswith(var.s3_trigger.prefix, "batchfan/"))
      error_message = "An S3 trigger on the pipeline's own bucket needs a prefix outside runs/ and batchfan/ (e.g. inputs/), or every output a run writes would start another run."
    }
  }
}

# ---- Batch job state changes -> alert ----

resource "aws_cloudwatch_event_rule" "batch_job_state" {
  name        = "${var.pipeline_name}-batch-job-state"
  description = "batchfan ${var.pipeline_name}: jobs of the pipeline's queue that ended"
  tags        = local.tags

  event_pattern = jsonencode({
    source        = ["aws.batch"]
    "detail-type" = ["Batch Job State Change"]
    detail = {
      jobQueue = [local.job_queue_arn]
      # Every failure (array children included: they carry the index and exit
      # code), but of successes only the cleanup's, which ends a run: a run
      # then invokes the alert function once, not once per child.
      # A shared queue carries other pipelines' jobs too, hence the prefixes.
      "$or" = [
        {
          status        = ["FAILED"]
          jobDefinition = [{ prefix = "${local.job_def_arn_base}${var.job_definition_prefix}" }]
        },
        {
          status        = ["SUCCEEDED"]
          jobDefinition = [{ prefix = "${local.job_def_arn_base}${var.job_definition_prefix}cleanup:" }]
        },
      ]
    }
  })
}

resource "aws_cloudwatch_event_target" "alert" {
  rule = aws_cloudwatch_event_rule.batch_job_state.name
  arn  = aws_lambda_function.this["alert"].arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq["alert"].arn
  }
}

resource "aws_lambda_permission" "batch_job_state" {
  statement_id   = "BatchJobStateInvokesAlert"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this["alert"].function_name
  principal      = "events.amazonaws.com"
  source_arn     = aws_cloudwatch_event_rule.batch_job_state.arn
  source_account = local.account
}

# ---- reconcile tick -> alert ----
# A failure cleanup that waits for children still running is re-checked here:
# the rule above delivers no child's success (a 10,000-child run would
# otherwise invoke the alert function 10,000 times).

resource "aws_cloudwatch_event_rule" "reconcile" {
  name                = "${var.pipeline_name}-reconcile"
  description         = "batchfan ${var.pipeline_name}: re-check failure cleanups that wait, and held schedule slots"
  schedule_expression = var.reconcile_minutes == 1 ? "rate(1 minute)" : "rate(${var.reconcile_minutes} minutes)"
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "reconcile" {
  rule  = aws_cloudwatch_event_rule.reconcile.name
  arn   = aws_lambda_function.this["alert"].arn
  input = jsonencode({ batchfan = "reconcile" })

  # A tick that fails is not retried nor dead-lettered: the next tick does its work.
  retry_policy {
    maximum_event_age_in_seconds = 60
    maximum_retry_attempts       = 0
  }
}

resource "aws_lambda_permission" "reconcile" {
  statement_id   = "ReconcileTickInvokesAlert"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this["alert"].function_name
  principal      = "events.amazonaws.com"
  source_arn     = aws_cloudwatch_event_rule.reconcile.arn
  source_account = local.account
}
