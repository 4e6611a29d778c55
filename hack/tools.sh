#!/usr/bin/env bash
# Host tools the tests need beyond the venv: promtool (Debian's `prometheus` package) for the alert unit tests
# (`promtool test rules`). Idempotent; a no-op when it is present. The e2e tier's Prometheus server is built by
# hack/prometheus/build.sh instead (Debian's has no Kubernetes service discovery).
set -euo pipefail
if command -v promtool >/dev/null; then
  exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
# The package would start a system Prometheus where init runs services; the tests need only the binaries.
printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
$SUDO chmod +x /usr/sbin/policy-rc.d
trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null
