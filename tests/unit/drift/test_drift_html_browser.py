"""The HTML drift report rendered by a real browser: headless Chromium (Debian's `chromium`), driven over the
Chrome DevTools protocol with websocket-client. One chart per feature, every chart drawn, no console errors.

Chromium is a test requirement (hack/test-deps.sh installs it; `make test-unit` and hack/test-all.sh run that):
without it this test fails and says so, it never skips.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gyre.drift.check import check_frame
from gyre.drift.html import render_html
from gyre.drift.profile import build_profile

SCREENSHOT = os.environ.get("GYRE_REPORT_SCREENSHOT")
"""Set to a path to keep a screenshot of the rendered page (docs/drift-report.png was made this way)."""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        "headless Chromium is required to render the drift report and was not found on PATH; "
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


@pytest.fixture
def browser() -> Iterator[DevTools]:
    exe = _chromium()
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


def _report_page(tmp_path: Path) -> tuple[Path, list[str]]:
    rng = np.random.default_rng(11)
    n, m = 20_000, 3000

    def table(k: int, drift: bool) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "age": rng.normal(45 if drift else 40, 10, k),
                "income": rng.lognormal(10, 0.5, k),
                "visits": rng.poisson(3, k),
                "plan": rng.choice(["free", "pro", "team", "enterprise"], k, p=[0.5, 0.3, 0.15, 0.05]),
                "country": rng.choice([f"country-{i}" for i in range(60)], k),
                "churned": rng.random(k) < (0.3 if drift else 0.2),
            }
        )

    report = check_frame(build_profile(table(n, False)), table(m, True))
    page = tmp_path / "report.html"
    page.write_text(render_html(report, title="Drift: example"))
    return page, [c.column for c in report.columns]


def test_the_report_renders_in_chromium_with_one_drawn_chart_per_feature_and_no_console_errors(
    browser: DevTools, tmp_path: Path
) -> None:
    page, features = _report_page(tmp_path)
    for domain in ("Page", "Runtime", "Log"):
        browser.call(f"{domain}.enable")
    browser.call("Page.navigate", url=page.as_uri())
    browser.wait_for("Page.loadEventFired")
    probe = """JSON.stringify({
        charts: [...document.querySelectorAll('svg.chart')].map(s => ({
            feature: s.dataset.feature,
            bars: [...s.querySelectorAll('rect')].filter(r => r.getBBox().height > 0).length,
            width: s.getBoundingClientRect().width})),
        sections: document.querySelectorAll('section.feature').length,
        external: [...document.querySelectorAll('script,link,img,iframe')].length})"""
    result = browser.call("Runtime.evaluate", expression=probe, returnByValue=True)
    seen = json.loads(result["result"]["value"])
    assert sorted(c["feature"] for c in seen["charts"]) == sorted(features)
    assert seen["sections"] == len(features) and seen["external"] == 0
    for chart in seen["charts"]:
        assert chart["bars"] > 0 and chart["width"] > 100, chart
    errors = [
        e
        for e in browser.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert errors == []
    if SCREENSHOT:
        shot = browser.call("Page.captureScreenshot", format="png")
        Path(SCREENSHOT).write_bytes(base64.b64decode(shot["data"]))
