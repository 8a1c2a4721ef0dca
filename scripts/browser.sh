#!/usr/bin/env bash
# Installs the headless browser the dashboard's test drives (test/ui-dashboard.test.ts):
# Debian's chromium package, once. playwright-core (a devDependency) drives it; it never
# downloads a browser of its own. QUASAR_CHROMIUM_BIN may point at another Chromium.
exec bash "$(dirname "$0")/debian-package.sh" browser /usr/bin/chromium chromium QUASAR_CHROMIUM_BIN
