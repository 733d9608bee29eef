# Set by orders.auto.tfvars.json, which `batchfan tfvars jobs/orders.toml`
# renders (see README.md); the module checks their types and values.

variable "pipeline_name" {
  description = "Rendered by batchfan tfvars: the pipeline name."
  type        = string
}

variable "spec_toml" {
  description = "Rendered by batchfan tfvars: the spec's TOML text."
  type        = string
}

variable "stages" {
  description = "Rendered by batchfan tfvars: the stages' jobs."
  type        = any
}

variable "aggregation" {
  description = "Rendered by batchfan tfvars: the aggregation job."
  type        = any
}

variable "cleanup" {
  description = "Rendered by batchfan tfvars: the cleanup job."
  type        = any
}

variable "barrier" {
  description = "Rendered by batchfan tfvars: the barrier job."
  type        = any
}

variable "job_queue_name" {
  description = "Rendered by batchfan tfvars: the job queue."
  type        = string
}

variable "job_definition_prefix" {
  description = "Rendered by batchfan tfvars: the job definitions' name prefix."
  type        = string
}

variable "table_name" {
  description = "Rendered by batchfan tfvars: batchfan's table."
  type        = string
}

variable "bucket_name" {
  description = "Rendered by batchfan tfvars: the pipeline's bucket."
  type        = string
}

variable "alerts_topic_name" {
  description = "Rendered by batchfan tfvars: the alerts topic."
  type        = string
}

variable "alert_tolerated_failure_percent" {
  description = "Rendered by batchfan tfvars: the failed-item tolerance."
  type        = number
}

variable "schedule" {
  description = "Rendered by batchfan tfvars: the cron schedule, or null."
  type        = any
  default     = null
}

variable "s3_trigger" {
  description = "Rendered by batchfan tfvars: the S3 trigger, or null."
  type        = any
  default     = null
}

variable "webhook" {
  description = "Rendered by batchfan tfvars: the webhook, or null."
  type        = any
  default     = null
}
