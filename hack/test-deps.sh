#!/usr/bin/env bash
# System packages the tests need beyond the venv: headless Chromium renders the HTML drift report
# (tests/unit/drift/test_drift_html_browser.py). Idempotent; installs with apt-get when missing and able to.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: installing chromium (Debian package) for the drift report test" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "test-deps: chromium is missing; install it (Debian: apt-get install -y chromium)," \
       "or the drift report test will fail" >&2
fi
