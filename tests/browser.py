"""Headless Chromium (Debian's `chromium`) driven over the Chrome DevTools protocol with websocket-client: the
test tier's browser for Gyre's HTML pages (drift reports, model cards).

Chromium is a test requirement (hack/test-deps.sh installs it; `make test-unit` and hack/test-all.sh run that):
without it a test that asks for it fails and says so, it never skips.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["DevTools", "chromium", "launch", "page_errors"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        "headless Chromium is required to render Gyre's HTML pages and was not found on PATH; "
        "install it with hack/test-deps.sh (Debian: apt-get install -y chromium)"
    )


class DevTools:
    """A minimal Chrome DevTools protocol session on one page."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg.get("result", {})  # type: ignore[no-any-return]
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            assert time.monotonic() < deadline, f"no {method} within {timeout}s"
            self.events.append(json.loads(self.ws.recv()))

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression that returns JSON.stringify(...)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return json.loads(result["result"]["value"])


@contextlib.contextmanager
def launch() -> Iterator[DevTools]:
    """A headless Chromium on about:blank, stopped (and its profile removed) on exit."""
    exe = chromium()
    profile_dir = tempfile.mkdtemp(prefix="gyre-chromium-")
    proc = subprocess.Popen(
        [
            exe,
            "--headless",
            "--no-sandbox",  # tests run as root in CI
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
            "--remote-allow-origins=*",
            f"--user-data-dir={profile_dir}",
            "--window-size=1000,1400",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = Path(profile_dir) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, f"{exe} exited with {proc.returncode}"
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port within 60 s"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:
            pages = [t for t in json.load(resp) if t["type"] == "page"]
        session = DevTools(pages[0]["webSocketDebuggerUrl"])
        yield session
        session.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile_dir, ignore_errors=True)


def page_errors(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Uncaught exceptions, console errors and failed assertions, and error log entries among `events`."""
    return [
        e
        for e in events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
