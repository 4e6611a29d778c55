"""The HTML drift report rendered by a real browser: headless Chromium (tests/browser.py). One chart per feature,
every chart drawn, no console errors."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pandas as pd

from browser import DevTools, page_errors
from gyre.drift.check import check_frame
from gyre.drift.html import render_html
from gyre.drift.profile import build_profile

SCREENSHOT = os.environ.get("GYRE_REPORT_SCREENSHOT")
"""Set to a path to keep a screenshot of the rendered page (docs/drift-report.png was made this way)."""


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
    seen = browser.evaluate(probe)
    assert sorted(c["feature"] for c in seen["charts"]) == sorted(features)
    assert seen["sections"] == len(features) and seen["external"] == 0
    for chart in seen["charts"]:
        assert chart["bars"] > 0 and chart["width"] > 100, chart
    assert page_errors(browser.events) == []
    if SCREENSHOT:
        shot = browser.call("Page.captureScreenshot", format="png")
        Path(SCREENSHOT).write_bytes(base64.b64decode(shot["data"]))
