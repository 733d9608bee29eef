output "webhook_url" {
  description = "The webhook's Function URL (POST HMAC-signed requests here); null when the spec has no webhook."
  value       = var.webhook == null ? null : aws_lambda_function_url.webhook[0].function_url
}

output "webhook_secret_parameter" {
  description = "The SSM parameter the trigger reads the webhook's HMAC secret from (a SecureString the module created, or a /aws/reference/secretsmanager/ path to a Secrets Manager secret); null when the spec has no webhook."
  value       = var.webhook == null ? null : local.webhook_parameter_name
}

output "plan_topic_arn" {
  description = "ARN of the plan topic (RunPlanned messages)."
  value       = aws_sns_topic.plan.arn
}

output "alerts_topic_arn" {
  description = "ARN of the alerts topic (one message per failed run)."
  value       = aws_sns_topic.alerts.arn
}

output "table_name" {
  description = "The DynamoDB table of work items, results, runs and leases."
  value       = aws_dynamodb_table.this.name
}

output "table_arn" {
  description = "ARN of the DynamoDB table."
  value       = aws_dynamodb_table.this.arn
}

output "bucket_name" {
  description = "The bucket of the spec, run scratch data and outputs."
  value       = var.bucket_name
}

output "spec_uri" {
  description = "Where the Lambdas load the spec from."
  value       = local.spec_uri
}

output "job_queue_name" {
  description = "The Batch job queue jobs are submitted to."
  value       = local.job_queue_name
}

output "job_queue_arn" {
  description = "ARN of the Batch job queue."
  value       = local.job_queue_arn
}

output "job_definition_arns" {
  description = "Job definition ARNs by stage or role (aggregation, cleanup, barrier)."
  value       = { for k, d in aws_batch_job_definition.this : k => d.arn }
}

output "lambda_function_names" {
  description = "The dispatchers' function names by role (trigger, submit, alert)."
  value       = { for k, f in aws_lambda_function.this : k => f.function_name }
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queue URLs by Lambda: events that started nothing."
  value       = { for k, q in aws_sqs_queue.dlq : k => q.url }
}

output "job_log_group" {
  description = "CloudWatch log group of the jobs (stream prefix: the pipeline name)."
  value       = aws_cloudwatch_log_group.jobs.name
}

output "kms_key_arn" {
  description = "The pipeline's KMS key."
  value       = aws_kms_key.this.arn
}
