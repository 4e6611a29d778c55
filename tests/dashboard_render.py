"""Gyre's Grafana dashboard drawn without Grafana: each panel's queries run against a real Prometheus (query_range
over a window) and are laid out by the panels' gridPos as one self-contained HTML page (inline CSS and SVG, no
script), which headless Chromium (tests/browser.py) turns into a PNG.

A test tool, not a Grafana replacement: it draws what the panels select (time series as lines, stat panels as their
last value, tables as the last value of each series), so a screenshot shows the panels' real data. docs/dashboard.png
comes from the e2e ML loop through `screenshot` (tests/e2e/test_ml_loop.py).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from browser import launch, page_errors
from monitoring import dashboard

__all__ = ["Panel", "QueryRange", "Series", "fetch", "render", "screenshot"]

QueryRange = Callable[[str, float, float, float], list[dict[str, Any]]]
"""(expr, start, end, step) -> Prometheus' `data.result` of a range query (a list of {metric, values})."""

PAGE_WIDTH = 1600
_COLUMNS = 24  # Grafana's grid
_ROW_HEIGHT = 30  # pixels per gridPos height unit, as in Grafana
_GAP = 8
_PALETTE = ("#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0", "#508642",
            "#cca300", "#447ebc", "#c15c17")  # fmt: skip
_CSS = f"""
body{{margin:0;background:#111217;color:#ccccdc;font:13px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}}
header{{padding:12px 16px 6px}}h1{{font-size:18px;margin:0;color:#fff}}.meta{{color:#8e8e9e;font-size:12px}}
main{{position:relative;width:{PAGE_WIDTH}px}}
.panel{{position:absolute;box-sizing:border-box;background:#181b1f;border:1px solid #2c3235;border-radius:3px;
padding:6px 8px;overflow:hidden}}
.panel h2{{font-size:13px;font-weight:500;margin:0 0 4px;color:#d8d9da;white-space:nowrap;overflow:hidden}}
.row{{position:absolute;font-size:15px;font-weight:600;color:#fff;padding:6px 0}}
.legend{{font-size:11px;line-height:14px;overflow:hidden}}.legend span{{margin-right:10px;white-space:nowrap}}
.legend i{{display:inline-block;width:10px;height:3px;margin:0 4px 3px 0}}
.stat{{font-size:44px;font-weight:500;text-align:center;color:#73bf69}}
.nodata{{color:#8e8e9e;text-align:center;padding-top:40px}}
table{{border-collapse:collapse;width:100%;font-size:12px}}td,th{{border-bottom:1px solid #2c3235;padding:3px 4px;
text-align:left}}th{{color:#8e8e9e;font-weight:500}}
svg text{{fill:#8e8e9e;font-size:10px}}
footer{{position:absolute;left:16px;color:#8e8e9e;font-size:12px}}
"""


@dataclass(frozen=True)
class Series:
    """One series of a panel: its legend and its (unix time, value) points (NaN values dropped)."""

    legend: str
    points: tuple[tuple[float, float], ...]


@dataclass
class Panel:
    """A dashboard panel with the series its queries returned."""

    title: str
    kind: str
    grid: dict[str, int]
    unit: str = "short"
    series: list[Series] = field(default_factory=list)


def _legend(template: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template or "")
    return text.strip() or "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def fetch(
    query_range: QueryRange, start: float, end: float, *, variables: dict[str, str] | None = None
) -> list[Panel]:
    """Every panel of the shipped dashboard, with its targets' series between `start` and `end` ($variables set
    from `variables`, `.*` otherwise, as the dashboard's "All")."""
    values = variables or {}
    step = max(5.0, round((end - start) / 240))
    panels = []
    for spec in dashboard()["panels"]:
        unit = spec.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
        panel = Panel(spec["title"], spec["type"], spec["gridPos"], unit)
        for target in spec.get("targets", []):
            expr = re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), ".*"), target["expr"])
            for result in query_range(expr, start, end, step):
                points = tuple((float(t), float(v)) for t, v in result["values"] if math.isfinite(float(v)))
                if points:
                    panel.series.append(
                        Series(_legend(target.get("legendFormat", ""), result["metric"]), points)
                    )
        panels.append(panel)
    return panels


def _si(value: float) -> str:
    for bound, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= bound:
            return f"{value / bound:.3g}{suffix}"
    if value == 0 or abs(value) >= 0.01:
        return f"{value:.3g}"
    return f"{value:.2e}"


def fmt(value: float, unit: str) -> str:
    """A value the way the panel's unit reads: seconds, per second, percent, or a plain number."""
    if unit == "s":
        return f"{value * 1000:.3g} ms" if 0 < abs(value) < 1 else f"{value:.3g} s"
    if unit in ("ops", "reqps", "rps"):
        return f"{_si(value)}/s"
    if unit == "percentunit":
        return f"{value * 100:.3g}%"
    return _si(value)


