# Sourced by scripts/test.sh: headless Chromium for the status page's browser
# test (tests/serve_browser.rs), driven by Playwright (playwright-core, with
# Debian's /usr/bin/chromium: no tool downloads a browser of its own).
# Idempotent; fast when everything is already there. Exports BATCHFAN_CHROMIUM.

_bf_root="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver (Debian packages)" >&2
  _bf_sudo=""
  [ "$(id -u)" -eq 0 ] || _bf_sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # Update the package lists only when they cannot offer chromium yet.
  if ! apt-cache show chromium >/dev/null 2>&1; then
    $_bf_sudo apt-get update -qq
  fi
  $_bf_sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null \
    || { $_bf_sudo apt-get update -qq && $_bf_sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }
fi
command -v chromium >/dev/null 2>&1 || { echo "chromium is still missing after apt-get install" >&2; return 1 2>/dev/null || exit 1; }

command -v npm >/dev/null 2>&1 || { echo "npm is missing: install Node.js (20 or later) with npm" >&2; return 1 2>/dev/null || exit 1; }
# Playwright must never fetch a browser: it drives /usr/bin/chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -f "$_bf_root/tests/browser/node_modules/playwright-core/package.json" ] \
  || [ "$_bf_root/tests/browser/package-lock.json" -nt "$_bf_root/tests/browser/node_modules/.package-lock.json" ]; then
  echo "installing tests/browser (npm ci)" >&2
  (cd "$_bf_root/tests/browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

export BATCHFAN_CHROMIUM="$(command -v chromium)"
unset _bf_root _bf_sudo
