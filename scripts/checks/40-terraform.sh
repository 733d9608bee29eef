#!/usr/bin/env bash
# Terraform: every .tf file parses with HashiCorp's HCL parser (file:line on
# failure), is `terraform fmt` clean, and checkov finds no failed check. Every
# deliberate exception is an inline `#checkov:skip=ID:reason`; they are listed.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BATCHFAN_HCL2JSON:?run scripts/setup/40-terraform-tools.sh first (scripts/test.sh sources it)}"
: "${BATCHFAN_CHECKOV:?run scripts/setup/40-terraform-tools.sh first (scripts/test.sh sources it)}"

t0=$(date +%s)
echo "parse: every .tf file under terraform/ (HCL parser)"
node "$BATCHFAN_HCL2JSON" terraform > /dev/null
t1=$(date +%s)

command -v terraform >/dev/null || { echo "terraform is missing: install Terraform >= 1.5 (terraform fmt checks the style offline)" >&2; exit 1; }
echo "fmt: terraform fmt -check -recursive terraform"
TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff terraform \
  || { echo "terraform files are not formatted: run \`terraform fmt -recursive terraform\`" >&2; exit 1; }

# A skip needs a reason a reader can judge.
bad_skips=$(grep -rnE '#checkov:skip=' --include='*.tf' terraform | grep -vE '#checkov:skip=CKV[0-9A-Z_]+:.{30,}' || true)
if [ -n "$bad_skips" ]; then
  echo "checkov skips without a real reason (#checkov:skip=ID:reason of 30+ characters):" >&2
  echo "$bad_skips" >&2
  exit 1
fi

echo "checkov: terraform/ (--skip-download)"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
# checkov exits 0 on files it cannot parse: its parsing errors are checked below.
# terraform/examples/orders/ci/ holds test-only override fragments (see
# 43-terraform-apply.sh), not resources: checkov would read each as a whole one.
"$BATCHFAN_CHECKOV" -d terraform --framework terraform --skip-download \
  --skip-path terraform/examples/orders/ci -o json > "$report" || true
t2=$(date +%s)
python3 - "$report" <<'PY'
import json, sys
try:
    data = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit("checkov printed no JSON report: run it by hand to see why")
reports = data if isinstance(data, list) else [data]
failed, parsing, passed, skips = [], 0, 0, set()
for r in reports:
    s = r.get("summary", {})
    parsing += s.get("parsing_errors", 0)
    passed += s.get("passed", 0)
    res = r.get("results", {})
    for c in res.get("failed_checks", []):
        failed.append(f'  {c["check_id"]} {c["check_name"]}\n    {c["resource"]} at {c["file_path"]}:{c["file_line_range"][0]}')
    for c in res.get("skipped_checks", []):
        reason = c.get("check_result", {}).get("suppress_comment", "")
        skips.add(f'  {c["check_id"]} on {c["resource"].split("[")[0]} ({c["file_path"]}): {reason}')
    for f in res.get("parsing_errors", []) if isinstance(res.get("parsing_errors"), list) else []:
        print(f"  cannot parse {f}")
print(f"checkov: {passed} passed, {len(failed)} failed, {parsing} parsing errors; deliberate exceptions:")
for s in sorted(skips):
    print(s)
if parsing:
    sys.exit("checkov could not parse some files (it would skip them silently)")
if failed:
    print("\n".join(failed))
    sys.exit(f"checkov: {len(failed)} failed check(s): fix them, or skip one inline with #checkov:skip=ID:reason")
PY
echo "timings: parse $((t1 - t0))s, checkov $((t2 - t1))s"
