"""The README's "Without a cluster" commands work as written (in a scratch directory, on a free port)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def quickstart() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Without a cluster", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README: no sh block under 'Without a cluster'"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_local_quick_start_runs_as_written(tmp_path: Path) -> None:
    port = free_port()
    script = quickstart().replace("8080", str(port))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    # set -e: every command must succeed; the server started with & is stopped afterwards with its group.
    proc = subprocess.Popen(
        ["bash", "-c", f"set -euo pipefail\n{script}\nkill %1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-3000:]
    assert '{"predictions":[0]}' in out  # the served model answered
    assert (tmp_path / "models/iris-rf/model.onnx").is_file()
    assert (tmp_path / "models/iris-lr/manifest.json").is_file()
    report = json.loads((tmp_path / "drift.json").read_text())
    assert report["driftedColumns"] == ["petal length (cm)"]
    assert (tmp_path / "drift.html").read_text().startswith("<!")
