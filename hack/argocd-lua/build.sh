#!/usr/bin/env bash
# Build (or reuse) the Argo CD health-script runner (hack/argocd-lua/main.go) from the Go module proxy and print its
# path. Cached in $GYRE_CACHE/bin, keyed by the hash of its sources, like the cluster components.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GYRE_CACHE="${GYRE_CACHE:-$HOME/.cache/gyre}"
key="$(cat "$HERE/go.mod" "$HERE/go.sum" "$HERE/main.go" | sha256sum | cut -c1-12)"
dest="$GYRE_CACHE/bin/argocd-lua-$key"
if [ ! -f "$dest/.complete" ]; then
  # The Go the cluster components are built with (hack/cluster/build.sh): on PATH or in /usr/local/go/bin.
  command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
  command -v go >/dev/null 2>&1 || { echo "argocd-lua: Go is not installed (see docs/cluster.md)" >&2; exit 1; }
  mkdir -p "$dest"
  (cd "$HERE" && GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w" -o "$dest/argocd-lua" .) >&2
  touch "$dest/.complete"
fi
echo "$dest/argocd-lua"
