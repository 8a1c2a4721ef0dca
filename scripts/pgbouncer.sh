#!/usr/bin/env bash
# Installs the connection pooler one wake-up test puts in front of PostgreSQL
# (test/db/desired-wakeups.test.ts): Debian's pgbouncer package, once. The package's own
# service is not started; the test runs its own PgBouncer on a free loopback port.
# QUASAR_PGBOUNCER_BIN may point at another pgbouncer. The first install needs root and apt.
set -euo pipefail
bouncer=${QUASAR_PGBOUNCER_BIN:-/usr/sbin/pgbouncer}
if [ -x "$bouncer" ]; then
  echo "pgbouncer: $bouncer present"
  exit 0
fi
if [ -n "${QUASAR_PGBOUNCER_BIN:-}" ]; then
  echo "pgbouncer: QUASAR_PGBOUNCER_BIN=$QUASAR_PGBOUNCER_BIN is not an executable" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "pgbouncer: $bouncer is missing; install Debian's pgbouncer package (apt-get install pgbouncer) or set QUASAR_PGBOUNCER_BIN" >&2
  exit 1
fi
echo "pgbouncer: installing Debian's pgbouncer …"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine.
apt-get install -y --no-install-recommends pgbouncer >/dev/null 2>&1 ||
  { apt-get update -qq && apt-get install -y --no-install-recommends pgbouncer >/dev/null; }
# Debian starts the packaged service where it can; the tests need none of it.
if command -v systemctl >/dev/null && systemctl is-active --quiet pgbouncer 2>/dev/null; then
  systemctl stop pgbouncer || true
fi
"$bouncer" --version | head -n 1
