#!/usr/bin/env bash
# Terraform for real, offline, in three modes:
#
#   43-terraform-apply.sh                 the check (scripts/test.sh): `terraform
#                                         validate` of the module and of the example
#   43-terraform-apply.sh apply WORK      the orders example with EVERY trigger on
#                                         (schedule, S3 upload, webhook, alert e-mail)
#                                         applied to moto server (every AWS service but
#                                         Batch) and `batchfan batch-api` (AWS Batch):
#                                         init -> plan -> apply -> plan -detailed-exitcode
#                                         shows no changes; `terraform output -json` in
#                                         WORK/outputs.json
#   43-terraform-apply.sh update WORK     after apply: the spec WORK/orders.toml (as
#                                         edited since) rendered again with `batchfan
#                                         tfvars`, then plan -> apply, as a user
#                                         changing their spec does
#   43-terraform-apply.sh destroy WORK    destroy -> an empty state
#
# `apply` and `destroy` are run ONCE per test command, by the deployed pipeline's
# test (tests/deployed.rs, scripts/deployed-e2e.sh), which starts the servers,
# packages the real Lambdas and runs its scenarios between the two; it sets
#   BATCHFAN_TF_MOTO, BATCHFAN_TF_BATCH   the servers' endpoints (http://127.0.0.1:PORT)
#   BATCHFAN_TF_LAMBDA_DIR                the zips: DIR/{trigger,submit,alert}/bootstrap.zip
#   BATCHFAN_TF_REGION                    the region (default us-east-1)
#   BATCHFAN_TF_ARCH                      the zips' lambda_architecture (default x86_64)
#
# `apply` runs on a copy of terraform/ in WORK with two additions: the
# provider's endpoints (written below: fake credentials, path-style S3, no
# metadata or account look-ups) and terraform/examples/orders/ci/moto_override.tf,
# which masks, with a comment each, the places where moto differs from AWS.
#
# Needs: terraform (>= 1.11), the hashicorp/aws provider in a local plugin
# directory (BATCHFAN_TF_PLUGIN_DIR, default /opt/tf-plugins: the directory
# above registry.terraform.io) and, for apply, target/debug/batchfan.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

die() { echo "43-terraform-apply: $*" >&2; exit 1; }
plugins=${BATCHFAN_TF_PLUGIN_DIR:-/opt/tf-plugins}
batchfan=${BATCHFAN_BIN:-$ROOT/target/debug/batchfan}
command -v terraform >/dev/null || die "terraform is missing: install Terraform >= 1.11 and put it on PATH"
[ -d "$plugins/registry.terraform.io/hashicorp/aws" ] \
  || die "no hashicorp/aws provider under $plugins: set BATCHFAN_TF_PLUGIN_DIR to the directory above registry.terraform.io (find / -name 'terraform-provider-aws_*')"

export TF_CLI_CONFIG_FILE=/dev/null TF_IN_AUTOMATION=1 TF_INPUT=0 AWS_EC2_METADATA_DISABLED=true
tf() { terraform -chdir="$1" "${@:2}" -no-color; }
timings=()
phase_start=0
phase() { phase_start=$(date +%s); echo "== $*"; }
phase_end() { timings+=("$1 $(( $(date +%s) - phase_start ))s"); }

mode=${1:-validate}
case "$mode" in
  validate)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    cp -r terraform "$work/terraform"
    phase "validate: the module and the example (as committed)"
    for dir in "$work/terraform/modules/pipeline" "$work/terraform/examples/orders"; do
      tf "$dir" init -backend=false -plugin-dir="$plugins" >/dev/null || die "terraform init failed in ${dir#"$work/"}"
      tf "$dir" validate
    done
    phase_end validate
    echo "timings: ${timings[*]}"
    echo "apply, re-plan and destroy of the example: tests/deployed.rs (cargo nextest; scripts/deployed-e2e.sh)"
    exit 0
    ;;
  apply | update | destroy)
    work=${2:?"$mode needs the work directory: 43-terraform-apply.sh $mode WORK"}
    ;;
  *) die "unknown mode $mode: give none (validate), apply WORK, update WORK or destroy WORK" ;;
esac
example="$work/terraform/examples/orders"

# The four resources that took longest, from terraform's "X: Creation complete
# after 30s" (or "Destruction complete") lines in FILE.
slowest() {
  python3 - "$1" "$2" "$3" <<'PY'
import re, sys
def seconds(t):
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in re.findall(r"(\d+)([hms])", t))
path, word, label = sys.argv[1:4]
steps = re.findall(rf"^(\S+): {word} complete after (\S+)", open(path).read(), re.M)
slow = sorted(steps, key=lambda s: -seconds(s[1]))[:4]
print(f"slowest {label}: " + ", ".join(f"{r} {t}" for r, t in slow))
PY
}

if [ "$mode" = destroy ]; then
  [ -d "$example/.terraform" ] || die "$example was never applied: run 43-terraform-apply.sh apply $work first"
  phase "destroy"
  tf "$example" destroy -auto-approve >"$work/destroy.txt" 2>&1 || { tail -60 "$work/destroy.txt"; die "terraform destroy failed"; }
  grep -E '^Destroy complete' "$work/destroy.txt"
  left=$(tf "$example" state list)
  [ -z "$left" ] || die "the state still lists, after destroy: $left"
  echo "the state is empty"
  phase_end destroy
  echo "timings: ${timings[*]}"
  slowest "$work/destroy.txt" Destruction destructions
  exit 0
