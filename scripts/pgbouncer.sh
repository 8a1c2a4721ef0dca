#!/usr/bin/env bash
# Installs the connection pooler one wake-up test puts in front of PostgreSQL
# (test/db/desired-wakeups.test.ts): Debian's pgbouncer package, once. The test runs its own
# PgBouncer on a free loopback port, never a packaged service. QUASAR_PGBOUNCER_BIN may
# point at another pgbouncer.
exec bash "$(dirname "$0")/debian-package.sh" pgbouncer /usr/sbin/pgbouncer pgbouncer QUASAR_PGBOUNCER_BIN
