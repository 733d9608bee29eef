# Variables rendered from the pipeline spec by `batchfan tfvars SPEC`.
#
# Exactly the variables of this file are what `batchfan tfvars` writes (a test
# compares the two): set them from the spec, never by hand, so that the spec
# stays the single source. Deployment choices (compute, networking, alert
# subscriptions, Lambda packaging) are in variables.tf.

variable "pipeline_name" {
  description = "Pipeline name from the spec: 1-40 lowercase letters, digits or '-', starting with a letter. Prefixes every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,39}$", var.pipeline_name))
    error_message = "The pipeline_name must be 1-40 lowercase letters, digits or '-', starting with a letter (as in the spec's name)."
  }
}

variable "spec_toml" {
  description = "The pipeline spec (TOML text). Uploaded to the bucket; the Lambdas load it from BATCHFAN_SPEC_URI at cold start."
  type        = string

  validation {
    condition     = length(trimspace(var.spec_toml)) > 0 && length(var.spec_toml) <= 1048576
    error_message = "The spec_toml must be the spec's TOML text (1 byte to 1 MiB): render it with `batchfan tfvars SPEC`."
  }
}

variable "stages" {
  description = "The spec's stages, in order: one Batch job definition each, named {job_definition_prefix}{name}."
  type = list(object({
    name        = string
    image       = string
    command     = list(string)
    vcpus       = number
    memory_mib  = number
    environment = map(string)
    retry = object({
      attempts = number
      evaluate_on_exit = list(object({
        on_exit_code     = optional(string)
        on_reason        = optional(string)
        on_status_reason = optional(string)
        action           = string
      }))
    })
    timeout_seconds = optional(number)
  }))

  validation {
    condition     = length(var.stages) >= 1 && alltrue([for s in var.stages : can(regex("^[a-z][a-z0-9-]{0,19}$", s.name))])
    error_message = "The stages must list at least one stage, each named with 1-20 lowercase letters, digits or '-', starting with a letter."
  }

  validation {
    condition     = length(distinct([for s in var.stages : s.name])) == length(var.stages) && length(setintersection([for s in var.stages : s.name], ["aggregation", "cleanup", "barrier"])) == 0
    error_message = "Stage names must be unique and must not be aggregation, cleanup or barrier (those name the pipeline's own job definitions)."
  }

  validation {
    condition     = alltrue([for s in var.stages : s.retry.attempts >= 1 && s.retry.attempts <= 10 && length(s.retry.evaluate_on_exit) <= 5])
    error_message = "Each stage's retry must have 1-10 attempts and at most 5 evaluate_on_exit rules (AWS Batch limits)."
  }

  validation {
    condition     = alltrue([for s in var.stages : s.timeout_seconds == null ? true : s.timeout_seconds >= 60])
    error_message = "A stage's timeout_seconds must be at least 60 (the AWS Batch minimum) or null."
  }

  validation {
    condition     = alltrue([for s in var.stages : length(s.command) >= 1 && s.vcpus >= 0.25 && s.memory_mib >= 4])
    error_message = "Each stage needs a command, at least 0.25 vCPU and at least 4 MiB of memory (AWS Batch minimums; Fargate needs 512 MiB or more)."
  }
}

variable "aggregation" {
  description = "The aggregation job of the spec (job definition {job_definition_prefix}aggregation)."
  type = object({
    image       = string
    command     = list(string)
    vcpus       = number
    memory_mib  = number
    environment = map(string)
    retry = object({
      attempts = number
      evaluate_on_exit = list(object({
        on_exit_code     = optional(string)
        on_reason        = optional(string)
        on_status_reason = optional(string)
        action           = string
      }))
    })
    timeout_seconds = optional(number)
  })

  validation {
    condition     = var.aggregation.retry.attempts >= 1 && var.aggregation.retry.attempts <= 10 && length(var.aggregation.retry.evaluate_on_exit) <= 5 && length(var.aggregation.command) >= 1
    error_message = "The aggregation needs a command, 1-10 retry attempts and at most 5 evaluate_on_exit rules."
  }
}

variable "cleanup" {
  description = "The cleanup job of the spec (job definition {job_definition_prefix}cleanup)."
  type = object({
    image       = string
    command     = list(string)
    vcpus       = number
    memory_mib  = number
    environment = map(string)
    retry = object({
      attempts = number
      evaluate_on_exit = list(object({
        on_exit_code     = optional(string)
        on_reason        = optional(string)
        on_status_reason = optional(string)
        action           = string
      }))
    })
    timeout_seconds = optional(number)
  })

  validation {
    condition     = var.cleanup.retry.attempts >= 1 && var.cleanup.retry.attempts <= 10 && length(var.cleanup.retry.evaluate_on_exit) <= 5 && length(var.cleanup.command) >= 1
    error_message = "The cleanup needs a command, 1-10 retry attempts and at most 5 evaluate_on_exit rules."
  }
}

