# AWS Batch: the compute environment and job queue (or shared ones), and one
# job definition per stage plus aggregation, cleanup and barrier.

resource "aws_batch_compute_environment" "this" {
  count                           = local.create_compute ? 1 : 0
  compute_environment_name_prefix = "${var.pipeline_name}-"
  type                            = "MANAGED"
  state                           = "ENABLED"
  tags                            = local.tags

  compute_resources {
    type                = var.compute.type
    max_vcpus           = var.compute.max_vcpus
    min_vcpus           = local.fargate ? null : var.compute.min_vcpus
    subnets             = var.compute.subnet_ids
    security_group_ids  = var.compute.security_group_ids
    instance_type       = local.fargate ? null : var.compute.instance_types
    instance_role       = local.fargate ? null : aws_iam_instance_profile.ecs_instance[0].arn
    allocation_strategy = local.fargate ? null : coalesce(var.compute.allocation_strategy, var.compute.type == "SPOT" ? "SPOT_PRICE_CAPACITY_OPTIMIZED" : "BEST_FIT_PROGRESSIVE")

    dynamic "ec2_configuration" {
      for_each = local.fargate ? [] : ["ECS_AL2023"]
      content {
        image_type = ec2_configuration.value
      }
    }
  }

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = length(var.compute.subnet_ids) > 0 && length(var.compute.security_group_ids) > 0
      error_message = "A new compute environment needs compute.subnet_ids and compute.security_group_ids (or set existing_job_queue_arn / existing_compute_environment_arn)."
    }
  }
}

resource "aws_batch_job_queue" "this" {
  count    = local.create_queue ? 1 : 0
  name     = var.job_queue_name
  state    = "ENABLED"
  priority = 1
  tags     = local.tags

  compute_environment_order {
    order               = 1
    compute_environment = local.create_compute ? aws_batch_compute_environment.this[0].arn : var.existing_compute_environment_arn
  }
}

resource "aws_cloudwatch_log_group" "jobs" {
  name              = local.job_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_batch_job_definition" "this" {
  for_each              = local.jobs
  name                  = "${var.job_definition_prefix}${each.key}"
  type                  = "container"
  platform_capabilities = [local.platform]
  propagate_tags        = true
  tags                  = merge(local.tags, { "batchfan:role" = each.value.role })

  container_properties = jsonencode(merge(
    {
      image            = local.job_images[each.key]
      command          = each.value.command
      jobRoleArn       = aws_iam_role.job.arn
      executionRoleArn = aws_iam_role.job_execution.arn
      resourceRequirements = [
        { type = "VCPU", value = tostring(each.value.vcpus) },
        { type = "MEMORY", value = tostring(each.value.memory_mib) },
      ]
      environment = [
        for name, value in merge(each.value.environment, local.job_definition_env) : { name = name, value = value }
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = aws_cloudwatch_log_group.jobs.name
          "awslogs-region"        = local.region
          "awslogs-stream-prefix" = var.pipeline_name
        }
      }
    },
    local.fargate ? {
      fargatePlatformConfiguration = { platformVersion = "LATEST" }
      networkConfiguration         = { assignPublicIp = var.compute.assign_public_ip ? "ENABLED" : "DISABLED" }
    } : {},
  ))

  retry_strategy {
    attempts = each.value.retry.attempts

    dynamic "evaluate_on_exit" {
      for_each = each.value.retry.evaluate_on_exit
      content {
        action           = lower(evaluate_on_exit.value.action)
        on_exit_code     = evaluate_on_exit.value.on_exit_code
        on_reason        = evaluate_on_exit.value.on_reason
        on_status_reason = evaluate_on_exit.value.on_status_reason
      }
    }
  }

  dynamic "timeout" {
    for_each = each.value.timeout_seconds == null ? [] : [each.value.timeout_seconds]
    content {
      attempt_duration_seconds = timeout.value
    }
  }
}
