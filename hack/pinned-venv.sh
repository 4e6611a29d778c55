#!/usr/bin/env bash
# pinned-venv.sh REQUIREMENTS VENV: create (or reuse) a venv of its own for tools whose dependencies clash with the
# project's (test clients, a tracking server). Reused while the requirements file is unchanged; prints the venv's
# python on stdout. Needs .venv's uv (`make venv`).
set -euo pipefail
cd "$(dirname "$0")/.."
REQS=$1
VENV=$2
STAMP=$VENV/.requirements
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && cmp -s "$REQS" "$STAMP"; then
  echo "$PWD/$VENV/bin/python"
  exit 0
fi
UV=.venv/bin/uv
[ -x "$UV" ] || { echo "$(basename "$VENV"): run 'make venv' first (it provides uv)" >&2; exit 1; }
rm -rf "$VENV"
UV_NATIVE_TLS=1 "$UV" venv -q -p python3.11 "$VENV" >&2
UV_NATIVE_TLS=1 "$UV" pip install -q -p "$VENV/bin/python" -r "$REQS" >&2
cp "$REQS" "$STAMP"
echo "$PWD/$VENV/bin/python"
