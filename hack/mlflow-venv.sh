#!/usr/bin/env bash
# Create (or reuse) .venv-mlflow: the MLflow tracking server the tracking tests start (SQLite backend, local
# artifacts) and assert through. MLflow's full server brings its own pins (Flask, SQLAlchemy, alembic, pandas...),
# hence a venv of its own. Reused while the requirements file is unchanged; prints the venv's python on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
REQS=tests/unit/tracking/requirements-mlflow.txt
VENV=.venv-mlflow
STAMP=$VENV/.requirements
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && cmp -s "$REQS" "$STAMP"; then
  echo "$PWD/$VENV/bin/python"
  exit 0
fi
UV=.venv/bin/uv
[ -x "$UV" ] || { echo "mlflow-venv: run 'make venv' first (it provides uv)" >&2; exit 1; }
rm -rf "$VENV"
UV_NATIVE_TLS=1 "$UV" venv -q -p python3.11 "$VENV" >&2
UV_NATIVE_TLS=1 "$UV" pip install -q -p "$VENV/bin/python" -r "$REQS" >&2
cp "$REQS" "$STAMP"
echo "$PWD/$VENV/bin/python"
