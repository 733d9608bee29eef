output "bucket" {
  description = "Upload inputs here (e.g. s3://BUCKET/inputs/orders.csv); outputs land under runs/orders/RUN/."
  value       = module.orders.bucket_name
}

output "ecr_repository_url" {
  description = "Push the job image here (containers/README.md)."
  value       = aws_ecr_repository.jobs.repository_url
}

output "trigger_function" {
  description = "Invoke this Lambda to start a manual run."
  value       = module.orders.lambda_function_names["trigger"]
}

output "alerts_topic_arn" {
  description = "Failed runs are published here."
  value       = module.orders.alerts_topic_arn
}

output "job_log_group" {
  description = "CloudWatch log group of the jobs."
  value       = module.orders.job_log_group
}

output "job_queue" {
  description = "The Batch job queue."
  value       = module.orders.job_queue_name
}

output "table" {
  description = "batchfan's table (runs, work items, results)."
  value       = module.orders.table_name
}
