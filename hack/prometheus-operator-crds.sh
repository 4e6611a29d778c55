#!/usr/bin/env bash
# Print the directory holding the prometheus-operator CRDs (ServiceMonitor, PodMonitor, PrometheusRule, ...), fetched
# once through the Go module proxy into ~/.cache/gyre (outside the repository). Used by the tests that dry-run Gyre's
# monitoring objects against them.
set -euo pipefail
VERSION=${PROMETHEUS_OPERATOR_VERSION:-v0.80.1}
MODULE=github.com/prometheus-operator/prometheus-operator
export GOMODCACHE=${GYRE_GOMODCACHE:-$HOME/.cache/gyre/gomod}
export GOFLAGS=-modcacherw
dir=$GOMODCACHE/$MODULE@$VERSION/example/prometheus-operator-crd
if [ ! -d "$dir" ]; then
  command -v go >/dev/null || { echo "prometheus-operator-crds: go is needed to fetch $MODULE@$VERSION" >&2; exit 1; }
  (cd "$(mktemp -d)" && go mod download "$MODULE@$VERSION" >&2)
fi
echo "$dir"
