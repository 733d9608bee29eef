variable "region" {
  description = "AWS region to deploy the orders pipeline in."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "The region must be an AWS region name such as eu-west-1."
  }
}

variable "bucket_name_override" {
  description = "S3 bucket names are global: when the spec's bucket (batchfan-orders) is taken, name another here (the Lambdas and jobs get it from their environment)."
  type        = string
  default     = null
}

variable "alert_email" {
  description = "Email address that receives failed-run alerts (confirm the subscription email AWS sends); null for none."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Subnets the Fargate jobs run in; empty uses the default VPC's subnets (public: jobs then get a public IP to pull images)."
  type        = list(string)
  default     = []
}

variable "lambda_architecture" {
  description = "arm64 or x86_64: must match how the Lambdas were packaged (scripts/package-lambdas.sh --arm64 | --x86-64)."
  type        = string
  default     = "arm64"
}

variable "lambda_package_dir" {
  description = "Directory of the packaged Lambdas ({trigger,submit,alert}/bootstrap.zip); null for the repository's target/lambda, where scripts/package-lambdas.sh writes them."
  type        = string
  default     = null
}
