#!/usr/bin/env bash
# Build the Prometheus server the e2e tier runs, from the upstream Go module (through the Go module proxy), into
# ~/.cache/gyre/prometheus/<version>/prometheus; print its path. Debian's prometheus package is built without
# Kubernetes service discovery (client-go is not packaged), so its server cannot discover pods; its promtool is
# what the unit tier uses.
set -euo pipefail
VERSION=${PROMETHEUS_VERSION:-v0.54.1} # the Go module version of Prometheus 2.54.1
OUT=${GYRE_CACHE:-$HOME/.cache/gyre}/prometheus/$VERSION
if [ ! -x "$OUT/prometheus" ]; then
  command -v go >/dev/null || { echo "prometheus/build.sh: go is needed" >&2; exit 1; }
  mkdir -p "$OUT"
  (
    export GOMODCACHE=${GYRE_GOMODCACHE:-$HOME/.cache/gyre/gomod} GOFLAGS=-modcacherw CGO_ENABLED=0
    cd "$(mktemp -d)"
    # Its go.mod has replace directives, so it builds as the main module, from a copy of its source.
    src="$(go mod download -json "github.com/prometheus/prometheus@$VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
    cp -r "$src" prometheus && chmod -R u+w prometheus && cd prometheus
    # Only Kubernetes service discovery (upstream's way to leave discovery plugins out, plugins.yml): the cloud
    # providers' SDKs would take most of the build.
    printf 'package plugins\n\nimport (\n\t_ "github.com/prometheus/prometheus/discovery/kubernetes"\n)\n' \
      >plugins/plugins.go
    go build -tags netgo -o "$OUT/prometheus" ./cmd/prometheus >&2
    rm -rf "$PWD"
  )
fi
echo "$OUT/prometheus"
