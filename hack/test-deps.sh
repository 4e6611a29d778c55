#!/usr/bin/env bash
# Host packages the tests need beyond the venv, from Debian: chromium renders the HTML drift report
# (tests/unit/drift/test_drift_html_browser.py), promtool (package prometheus) unit-tests the alert rules, postgresql
# serves the sql-source tests (hack/postgres.sh). The e2e tier's Prometheus server is built by
# hack/prometheus/build.sh instead (Debian's has no Kubernetes discovery). Idempotent: a no-op when all are present.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# PostgreSQL for the sql-source tests (hack/postgres.sh starts a throwaway server; the package's own is not started).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
[ ${#missing[@]} = 0 ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "test-deps: installing ${missing[*]} (Debian packages)" >&2
# The prometheus package would start a system Prometheus where init runs services; the tests need only binaries.
printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
$SUDO chmod +x /usr/sbin/policy-rc.d
trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
