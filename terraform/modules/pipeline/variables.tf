# Deployment choices: where and how the pipeline runs. The pipeline itself
# (stages, triggers, names) comes from spec_variables.tf, rendered by
# `batchfan tfvars SPEC`.

# ---- compute -------------------------------------------------------------

variable "compute" {
  description = <<-EOT
    The Batch compute the job queue runs on.
    type: FARGATE, FARGATE_SPOT, EC2 or SPOT (the job definitions' platform follows it).
    max_vcpus: the compute environment's ceiling. min_vcpus: EC2/SPOT only (0 scales to zero).
    subnet_ids, security_group_ids: where jobs run (needed unless existing_job_queue_arn is set).
    instance_types: EC2/SPOT only. allocation_strategy: EC2/SPOT only (default BEST_FIT_PROGRESSIVE / SPOT_PRICE_CAPACITY_OPTIMIZED).
    assign_public_ip: Fargate only; true when the subnets are public without a NAT (to pull images).
  EOT
  type = object({
    type                = optional(string, "FARGATE")
    max_vcpus           = optional(number, 256)
    min_vcpus           = optional(number, 0)
    subnet_ids          = optional(list(string), [])
    security_group_ids  = optional(list(string), [])
    instance_types      = optional(list(string), ["optimal"])
    allocation_strategy = optional(string)
    assign_public_ip    = optional(bool, false)
  })
  default = {}

  validation {
    condition     = contains(["FARGATE", "FARGATE_SPOT", "EC2", "SPOT"], var.compute.type)
    error_message = "The compute.type must be FARGATE, FARGATE_SPOT, EC2 or SPOT."
  }

  validation {
    condition     = var.compute.max_vcpus >= 1 && var.compute.min_vcpus >= 0 && var.compute.min_vcpus <= var.compute.max_vcpus
    error_message = "The compute needs max_vcpus >= 1 and 0 <= min_vcpus <= max_vcpus."
  }

  validation {
    condition     = var.compute.allocation_strategy == null ? true : contains(["BEST_FIT", "BEST_FIT_PROGRESSIVE", "SPOT_CAPACITY_OPTIMIZED", "SPOT_PRICE_CAPACITY_OPTIMIZED"], var.compute.allocation_strategy)
    error_message = "The compute.allocation_strategy must be BEST_FIT, BEST_FIT_PROGRESSIVE, SPOT_CAPACITY_OPTIMIZED or SPOT_PRICE_CAPACITY_OPTIMIZED."
  }
}

variable "existing_compute_environment_arn" {
  description = "ARN of an existing Batch compute environment to put this pipeline's job queue on (several pipelines can share one); null creates one from var.compute. compute.type must still say what it is (for the job definitions' platform)."
  type        = string
  default     = null

  validation {
    condition     = var.existing_compute_environment_arn == null ? true : can(regex("^arn:aws[a-z-]*:batch:[a-z0-9-]+:[0-9]{12}:compute-environment/.+$", var.existing_compute_environment_arn))
    error_message = "The existing_compute_environment_arn must be a Batch compute environment ARN."
  }
}

variable "existing_job_queue_arn" {
  description = "ARN of an existing Batch job queue shared by several pipelines; null creates the queue job_queue_name. compute.type must still say what the queue's compute is."
  type        = string
  default     = null

  validation {
    condition     = var.existing_job_queue_arn == null ? true : can(regex("^arn:aws[a-z-]*:batch:[a-z0-9-]+:[0-9]{12}:job-queue/[A-Za-z0-9_-]+$", var.existing_job_queue_arn))
    error_message = "The existing_job_queue_arn must be a Batch job queue ARN."
  }
}

variable "image_registry" {
  description = "Registry prefixed to job images that name none (e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com makes batchfan-jobs:latest an ECR image); empty leaves images as the spec says."
  type        = string
  default     = ""

  validation {
    condition     = var.image_registry == "" || can(regex("^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$", var.image_registry))
    error_message = "The image_registry must be a registry host (and optional path), e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com, without a trailing '/'."
  }
}

variable "ecr_repository_arns" {
  description = "ECR repositories the job execution role may pull images from; empty when images are public."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.ecr_repository_arns : can(regex("^arn:aws[a-z-]*:ecr:[a-z0-9-]+:[0-9]{12}:repository/.+$", a))])
    error_message = "Each ecr_repository_arns entry must be an ECR repository ARN."
  }
}

variable "input_bucket_names" {
  description = "Extra buckets the trigger and the jobs read run inputs from (s3:GetObject, s3:ListBucket). The S3 trigger's bucket is always included."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for b in var.input_bucket_names : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", b))])
    error_message = "Each input_bucket_names entry must be a valid S3 bucket name."
  }
}

variable "job_table_arns" {
  description = "Extra DynamoDB tables the jobs write to (e.g. the Orders table of the orders example), with the same actions as batchfan's table."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.job_table_arns : can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[A-Za-z0-9_.-]+$", a))])
    error_message = "Each job_table_arns entry must be a DynamoDB table ARN."
  }
}

# ---- storage -------------------------------------------------------------

variable "create_bucket" {
  description = "Create bucket_name (true), or use an existing bucket of that name (false; its encryption, public access block and lifecycle are then yours)."
  type        = bool
  default     = true
}

