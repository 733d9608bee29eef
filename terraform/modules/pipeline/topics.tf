# SNS: the plan topic (RunPlanned messages, drives the submitter) and the
# alerts topic (one message per failed run), both KMS encrypted.

resource "aws_sns_topic" "plan" {
  name              = "${var.pipeline_name}-plan"
  kms_master_key_id = aws_kms_key.this.id
  tags              = local.tags
}

resource "aws_sns_topic" "alerts" {
  name              = var.alerts_topic_name
  display_name      = "batchfan ${var.pipeline_name}"
  kms_master_key_id = aws_kms_key.this.id
  tags              = merge(local.tags, { "batchfan:tolerated-failure-percent" = tostring(var.alert_tolerated_failure_percent) })
}

resource "aws_sns_topic_subscription" "submit" {
  topic_arn = aws_sns_topic.plan.arn
  protocol  = "lambda"
  endpoint  = aws_lambda_function.this["submit"].arn

  depends_on = [aws_lambda_permission.plan_topic]
}

resource "aws_lambda_permission" "plan_topic" {
  statement_id   = "PlanTopicInvokesSubmit"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this["submit"].function_name
  principal      = "sns.amazonaws.com"
  source_arn     = aws_sns_topic.plan.arn
  source_account = local.account
}

resource "aws_sns_topic_subscription" "alert_email" {
  for_each  = toset(var.alert_emails)
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_sns_topic_subscription" "alert_https" {
  for_each               = toset(var.alert_https_endpoints)
  topic_arn              = aws_sns_topic.alerts.arn
  protocol               = "https"
  endpoint               = each.value
  endpoint_auto_confirms = false
}

# A message in a dead-letter queue is an event that started nothing (a lost
# run or alert): alarm on the alerts topic.
resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each            = local.functions
  alarm_name          = "${var.pipeline_name}-${each.key}-dead-letters"
  alarm_description   = "Events the ${each.key} Lambda could not process are in ${aws_sqs_queue.dlq[each.key].name}: inspect and redrive them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq[each.key].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  tags                = local.tags
}
