#!/usr/bin/env bash
# Installs the headless browser the dashboard's test drives (test/ui-dashboard.test.ts):
# Debian's chromium package, once. playwright-core (a devDependency) drives it; it never
# downloads a browser of its own. QUASAR_CHROMIUM_BIN may point at another Chromium.
# Takes a second when the browser is there; the first install needs root and apt.
set -euo pipefail
browser=${QUASAR_CHROMIUM_BIN:-/usr/bin/chromium}
if [ -x "$browser" ]; then
  echo "browser: $browser present"
  exit 0
fi
if [ -n "${QUASAR_CHROMIUM_BIN:-}" ]; then
  echo "browser: QUASAR_CHROMIUM_BIN=$QUASAR_CHROMIUM_BIN is not an executable" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "browser: $browser is missing; install Debian's chromium package (apt-get install chromium) or set QUASAR_CHROMIUM_BIN" >&2
  exit 1
fi
echo "browser: installing Debian's chromium …"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine.
apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
  { apt-get update -qq && apt-get install -y --no-install-recommends chromium >/dev/null; }
"$browser" --version
