#!/usr/bin/env bash
# hadolint on every Dockerfile of the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BATCHFAN_HADOLINT:?run scripts/setup/40-terraform-tools.sh first (scripts/test.sh sources it)}"
mapfile -t files < <(git ls-files --cached --others --exclude-standard | grep -E '(^|/)Dockerfile(\.[^/]*)?$|\.Dockerfile$' | sort)
[ "${#files[@]}" -gt 0 ] || { echo "no Dockerfile found (containers/Dockerfile is expected)" >&2; exit 1; }
for f in "${files[@]}"; do
  echo "hadolint $f"
  "$BATCHFAN_HADOLINT" "$f"
done
