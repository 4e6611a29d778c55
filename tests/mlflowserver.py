"""A real MLflow tracking server for the tests: `mlflow server` from .venv-mlflow (hack/mlflow-venv.sh), with a
SQLite backend and proxied artifacts in a directory of the test's, on a free port; and a reader that asks it back
through MLflow's own client (tests/mlflow_query.py, run in that venv).

The unit tier listens on loopback; the e2e tier listens on every host address so that pods reach it through the
test cluster's link (10.213.0.1), and names that address among MLflow's allowed Host headers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUERY = Path(__file__).with_name("mlflow_query.py")
# A first start migrates the SQLite schema; on a busy 2-core machine that has taken minutes.
STARTUP_LIMIT = 900.0


@dataclass(frozen=True)
class MlflowServer:
    uri: str
    """The server as this process reaches it (loopback)."""
    port: int
    python: str
    """.venv-mlflow's python, which has MLflow's client."""

    def read(self, experiment: str) -> dict[str, Any]:
        """The experiment's runs as MLflow's own client reports them (tests/mlflow_query.py)."""
        done = subprocess.run(
            [self.python, str(QUERY)],
            input=json.dumps({"uri": self.uri, "experiment": experiment}),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        result: dict[str, Any] = json.loads(done.stdout)
        return result


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        port: int = sock.getsockname()[1]
        return port


def mlflow_python() -> str:
    """.venv-mlflow's python, the venv made (or reused) first."""
    made = subprocess.run(
        [str(ROOT / "hack" / "mlflow-venv.sh")], capture_output=True, text=True, check=False, timeout=900
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@contextmanager
def mlflow_server(
    home: Path, *, listen: str = "127.0.0.1", hosts: Sequence[str] = ()
) -> Iterator[MlflowServer]:
    """Run `mlflow server` in `home` until the block ends; `hosts`: more addresses clients will name."""
    python = mlflow_python()
    port = free_port()
    allowed = ",".join(f"{h}:{port}" for h in ("127.0.0.1", "localhost", *hosts))
    log_path = home / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                str(Path(python).with_name("mlflow")),
                "server",
                "--backend-store-uri",
                f"sqlite:///{home}/mlflow.db",
                "--artifacts-destination",
                str(home / "artifacts"),
                "--host",
                listen,
                "--port",
                str(port),
                "--workers",
                "1",
                "--allowed-hosts",
                allowed,
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
                assert server.poll() is None, log_path.read_text()[-3000:]
                try:
                    with urllib.request.urlopen(f"{uri}/health", timeout=5) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                assert time.monotonic() < deadline, (
                    "mlflow server did not start: " + log_path.read_text()[-3000:]
                )
                time.sleep(1)
            yield MlflowServer(uri=uri, port=port, python=python)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
