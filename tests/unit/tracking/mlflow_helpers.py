"""Helpers of the tracking tests: the MLflow server's handle, a reader through MLflow's own client, a free port."""

from __future__ import annotations

import json
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
QUERY = Path(__file__).with_name("mlflow_query.py")
# A first start migrates the SQLite schema; on a busy 2-core machine that has taken minutes.
STARTUP_LIMIT = 900.0


@dataclass(frozen=True)
class MlflowServer:
    uri: str
    python: str

    def read(self, experiment: str) -> dict[str, Any]:
        """The experiment's runs as MLflow's own client reports them."""
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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
