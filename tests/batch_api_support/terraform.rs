//! Terraform's `aws_batch_*` resources against `batchfan batch-api`: the
//! hashicorp/aws provider (from the local plugin directory, no download)
//! creates managed EC2 and Fargate compute environments, an unmanaged one, a
//! queue and a job definition, re-plans with no changes, and destroys them
//! all, waiting through CREATING, UPDATING and DELETING as on AWS.
//!
//! Needs `terraform` on PATH and the provider in `BATCHFAN_TF_PLUGIN_DIR`
//! (default `/opt/tf-plugins`); fails, naming what is missing, without them.

use std::{path::Path, process::Command};

use super::batch_api_support::Server;

/// The configuration applied: every kind of compute environment the module uses.
const CONFIG: &str = r#"
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "endpoint" { type = string }

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {
    batch = var.endpoint
  }
}

resource "aws_batch_compute_environment" "ec2" {
  compute_environment_name_prefix = "ec2-"
  type                            = "MANAGED"
  compute_resources {
    type                = "EC2"
    max_vcpus           = 16
    min_vcpus           = 0
    instance_type       = ["optimal"]
    instance_role       = "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole"
    allocation_strategy = "BEST_FIT_PROGRESSIVE"
    subnets             = ["subnet-1", "subnet-2"]
    security_group_ids  = ["sg-1"]
    ec2_configuration {
      image_type = "ECS_AL2023"
    }
  }
  tags = { team = "data" }
}

resource "aws_batch_compute_environment" "fargate" {
  compute_environment_name = "fargate"
  type                     = "MANAGED"
  state                    = "ENABLED"
  compute_resources {
    type               = "FARGATE_SPOT"
    max_vcpus          = 64
    subnets            = ["subnet-1"]
    security_group_ids = ["sg-1"]
  }
}

resource "aws_batch_compute_environment" "unmanaged" {
  compute_environment_name = "unmanaged"
  type                     = "UNMANAGED"
}

resource "aws_batch_job_queue" "q" {
  name     = "q"
  state    = "ENABLED"
  priority = 1
  compute_environment_order {
    order               = 1
    compute_environment = aws_batch_compute_environment.fargate.arn
  }
  tags = { team = "data" }
}

resource "aws_batch_job_definition" "d" {
  name                  = "d"
  type                  = "container"
  platform_capabilities = ["FARGATE"]
  propagate_tags        = true
  tags                  = { "batchfan:role" = "stage" }
  container_properties = jsonencode({
    image       = "public.ecr.aws/docker/library/busybox:latest"
    command     = ["sh", "-c", "echo Ref::word"]
    environment = [{ name = "B", value = "2" }, { name = "A", value = "1" }]
    resourceRequirements = [
      { type = "VCPU", value = "0.5" },
      { type = "MEMORY", value = "1024" },
    ]
    fargatePlatformConfiguration = { platformVersion = "LATEST" }
    networkConfiguration         = { assignPublicIp = "DISABLED" }
    logConfiguration = {
      logDriver = "awslogs"
      options   = { "awslogs-group" = "/aws/batch/job", "awslogs-stream-prefix" = "d" }
    }
  })
  retry_strategy {
    attempts = 3
    evaluate_on_exit {
      action       = "retry"
      on_exit_code = "75"
    }
    evaluate_on_exit {
      action    = "exit"
      on_reason = "CannotStart*"
    }
  }
  timeout {
    attempt_duration_seconds = 600
  }
}
"#;

/// Runs `terraform ARGS` in `dir`; panics with its output when it does not exit with `expect`.
fn terraform(dir: &Path, endpoint: &str, args: &[&str], expect: i32) -> String {
    let mut cmd = Command::new("terraform");
    cmd.current_dir(dir)
        .args(args)
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_VAR_endpoint", endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run terraform ({e}): install Terraform >= 1.11 and put it on PATH")
    });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(expect), "terraform {args:?} exited {:?}:\n{text}", out.status);
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_applies_replans_clean_and_destroys_batch_resources() {
    let plugins = std::env::var("BATCHFAN_TF_PLUGIN_DIR").unwrap_or_else(|_| "/opt/tf-plugins".into());
    assert!(
        Path::new(&plugins).join("registry.terraform.io/hashicorp/aws").is_dir(),
        "no hashicorp/aws provider under {plugins}: set BATCHFAN_TF_PLUGIN_DIR to the directory above registry.terraform.io"
    );
    let server = Server::start();
    let dir = server.dir.path().join("tf");
    std::fs::create_dir_all(&dir).expect("terraform dir");
    std::fs::write(dir.join("main.tf"), CONFIG).expect("write main.tf");
    let endpoint = server.endpoint.clone();
    let run = |args: &[&str], expect: i32| terraform(&dir, &endpoint, args, expect);

    run(&["init", "-input=false", "-no-color", &format!("-plugin-dir={plugins}")], 0);
    let applied = run(&["apply", "-auto-approve", "-input=false", "-no-color"], 0);
    assert!(applied.contains("Apply complete! Resources: 5 added"), "{applied}");
    // The provider waited through CREATING: everything is VALID now.
    let client = server.client();
    let ces = client.describe_compute_environments().send().await.expect("describe");
    let mut seen: Vec<_> = ces
        .compute_environments()
        .iter()
        .map(|c| (c.r#type().map(|t| t.as_str().to_string()), c.status().map(|s| s.as_str().to_string())))
        .collect();
    seen.sort();
    let valid = |t: &str| (Some(t.to_string()), Some("VALID".to_string()));
    assert_eq!(seen, [valid("MANAGED"), valid("MANAGED"), valid("UNMANAGED")]);
    let queue = client.describe_job_queues().job_queues("q").send().await.expect("describe queue");
    assert_eq!(queue.job_queues()[0].status().map(|s| s.as_str()), Some("VALID"));

    // What DescribeJobDefinitions and the others answer is what Terraform sent: no changes.
    let plan = run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"], 0);
    assert!(plan.contains("No changes."), "{plan}");

    run(&["destroy", "-auto-approve", "-input=false", "-no-color"], 0);
    assert_eq!(run(&["state", "list"], 0).trim(), "", "the state is empty after destroy");
    let ces = client.describe_compute_environments().send().await.expect("describe");
    assert!(ces.compute_environments().is_empty(), "{:?}", ces.compute_environments());
    let queues = client.describe_job_queues().send().await.expect("describe");
    assert!(queues.job_queues().is_empty(), "{:?}", queues.job_queues());
    let defs = client.describe_job_definitions().job_definition_name("d").send().await.expect("describe");
    let statuses: Vec<_> = defs.job_definitions().iter().map(|d| d.status().unwrap_or_default()).collect();
    assert_eq!(statuses, ["INACTIVE"], "the definition is deregistered");
}
