#!/usr/bin/env bash
# Create (or reuse) .venv-clients: tritonclient[http] and the KServe SDK, for the conformance tests that run them
# against a real `gyre serve`. Their dependencies clash with the project's, hence a venv of their own. Reused while
# the requirements file is unchanged; prints the venv's python on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
REQS=tests/unit/serving/conformance/requirements.txt
VENV=.venv-clients
STAMP=$VENV/.requirements
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && cmp -s "$REQS" "$STAMP"; then
  echo "$PWD/$VENV/bin/python"
  exit 0
fi
UV=.venv/bin/uv
[ -x "$UV" ] || { echo "clients-venv: run 'make venv' first (it provides uv)" >&2; exit 1; }
rm -rf "$VENV"
UV_NATIVE_TLS=1 "$UV" venv -q -p python3.11 "$VENV" >&2
UV_NATIVE_TLS=1 "$UV" pip install -q -p "$VENV/bin/python" -r "$REQS" >&2
cp "$REQS" "$STAMP"
echo "$PWD/$VENV/bin/python"