variable "barrier" {
  description = "The barrier job (lets a job wait on more than 20 shards; job definition {job_definition_prefix}barrier)."
  type = object({
    image       = string
    command     = list(string)
    vcpus       = number
    memory_mib  = number
    environment = map(string)
    retry = object({
      attempts = number
      evaluate_on_exit = list(object({
        on_exit_code     = optional(string)
        on_reason        = optional(string)
        on_status_reason = optional(string)
        action           = string
      }))
    })
    timeout_seconds = optional(number)
  })

  validation {
    condition     = var.barrier.retry.attempts >= 1 && var.barrier.retry.attempts <= 10 && length(var.barrier.command) >= 1
    error_message = "The barrier needs a command and 1-10 retry attempts."
  }
}

variable "job_queue_name" {
  description = "Name of the Batch job queue the spec submits to (ignored when existing_job_queue_arn is set)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$", var.job_queue_name))
    error_message = "The job_queue_name must be 1-128 letters, digits, '-' or '_'."
  }
}

variable "job_definition_prefix" {
  description = "Job definitions are named {prefix}{stage}, {prefix}aggregation, {prefix}cleanup and {prefix}barrier (batchfan uses \"{pipeline}-\")."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,100}$", var.job_definition_prefix))
    error_message = "The job_definition_prefix must be 1-101 letters, digits, '-' or '_'."
  }
}

variable "table_name" {
  description = "DynamoDB table for work items, results, runs and leases (the spec's [storage] table)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,255}$", var.table_name))
    error_message = "The table_name must be 3-255 letters, digits, '_', '-' or '.'."
  }
}

variable "bucket_name" {
  description = "S3 bucket for the spec, run scratch data and outputs (the spec's [storage] bucket)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "The bucket_name must be a valid S3 bucket name: 3-63 lowercase letters, digits, '.' or '-'."
  }
}

variable "alerts_topic_name" {
  description = "SNS topic the alerter publishes failed runs on (the spec's [alerts] topic)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,256}$", var.alerts_topic_name))
    error_message = "The alerts_topic_name must be 1-256 letters, digits, '-' or '_'."
  }
}

variable "alert_tolerated_failure_percent" {
  description = "Percentage of failed items a run tolerates before its aggregation fails it (the spec's [alerts]; applied by the aggregation from the spec, recorded here as a tag of the alerts topic)."
  type        = number

  validation {
    condition     = var.alert_tolerated_failure_percent >= 0 && var.alert_tolerated_failure_percent <= 100
    error_message = "The alert_tolerated_failure_percent must be between 0 and 100."
  }
}

variable "schedule" {
  description = "The spec's cron trigger as an EventBridge Scheduler expression, e.g. { expression = \"cron(0 2 * * ? *)\", timezone = \"Europe/Paris\", input = null }; null for no schedule."
  type = object({
    expression = string
    timezone   = string
    input      = optional(string)
  })
  default = null

  validation {
    condition     = var.schedule == null ? true : can(regex("^(cron|rate|at)\\(.+\\)$", var.schedule.expression)) && length(var.schedule.timezone) > 0
    error_message = "The schedule expression must be cron(...), rate(...) or at(...) with a time zone: render it with `batchfan tfvars`."
  }
}

variable "s3_trigger" {
  description = "The spec's S3 trigger: an object created under s3://bucket/prefix (ending with suffix) starts a run; null for none. The module owns the bucket's event notification configuration."
  type = object({
    bucket = string
    prefix = string
    suffix = string
  })
  default = null

  validation {
    condition     = var.s3_trigger == null ? true : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.s3_trigger.bucket))
    error_message = "The s3_trigger bucket must be a valid S3 bucket name."
  }
}

variable "webhook" {
  description = "The spec's webhook trigger: a Lambda Function URL whose requests are HMAC-SHA256 signed with the secret in the SSM SecureString named secret_parameter (or, under /aws/reference/secretsmanager/, in that Secrets Manager secret); null for none."
  type = object({
    secret_parameter = string
    max_body_bytes   = number
  })
  default = null

  validation {
    condition     = var.webhook == null ? true : length(var.webhook.secret_parameter) <= 1011 && can(regex("^/?[A-Za-z0-9_./+=@:-]+$", var.webhook.secret_parameter)) && var.webhook.max_body_bytes >= 1 && var.webhook.max_body_bytes <= 6291456
    error_message = "The webhook needs an SSM parameter name ([A-Za-z0-9_./-], or /aws/reference/secretsmanager/ and a secret name or ARN) and max_body_bytes between 1 and 6 MiB (the Function URL payload limit)."
  }
}