fi

if [ "$mode" = update ]; then
  [ -d "$example/.terraform" ] || die "$example was never applied: run 43-terraform-apply.sh apply $work first"
  "$batchfan" tfvars "$work/orders.toml" --out "$example/orders.auto.tfvars.json"
  phase "update: plan"
  tf "$example" plan -out="$work/update.tfplan" >"$work/update-plan.txt" || { cat "$work/update-plan.txt"; die "terraform plan (update) failed"; }
  grep -E '^Plan:' "$work/update-plan.txt"
  phase_end update-plan
  phase "update: apply"
  tf "$example" apply "$work/update.tfplan" >"$work/update.txt" 2>&1 || { tail -60 "$work/update.txt"; die "terraform apply (update) failed"; }
  grep -E '^Apply complete' "$work/update.txt"
  phase_end update-apply
  echo "timings: ${timings[*]}"
  exit 0
fi

moto=${BATCHFAN_TF_MOTO:?apply needs BATCHFAN_TF_MOTO, moto server\'s endpoint}
batch=${BATCHFAN_TF_BATCH:?apply needs BATCHFAN_TF_BATCH, batchfan batch-api\'s endpoint}
lambda_dir=${BATCHFAN_TF_LAMBDA_DIR:?apply needs BATCHFAN_TF_LAMBDA_DIR, the packaged zips (scripts/package-lambdas.sh --out)}
region=${BATCHFAN_TF_REGION:-us-east-1}
[ -x "$batchfan" ] || die "$batchfan is missing: run cargo build --workspace first"
for f in trigger submit alert; do
  [ -f "$lambda_dir/$f/bootstrap.zip" ] || die "$lambda_dir/$f/bootstrap.zip is missing: package it with scripts/package-lambdas.sh --out $lambda_dir"
done
mkdir -p "$work"
rm -rf "$work/terraform"
cp -r terraform "$work/terraform"
module="$work/terraform/modules/pipeline"

# The spec: jobs/orders.toml with every trigger on, rendered like a user would.
cat jobs/orders.toml terraform/examples/orders/ci/triggers.toml > "$work/orders.toml"
"$batchfan" tfvars "$work/orders.toml" --out "$example/orders.auto.tfvars.json"
python3 - "$example/orders.auto.tfvars.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
off = [k for k in ("schedule", "s3_trigger", "webhook") if v.get(k) is None]
if off:
    sys.exit(f"the check's spec leaves {off} off: every trigger must be on (terraform/examples/orders/ci/triggers.toml)")
PY

cp terraform/examples/orders/ci/moto_override.tf "$module/moto_override.tf"
cat > "$example/endpoints_override.tf" <<TF
provider "aws" {
  region                      = "$region"
  access_key                  = "testing"
  secret_key                  = "testing"
  s3_use_path_style           = true
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true

  # Every service the example uses: one left out would go to AWS, and fail.
  endpoints {
    batch          = "$batch"
    cloudwatch     = "$moto"
    dynamodb       = "$moto"
    ec2            = "$moto"
    ecr            = "$moto"
    events         = "$moto"
    iam            = "$moto"
    kms            = "$moto"
    lambda         = "$moto"
    logs           = "$moto"
    s3             = "$moto"
    scheduler      = "$moto"
    secretsmanager = "$moto"
    sns            = "$moto"
    sqs            = "$moto"
    ssm            = "$moto"
    sts            = "$moto"
  }
}
TF
# In a file, not TF_VAR_*: `destroy WORK` (another process) needs them too.
python3 - "$example/ci.auto.tfvars.json" "$region" "$lambda_dir" "${BATCHFAN_TF_ARCH:-x86_64}" <<'PY'
import json, sys
path, region, lambda_dir, arch = sys.argv[1:]
json.dump({"region": region, "alert_email": "alerts@example.com", "lambda_package_dir": lambda_dir,
           "lambda_architecture": arch}, open(path, "w"))
PY

phase "init"
rm -rf "$example/.terraform" "$example/.terraform.lock.hcl"
tf "$example" init -plugin-dir="$plugins" >/dev/null
phase_end init

phase "plan"
tf "$example" plan -out="$work/plan.tfplan" >"$work/plan.txt" || { cat "$work/plan.txt"; die "terraform plan failed"; }
grep -E '^Plan:' "$work/plan.txt"
phase_end plan

phase "apply"
tf "$example" apply "$work/plan.tfplan" >"$work/apply.txt" 2>&1 || { tail -60 "$work/apply.txt"; die "terraform apply failed"; }
grep -E '^Apply complete' "$work/apply.txt"
phase_end apply

phase "re-plan: no changes"
set +e
tf "$example" plan -detailed-exitcode >"$work/replan.txt" 2>&1
code=$?
set -e
if [ "$code" -ne 0 ]; then
  cat "$work/replan.txt"
  [ "$code" -eq 2 ] && die "the plan after apply is not empty: what the APIs answer differs from what was applied (above)"
  die "terraform plan failed after apply"
fi
echo "no changes"
phase_end re-plan

tf "$example" output -json >"$work/outputs.json"
echo "timings: ${timings[*]}"
# Where the time goes: mostly the provider's own waits (a job queue is looked
# at 30 s after each change; S3 lifecycle rules until 3 reads agree, 10 s apart).
slowest "$work/apply.txt" Creation creations
