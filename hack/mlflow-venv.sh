#!/usr/bin/env bash
# Create (or reuse) .venv-mlflow: the MLflow tracking server the tracking tests start (SQLite backend, proxied
# artifacts) and read back through MLflow's own client. MLflow's server brings its own pins (Flask, SQLAlchemy,
# alembic, pandas...), hence a venv of its own. Reused while the requirements file is unchanged; prints the venv's
# python on stdout.
exec "$(dirname "$0")/pinned-venv.sh" tests/unit/tracking/requirements-mlflow.txt .venv-mlflow
