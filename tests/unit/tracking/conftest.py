"""A real MLflow tracking server for the tracking tests: `mlflow server` from .venv-mlflow (hack/mlflow-venv.sh),
SQLite backend and proxied artifacts in a temporary directory, on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow_helpers import ROOT, STARTUP_LIMIT, MlflowServer, free_port


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    made = subprocess.run(
        [str(ROOT / "hack" / "mlflow-venv.sh")], capture_output=True, text=True, check=False, timeout=900
    )
    assert made.returncode == 0, made.stderr
    python = made.stdout.strip()
    home = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = (home / "server.log").open("wb")
    server = subprocess.Popen(
        [
            str(Path(python).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            f"sqlite:///{home}/mlflow.db",
            "--artifacts-destination",
            str(home / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the server's workers stop with it
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_LIMIT
        while True:
            assert server.poll() is None, (home / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (
                "mlflow server did not start: " + ((home / "server.log").read_text()[-3000:])
            )
            time.sleep(1)
        yield MlflowServer(uri=uri, python=python)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
