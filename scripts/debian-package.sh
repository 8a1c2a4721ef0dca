#!/usr/bin/env bash
# Makes sure a program the tests drive is installed, from its Debian package, once:
#   debian-package.sh <label> <program path> <package> <override variable>
# When the override variable is set, it names the program to use instead and nothing is
# installed. The first install needs root and apt; later runs take a second.
set -euo pipefail
label=$1 default=$2 package=$3 override=$4
program=${!override:-$default}
if [ -x "$program" ]; then
  echo "$label: $program present"
  exit 0
fi
if [ -n "${!override:-}" ]; then
  echo "$label: $override=$program is not an executable" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "$label: $program is missing; install Debian's $package package (apt-get install $package) or set $override" >&2
  exit 1
fi
echo "$label: installing Debian's $package …"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine.
apt-get install -y --no-install-recommends "$package" >/dev/null 2>&1 ||
  { apt-get update -qq && apt-get install -y --no-install-recommends "$package" >/dev/null; }
"$program" --version | head -n 1
