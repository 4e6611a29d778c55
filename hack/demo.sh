#!/usr/bin/env bash
# `make demo` (after cluster-up, image and deploy): run the narrated ML loop in namespace gyre-demo.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(hack/cluster/env.sh)"
exec .venv/bin/python hack/demo.py
