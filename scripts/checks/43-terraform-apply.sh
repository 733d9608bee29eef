#!/usr/bin/env bash
# Terraform for real, offline: `terraform validate` of the module and of the
# example; then the orders example with EVERY trigger on (schedule, S3 upload,
# webhook, alert e-mail) is applied to moto server (every AWS service but
# Batch) and `batchfan batch-api` (AWS Batch): init -> plan -> apply -> plan
# -detailed-exitcode shows no changes -> destroy -> an empty state.
#
# Runs on a temporary copy of terraform/ with two additions: the provider's
# endpoints (written below: fake credentials, path-style S3, no metadata or
# account look-ups) and terraform/examples/orders/ci/moto_override.tf, which
# masks, with a comment each, the places where moto differs from AWS.
# The Lambda packages are placeholder zips: nothing runs them here.
#
# Needs: terraform (>= 1.11), the hashicorp/aws provider in a local plugin
# directory (BATCHFAN_TF_PLUGIN_DIR, default /opt/tf-plugins: the directory
# above registry.terraform.io), moto (BATCHFAN_MOTO_SERVER, set by
# scripts/setup/20-moto.sh) and target/debug/batchfan (cargo build).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

die() { echo "43-terraform-apply: $*" >&2; exit 1; }
plugins=${BATCHFAN_TF_PLUGIN_DIR:-/opt/tf-plugins}
batchfan=${BATCHFAN_BIN:-$ROOT/target/debug/batchfan}
command -v terraform >/dev/null || die "terraform is missing: install Terraform >= 1.11 and put it on PATH"
[ -d "$plugins/registry.terraform.io/hashicorp/aws" ] \
  || die "no hashicorp/aws provider under $plugins: set BATCHFAN_TF_PLUGIN_DIR to the directory above registry.terraform.io (find / -name 'terraform-provider-aws_*')"
[ -x "${BATCHFAN_MOTO_SERVER:-}" ] || die "BATCHFAN_MOTO_SERVER is not an executable moto_server: run scripts/setup/20-moto.sh (scripts/test.sh sources it)"
[ -x "$batchfan" ] || die "$batchfan is missing: run cargo build --workspace first"

export TF_CLI_CONFIG_FILE=/dev/null TF_IN_AUTOMATION=1 TF_INPUT=0 AWS_EC2_METADATA_DISABLED=true
work=$(mktemp -d)
moto_pid='' api_pid=''
cleanup() {
  for pid in $api_pid $moto_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

timings=()
phase_start=0
phase() { phase_start=$(date +%s); echo "== $*"; }
phase_end() { timings+=("$1 $(( $(date +%s) - phase_start ))s"); }
tf() { terraform -chdir="$1" "${@:2}" -no-color; }

cp -r terraform "$work/terraform"
module="$work/terraform/modules/pipeline"
example="$work/terraform/examples/orders"

phase "validate: the module and the example (as committed)"
for dir in "$module" "$example"; do
  tf "$dir" init -backend=false -plugin-dir="$plugins" >/dev/null || die "terraform init failed in ${dir#"$work/"}"
  tf "$dir" validate
done
phase_end validate

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

# Placeholder Lambda packages: a zip with an executable bootstrap each.
python3 - "$work/lambda" <<'PY'
import os, sys, zipfile
for name in ("trigger", "submit", "alert"):
    os.makedirs(f"{sys.argv[1]}/{name}", exist_ok=True)
    with zipfile.ZipFile(f"{sys.argv[1]}/{name}/bootstrap.zip", "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, "#!/bin/sh\necho placeholder: the check never invokes it\n")
PY

phase "servers: moto and batch-api on free ports"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
moto_port=$(free_port)
"$BATCHFAN_MOTO_SERVER" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
"$batchfan" batch-api --listen 127.0.0.1:0 --state "$work/batch-state" --region eu-west-1 \
  >"$work/batch-api.out" 2>"$work/batch-api.log" &
api_pid=$!
moto="http://127.0.0.1:$moto_port"
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "$moto/moto-api/" 2>/dev/null && grep -q '^listening on ' "$work/batch-api.out" && break
  kill -0 "$moto_pid" 2>/dev/null || die "moto server exited: $(tail -5 "$work/moto.log")"
  kill -0 "$api_pid" 2>/dev/null || die "batch-api exited: $(tail -5 "$work/batch-api.log")"
  sleep 0.1
done
curl -fsS -o /dev/null "$moto/moto-api/" || die "moto server did not answer on $moto within 30 s"
batch=$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' "$work/batch-api.out")
[ -n "$batch" ] || die "batch-api did not print its address within 30 s: $(tail -5 "$work/batch-api.log")"
echo "moto $moto, batch-api $batch"
phase_end servers

cp terraform/examples/orders/ci/moto_override.tf "$module/moto_override.tf"
cat > "$example/endpoints_override.tf" <<EOF
provider "aws" {
  region                      = "eu-west-1"
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
EOF
export TF_VAR_region=eu-west-1 TF_VAR_alert_email=alerts@example.com TF_VAR_lambda_package_dir="$work/lambda"

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

phase "destroy"
tf "$example" destroy -auto-approve >"$work/destroy.txt" 2>&1 || { tail -60 "$work/destroy.txt"; die "terraform destroy failed"; }
grep -E '^Destroy complete' "$work/destroy.txt"
left=$(tf "$example" state list)
[ -z "$left" ] || die "the state still lists, after destroy: $left"
echo "the state is empty"
phase_end destroy

echo "timings: ${timings[*]}"
# Where the time goes: mostly the provider's own waits (a job queue is looked
# at 30 s after each change; S3 lifecycle rules until 3 reads agree, 10 s apart).
python3 - "$work/apply.txt" "$work/destroy.txt" <<'PY'
import re, sys
def seconds(t):
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in re.findall(r"(\d+)([hms])", t))
for path, verb in ((sys.argv[1], "Creation"), (sys.argv[2], "Destruction")):
    steps = re.findall(rf"^(\S+): {verb} complete after (\S+)", open(path).read(), re.M)
    slow = sorted(steps, key=lambda s: -seconds(s[1]))[:4]
    print(f"slowest {verb.lower()}s: " + ", ".join(f"{r} {t}" for r, t in slow))
PY
