#!/usr/bin/env bash
# Create .venv with the project (editable) and its dev tools, pinned by constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"' || {
  echo "venv: Python 3.11 or newer is required on PATH as python3" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade uv
# Bytecode compiled at install, as pip does in the image: PYTHONDONTWRITEBYTECODE would otherwise make every
# process recompile what it imports (seconds per drift check).
UV_NATIVE_TLS=1 .venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python -c constraints.txt -e '.[dev]'
