#!/usr/bin/env bash
# Run the e2e tier on a kind cluster instead of the local test cluster.
# Needs a Docker that can pull images (kind's node image, python:3.11-slim-bookworm).
#   hack/e2e-kind.sh            create kind cluster "gyre" if missing, build+load gyre:dev, run tests/e2e
#   GYRE_KIND_DELETE=1 ...      delete the kind cluster afterwards
#   extra arguments go to pytest, e.g. hack/e2e-kind.sh -k smoke
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/cluster/lib.sh
source "$HERE/cluster/lib.sh"

NAME="${GYRE_KIND_NAME:-gyre}"
PY="$REPO_ROOT/.venv/bin/python"
[ -x "$PY" ] || die "no .venv: run make venv"
command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "docker is not running (docker info failed)"

KIND="$(command -v kind || true)"
if [ -z "$KIND" ]; then
  # Same rule as the other components: from the Go module proxy, cached by version.
  KIND_DIR="$GYRE_CACHE/bin/kind-$KIND_VERSION"
  if [ ! -x "$KIND_DIR/kind" ]; then
    command -v go >/dev/null || die "kind is not installed and there is no Go to build it"
    log "building kind $KIND_VERSION"
    GOBIN="$KIND_DIR" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "sigs.k8s.io/kind@$KIND_VERSION"
  fi
  KIND="$KIND_DIR/kind"
fi

if ! "$KIND" get clusters 2>/dev/null | grep -qx "$NAME"; then
  log "creating kind cluster $NAME"
  "$KIND" create cluster --name "$NAME" --wait 180s
fi
KCFG="$(mktemp)"
trap 'rm -f "$KCFG"' EXIT
"$KIND" get kubeconfig --name "$NAME" >"$KCFG"

log "building gyre:dev from the public base image"
docker build -t gyre:dev "$REPO_ROOT"
"$KIND" load docker-image gyre:dev --name "$NAME"

rc=0
KUBECONFIG="$KCFG" GYRE_TEST_ALLOW_CONTEXT="kind-$NAME" "$PY" -m pytest "$REPO_ROOT/tests/e2e" -q "$@" || rc=$?
if [ "${GYRE_KIND_DELETE:-0}" = 1 ]; then
  "$KIND" delete cluster --name "$NAME"
fi
exit $rc
