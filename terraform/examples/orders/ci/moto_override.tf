# Test-only: scripts/checks/43-terraform-apply.sh copies this file into a
# temporary copy of modules/pipeline (as moto_override.tf, a Terraform
# override file) before it applies the orders example to moto server and
# `batchfan batch-api`. Each block masks ONE place where moto differs from
# AWS; nothing else of the module is changed. Never deploy with it.
#
# Not masked: moto's CreateComputeEnvironment requires a service role that
# AWS does not (AWS uses its service-linked role) — the check sends AWS Batch
# to `batchfan batch-api`, which follows AWS here.

# moto checks a bucket policy's Deny statements without the request's context
# (moto/s3/responses.py: bucket.get_permission(action, resource)), so the
# condition aws:SecureTransport = false never decides anything and the
# TLS-only Deny refuses every object call, HTTPS or not: PutObject of the spec
# gets 403. On AWS the policy only refuses plain-HTTP requests.
resource "aws_s3_bucket_policy" "this" {
  count = 0
}

# moto's GetFunction answers no DeadLetterConfig, no LoggingConfig and no
# KMSKeyArn (moto/awslambda/models.py: LambdaFunction.get_configuration), so
# every plan after apply would want to set them again. AWS answers all three.
resource "aws_lambda_function" "this" {
  lifecycle {
    ignore_changes = [dead_letter_config, logging_config, kms_key_arn]
  }
}