variable "run_retention_days" {
  description = "Days after which a run's objects (runs/{pipeline}/...: outputs and any scratch cleanup missed) expire; null keeps them."
  type        = number
  default     = 90

  validation {
    condition     = var.run_retention_days == null ? true : var.run_retention_days >= 1
    error_message = "The run_retention_days must be at least 1, or null."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days a deleted or overwritten object version is kept (cleanup's deletes leave noncurrent versions in the versioned bucket)."
  type        = number
  default     = 3

  validation {
    condition     = var.noncurrent_version_retention_days >= 1
    error_message = "The noncurrent_version_retention_days must be at least 1."
  }
}

variable "access_log_bucket" {
  description = "Bucket that receives the pipeline bucket's server access logs (prefix s3-access/{bucket}/); null disables access logging."
  type        = string
  default     = null
}

variable "table_deletion_protection" {
  description = "Protect the DynamoDB table from deletion (turn off before destroying the pipeline)."
  type        = bool
  default     = true
}

# ---- Lambdas -------------------------------------------------------------

variable "lambda_architecture" {
  description = "CPU architecture of the Lambdas: arm64 (package with `scripts/package-lambdas.sh --arm64`) or x86_64 (`--x86-64`)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "The lambda_architecture must be arm64 or x86_64."
  }
}

variable "lambda_package_dir" {
  description = "Directory holding trigger/bootstrap.zip, submit/bootstrap.zip and alert/bootstrap.zip (what scripts/package-lambdas.sh writes); null for the repository's target/lambda."
  type        = string
  default     = null
}

variable "lambda_memory_mb" {
  description = "Memory of each Lambda, MB."
  type        = number
  default     = 256

  validation {
    condition     = var.lambda_memory_mb >= 128 && var.lambda_memory_mb <= 10240
    error_message = "The lambda_memory_mb must be between 128 and 10240."
  }
}

variable "lambda_timeout_seconds" {
  description = "Timeout of each Lambda, seconds (planning a large input or submitting many shards takes longer)."
  type        = number
  default     = 300

  validation {
    condition     = var.lambda_timeout_seconds >= 10 && var.lambda_timeout_seconds <= 900
    error_message = "The lambda_timeout_seconds must be between 10 and 900."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of the trigger and alert Lambdas (keys trigger, alert); an absent key leaves that function unreserved. Caps e.g. a flood of webhook calls. The submit Lambda's is submit_reserved_concurrency."
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.lambda_reserved_concurrency : contains(["trigger", "alert"], k) && v >= 0])
    error_message = "The lambda_reserved_concurrency keys must be trigger or alert, with values >= 0; set the submit Lambda's with submit_reserved_concurrency."
  }
}

variable "submit_reserved_concurrency" {
  description = "Reserved concurrency of the submit Lambda. 1 (the default) makes one process submit the pipeline's jobs at a time, so its SubmitJob rate limiter (40 calls/s, bursts of 5) keeps the pipeline under AWS Batch's 50 SubmitJob calls/s per account; n processes may make n times as many calls. Plans that arrive meanwhile wait in Lambda's async queue (retried for up to 6 hours), none is lost."
  type        = number
  default     = 1

  validation {
    condition     = var.submit_reserved_concurrency >= 1 && floor(var.submit_reserved_concurrency) == var.submit_reserved_concurrency
    error_message = "The submit_reserved_concurrency must be a whole number >= 1 (0 would stop every submission); keep 1 to stay under the account's SubmitJob rate."
  }
}

variable "reconcile_minutes" {
  description = "Minutes between two reconcile ticks of the alert Lambda: it re-checks runs whose failure cleanup waits for children still running (the job state rule delivers failures and cleanups, not every child's success) and starts a held schedule slot whose run's end was missed. One invocation per tick (8,640 a month at 5), a DynamoDB query when nothing waits."
  type        = number
  default     = 5

  validation {
    condition     = var.reconcile_minutes >= 1 && floor(var.reconcile_minutes) == var.reconcile_minutes
    error_message = "The reconcile_minutes must be a whole number >= 1 (EventBridge schedules tick at most once a minute)."
  }
}

variable "lambda_tracing" {
  description = "Send X-Ray traces from the Lambdas (Active) or only pass trace headers on (PassThrough)."
  type        = string
  default     = "Active"

  validation {
    condition     = contains(["Active", "PassThrough"], var.lambda_tracing)
    error_message = "The lambda_tracing must be Active or PassThrough."
  }
}

variable "lambda_vpc" {
  description = "Run the Lambdas in these subnets and security groups (they need routes to the AWS APIs they call: NAT or VPC endpoints); null runs them outside a VPC."
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  default = null
}

variable "webhook_secret_version" {
  description = "Version of the webhook's HMAC secret that Terraform writes (a random one, never stored in the state): raise it to have `terraform apply` write a fresh random secret. Rotating by hand with `aws ssm put-parameter --overwrite` needs no change here."
  type        = number
  default     = 1

  validation {
    condition     = var.webhook_secret_version >= 1 && floor(var.webhook_secret_version) == var.webhook_secret_version
    error_message = "The webhook_secret_version must be a whole number, 1 or more."
  }
}

variable "lambda_code_signing_config_arn" {
  description = "Code signing configuration the Lambdas' packages must satisfy; null for none."
  type        = string
  default     = null
}

# ---- alerts and logs -----------------------------------------------------

variable "alert_emails" {
  description = "Email addresses subscribed to the alerts topic (each must confirm the subscription email)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "Each alert_emails entry must be an email address."
  }
}

variable "alert_https_endpoints" {
  description = "HTTPS endpoints subscribed to the alerts topic (e.g. a chat webhook relay)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for u in var.alert_https_endpoints : startswith(u, "https://")])
    error_message = "Each alert_https_endpoints entry must start with https://."
  }
}

variable "log_retention_days" {
  description = "Retention of the Lambdas' and jobs' CloudWatch log groups, days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be a CloudWatch Logs retention: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
