# Terraform 1.11 for the webhook secret's write-only argument (value_wo) and
# ephemeral resource; hashicorp/aws is the only provider, so the module
# installs offline from a local plugin directory.
terraform {
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.90"
    }
  }
}