def _timeseries(panel: Panel, width: int, height: int, start: float, end: float) -> str:
    plot_left, plot_top, plot_w = 52, 4, width - 60
    legend_lines = min(3, math.ceil(len(panel.series) / 3))
    plot_h = height - plot_top - 18 - legend_lines * 14
    values = [v for s in panel.series for _, v in s.points]
    low, high = min(0.0, min(values)), max(values)
    if high == low:
        high = low + 1
    span = end - start

    def xy(t: float, v: float) -> str:
        x = plot_left + (t - start) / span * plot_w
        y = plot_top + (1 - (v - low) / (high - low)) * plot_h
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg class="plot" width="{width}" height="{plot_top + plot_h + 16}">']
    for frac in (0.0, 0.5, 1.0):
        y = plot_top + (1 - frac) * plot_h
        parts.append(
            f'<line x1="{plot_left}" x2="{plot_left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#2c3235"/>'
        )
        label = escape(fmt(low + frac * (high - low), panel.unit))
        parts.append(f'<text x="{plot_left - 4}" y="{y + 3:.1f}" text-anchor="end">{label}</text>')
    for t, anchor in ((start, "start"), (end, "end")):
        label = datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")
        x = plot_left if anchor == "start" else plot_left + plot_w
        parts.append(f'<text x="{x}" y="{plot_top + plot_h + 12:.1f}" text-anchor="{anchor}">{label}</text>')
    for i, series in enumerate(panel.series):
        colour = _PALETTE[i % len(_PALETTE)]
        points = " ".join(xy(t, v) for t, v in series.points)
        if len(series.points) == 1:
            cx, cy = xy(*series.points[0]).split(",")
            parts.append(f'<circle class="series" cx="{cx}" cy="{cy}" r="2" fill="{colour}"/>')
        else:
            parts.append(
                f'<polyline class="series" points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
            )
    parts.append("</svg>")
    shown = panel.series[: legend_lines * 3]
    legend = "".join(
        f'<span><i style="background:{_PALETTE[i % len(_PALETTE)]}"></i>{escape(s.legend)}</span>'
        for i, s in enumerate(shown)
    )
    if len(panel.series) > len(shown):
        legend += f"<span>+{len(panel.series) - len(shown)} more</span>"
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def _body(panel: Panel, width: int, height: int, start: float, end: float) -> str:
    if not panel.series:
        return '<div class="nodata">No data</div>'
    if panel.kind == "stat":
        total = sum(s.points[-1][1] for s in panel.series)
        return f'<div class="stat">{escape(fmt(total, panel.unit))}</div>'
    if panel.kind == "table":
        rows = "".join(
            f"<tr><td>{escape(s.legend)}</td><td>{escape(fmt(s.points[-1][1], panel.unit))}</td></tr>"
            for s in panel.series
        )
        return f"<table><tr><th>series</th><th>last</th></tr>{rows}</table>"
    return _timeseries(panel, width, height, start, end)


def render(panels: list[Panel], start: float, end: float, *, variables: dict[str, str] | None = None) -> str:
    """The page: every panel at its gridPos, rows as headings, and what it is (not Grafana) at the top and bottom."""
    column = PAGE_WIDTH / _COLUMNS
    items, bottom = [], 0
    for panel in panels:
        g = panel.grid
        left, top = g["x"] * column + _GAP / 2, g["y"] * _ROW_HEIGHT
        width, height = int(g["w"] * column - _GAP), g["h"] * _ROW_HEIGHT - _GAP
        bottom = max(bottom, top + height + _GAP)
        if panel.kind == "row":
            items.append(
                f'<div class="row" style="left:{left + 4:.0f}px;top:{top}px">{escape(panel.title)}</div>'
            )
            continue
        body = _body(panel, width - 16, height - 30, start, end)
        items.append(
            f'<section class="panel" data-kind="{escape(panel.kind)}" data-series="{len(panel.series)}" '
            f'style="left:{left:.0f}px;top:{top}px;width:{width}px;height:{height}px">'
            f"<h2>{escape(panel.title)}</h2>{body}</section>"
        )
    window = " to ".join(
        datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") for t in (start, end)
    )
    chosen = ", ".join(f"{k}={v}" for k, v in sorted((variables or {}).items())) or "all"
    title = dashboard()["title"]
    note = "Gyre's dashboard panels rendered from Prometheus by tests/dashboard_render.py; not Grafana."
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{_CSS}</style></head>'
        f'<body><header><h1>{escape(title)}</h1><div class="meta">{escape(window)}; {escape(chosen)}. '
        f'{escape(note)}</div></header><main style="height:{bottom + 30}px">{"".join(items)}'
        f'<footer style="top:{bottom + 6}px">{escape(note)}</footer></main></body></html>\n'
    )


_PROBE = """JSON.stringify({
    panels: [...document.querySelectorAll('section.panel')].map(p => ({
        title: p.querySelector('h2').textContent, kind: p.dataset.kind,
        drawn: p.querySelectorAll('.series').length + p.querySelectorAll('.stat, td').length,
        nodata: p.querySelectorAll('.nodata').length})),
    height: document.documentElement.scrollHeight,
    external: document.querySelectorAll('script,link,img,iframe').length})"""


def screenshot(page: Path, png: Path) -> dict[str, Any]:
    """Open `page` in headless Chromium, write the whole page as a PNG, and return what each panel drew (series
    lines, stat values or table cells; `nodata` when it had none), the page's external resources and its errors."""
    with launch() as browser:
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable")
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            width=PAGE_WIDTH,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.call("Page.navigate", url=page.as_uri())
        browser.wait_for("Page.loadEventFired")
        seen: dict[str, Any] = browser.evaluate(_PROBE)
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            width=PAGE_WIDTH,
            height=seen["height"],
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        png.write_bytes(base64.b64decode(shot["data"]))
        seen["errors"] = page_errors(browser.events)
    return seen
