#!/usr/bin/env bash
# Create (or reuse) .venv-clients: tritonclient[http] and the KServe SDK, for the conformance tests that run them
# against a real `gyre serve`. Their dependencies clash with the project's, hence a venv of their own. Reused while
# the requirements file is unchanged; prints the venv's python on stdout.
exec "$(dirname "$0")/pinned-venv.sh" tests/unit/serving/conformance/requirements.txt .venv-clients
