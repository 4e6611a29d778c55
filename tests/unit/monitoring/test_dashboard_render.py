"""The test-side dashboard renderer (tests/dashboard_render.py) in headless Chromium, on answers shaped like
Prometheus' range queries: every panel of the shipped dashboard is placed and draws its series, a panel without
series says so, and the page is self-contained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dashboard_render
from monitoring import dashboard

START, END = 1_764_676_800.0, 1_764_677_400.0


def answers(expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    """Two series per query (one with a gap of NaN, as histogram_quantile gives over an idle window)."""
    assert (start, end) == (START, END) and step >= 5
    times = [start + i * step for i in range(int((end - start) // step) + 1)]
    return [
        {"metric": {"kind": "Dataset", "outcome": "success", "monitor": "iris"}, "values": [
            [t, str(i % 7)] for i, t in enumerate(times)
        ]},
        {"metric": {"kind": "TrainingRun", "outcome": "retry", "monitor": "iris"}, "values": [
            [t, "NaN" if i < 3 else str(0.5 * i)] for i, t in enumerate(times)
        ]},
    ]  # fmt: skip


def test_every_panel_is_placed_by_its_grid_position_and_draws_its_series(tmp_path: Path) -> None:
    panels = dashboard_render.fetch(answers, START, END, variables={"namespace": "ml"})
    page = tmp_path / "dashboard.html"
    page.write_text(dashboard_render.render(panels, START, END, variables={"namespace": "ml"}))
    seen = dashboard_render.screenshot(page, tmp_path / "dashboard.png")
    expected = [p["title"] for p in dashboard()["panels"] if p["type"] != "row"]
    assert [p["title"] for p in seen["panels"]] == expected
    for panel in seen["panels"]:
        assert panel["drawn"] > 0 and panel["nodata"] == 0, panel
    assert seen["external"] == 0 and seen["errors"] == []
    assert (tmp_path / "dashboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "not Grafana" in page.read_text()


def test_a_panel_whose_queries_return_nothing_says_no_data(tmp_path: Path) -> None:
    panels = dashboard_render.fetch(lambda *_: [], START, END)
    page = tmp_path / "empty.html"
    page.write_text(dashboard_render.render(panels, START, END))
    seen = dashboard_render.screenshot(page, tmp_path / "empty.png")
    assert all(p["nodata"] == 1 and p["drawn"] == 0 for p in seen["panels"]), seen["panels"]


def test_values_read_in_the_panels_unit() -> None:
    assert dashboard_render.fmt(0.0123, "s") == "12.3 ms"
    assert dashboard_render.fmt(2.5, "s") == "2.5 s"
    assert dashboard_render.fmt(1500, "reqps") == "1.5k/s"
    assert dashboard_render.fmt(0.25, "percentunit") == "25%"
    assert dashboard_render.fmt(3, "short") == "3"
