#!/usr/bin/env bash
# Builds the Go daemons the tests and benches run (Kubo, IPFS Cluster) into .tools/bin, once.
# A build is skipped when the binary there already reports the pinned version; an environment
# variable can point at an existing binary instead (then nothing is built for it):
#   QUASAR_IPFS_BIN                 an `ipfs` (Kubo 0.43.1)
#   QUASAR_CLUSTER_SERVICE_BIN      an `ipfs-cluster-service` (1.1.6)
#   QUASAR_CLUSTER_CTL_BIN          an `ipfs-cluster-ctl` (1.1.6)
# Needs Go >= 1.26 and the Go module proxy. First build: about 5 min for Kubo and 5 min for
# Cluster on 2 cores; later runs take a second.
#
# Why not `go install …@version`: Kubo 0.43.1's go.mod has a `replace` (a go-libp2p fork
# that the module proxy does not serve), which `go install` refuses, and Cluster's module
# listing is refused by the proxy. Each tool is built from a small module of its own under
# tools/ (go.mod `tool` directive, go.sum pinned), which resolves the same versions; for Kubo
# it pins quic-go and webtransport-go to what go-libp2p v0.49.0 requires in place of the fork.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin"
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=readonly

# build NAME VERSION_LINE MODULE_DIR PACKAGE OVERRIDE_VAR
build() {
  local name=$1 want=$2 dir=$3 pkg=$4 override=$5
  if [ -n "${!override:-}" ]; then
    echo "tools: $name from $override=${!override}"
    return
  fi
  local have=""
  [ -x "$bin/$name" ] && have=$("$bin/$name" --version 2>/dev/null || true)
  if [ "$have" = "$want" ]; then
    echo "tools: $name up to date ($want)"
    return
  fi
  if ! command -v go >/dev/null; then
    echo "tools: Go >= 1.26 is needed to build $name (or set $override to an existing binary)" >&2
    exit 1
  fi
  echo "tools: building $name ($want) …"
  local started=$SECONDS
  (cd "$root/tools/$dir" && go build -trimpath -o "$bin/$name.partial" "$pkg")
  mv "$bin/$name.partial" "$bin/$name"
  echo "tools: built $name in $((SECONDS - started)) s"
}

build ipfs "ipfs version 0.43.1" kubo github.com/ipfs/kubo/cmd/ipfs QUASAR_IPFS_BIN
build ipfs-cluster-service "ipfs-cluster-service version 1.1.6" cluster \
  github.com/ipfs-cluster/ipfs-cluster/cmd/ipfs-cluster-service QUASAR_CLUSTER_SERVICE_BIN
build ipfs-cluster-ctl "ipfs-cluster-ctl version 1.1.6" cluster \
  github.com/ipfs-cluster/ipfs-cluster/cmd/ipfs-cluster-ctl QUASAR_CLUSTER_CTL_BIN
