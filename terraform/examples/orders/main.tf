# The orders example (jobs/orders.toml) on AWS: the pipeline module, the job
# image's ECR repository, the Orders table the confirm stage writes, and
# Fargate networking in the default VPC. See README.md for the walkthrough.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

data "aws_vpc" "default" {
  count   = length(var.subnet_ids) == 0 ? 1 : 0
  default = true
}

data "aws_subnets" "default" {
  count = length(var.subnet_ids) == 0 ? 1 : 0

  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default[0].id]
  }
}

data "aws_subnet" "first" {
  id = local.subnet_ids[0]
}

locals {
  default_vpc = length(var.subnet_ids) == 0
  subnet_ids  = local.default_vpc ? data.aws_subnets.default[0].ids : var.subnet_ids
  registry    = "${data.aws_caller_identity.current.account_id}.dkr.ecr.${data.aws_region.current.name}.amazonaws.com"
}

# Jobs only talk to AWS APIs and ECR over HTTPS.
resource "aws_security_group" "jobs" {
  name        = "${var.pipeline_name}-jobs"
  description = "batchfan ${var.pipeline_name} jobs: HTTPS out only"
  vpc_id      = data.aws_subnet.first.vpc_id

  egress {
    description = "HTTPS to AWS APIs and the image registry"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  #checkov:skip=CKV2_AWS_5:Attached to the Batch compute environment inside module.orders (compute.security_group_ids), which checkov does not follow through module inputs.
}

resource "aws_kms_key" "images" {
  description         = "batchfan ${var.pipeline_name}: job images"
  enable_key_rotation = true

  # ECR encrypts through grants it creates with the pushing principal's rights.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

# The spec names the image batchfan-jobs:latest; the module prefixes this
# registry to it. containers/README.md builds and pushes it.
resource "aws_ecr_repository" "jobs" {
  name                 = "batchfan-jobs"
  image_tag_mutability = "MUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.images.arn
  }

  #checkov:skip=CKV_AWS_51:The spec names the tag batchfan-jobs:latest, so pushing a new build must move that tag; pin a digest or versioned tag in the spec for immutable deployments.
}

# What the confirm stage writes: one row per order (pk/sk like every batchfan table).
resource "aws_dynamodb_table" "orders" {
  name         = "Orders"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = module.orders.kms_key_arn
  }
}

module "orders" {
  source = "../../modules/pipeline"

  # From the spec (orders.auto.tfvars.json).
  pipeline_name                   = var.pipeline_name
  spec_toml                       = var.spec_toml
  stages                          = var.stages
  aggregation                     = var.aggregation
  cleanup                         = var.cleanup
  barrier                         = var.barrier
  job_queue_name                  = var.job_queue_name
  job_definition_prefix           = var.job_definition_prefix
  table_name                      = var.table_name
  bucket_name                     = coalesce(var.bucket_name_override, var.bucket_name)
  alerts_topic_name               = var.alerts_topic_name
  alert_tolerated_failure_percent = var.alert_tolerated_failure_percent
  schedule                        = var.schedule
  s3_trigger                      = var.s3_trigger
  webhook                         = var.webhook

  # Deployment choices.
  compute = {
    type               = "FARGATE_SPOT"
    max_vcpus          = 64
    subnet_ids         = local.subnet_ids
    security_group_ids = [aws_security_group.jobs.id]
    assign_public_ip   = local.default_vpc
  }
  image_registry      = local.registry
  ecr_repository_arns = [aws_ecr_repository.jobs.arn]
  job_table_arns      = [aws_dynamodb_table.orders.arn]
  lambda_architecture = var.lambda_architecture
  lambda_package_dir  = var.lambda_package_dir
  alert_emails        = var.alert_email == null ? [] : [var.alert_email]
  # The example is meant to be destroyed after trying it.
  table_deletion_protection = false
}
