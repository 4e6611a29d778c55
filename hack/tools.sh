#!/usr/bin/env bash
# Host tools the tests need beyond the venv: promtool and prometheus (Debian's `prometheus` package), for the alert
# unit tests (promtool test rules) and the Prometheus the e2e tier runs. Idempotent; a no-op when they are present.
set -euo pipefail
if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
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
command -v promtool >/dev/null && command -v prometheus >/dev/null
