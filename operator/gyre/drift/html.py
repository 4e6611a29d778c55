"""A drift report people can look at: one self-contained HTML page per check.

Inline CSS and inline SVG only (no scripts, fonts or images from anywhere), so the page opens the same from a
bucket, a file or an email. Summary first, then one section per feature, sorted by effect size (largest first),
each with its reference and current distributions overlaid (histogram or category bars), the test, the p-value,
the effect size and the verdict.
"""

from __future__ import annotations

from html import escape

from gyre.drift.check import Chart, ColumnDrift, DriftReport
from gyre.html_page import fmt_number as _fmt
from gyre.html_page import html_page

__all__ = ["render_html"]

_W, _H, _PAD_L, _PAD_B, _PAD_T = 640, 220, 48, 56, 10
_REF, _CUR = "#4C78A8", "#F58518"

_CSS = """
.verdict{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.drift{background:#c0392b}.no_drift{background:#27ae60}.insufficient_data{background:#7f8c8d}
section.feature{border-top:1px solid #e5e5e5;padding:14px 0}
.facts{color:#444;font-size:13px;margin:4px 0 6px}.facts b{color:#1d1d1f}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:-1px}
svg text{font:11px system-ui,sans-serif;fill:#555}
"""


def _svg(name: str, chart: Chart) -> str:
    """Reference and current shares as overlaid bars (one group per bin or category)."""
    n = len(chart.labels)
    top = max([*chart.reference, *chart.current, 1e-12])
    inner_w, inner_h = _W - _PAD_L - 8, _H - _PAD_B - _PAD_T
    step = inner_w / max(n, 1)
    parts = [
        f'<svg class="chart" data-feature="{escape(name)}" role="img" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(name)}: reference (blue) and current (orange) distributions</title>",
    ]
    for frac in (0.0, 0.5, 1.0):
        y = _PAD_T + inner_h * (1 - frac)
        parts.append(f'<line x1="{_PAD_L}" x2="{_W - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{_PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end">{top * frac:.0%}</text>')
    histogram = chart.kind == "histogram"
    for i, (label, r, c) in enumerate(zip(chart.labels, chart.reference, chart.current, strict=True)):
        x = _PAD_L + i * step
        tip = escape(f"{label}: reference {r:.2%}, current {c:.2%}")
        if histogram:
            width = step
            bars = ((x, r, _REF, 0.55), (x, c, _CUR, 0.55))
        else:
            width = step * 0.4
            bars = ((x + step * 0.1, r, _REF, 0.9), (x + step * 0.5, c, _CUR, 0.9))
        for bx, share, colour, opacity in bars:
            h = inner_h * share / top
            parts.append(
                f'<rect x="{bx:.1f}" y="{_PAD_T + inner_h - h:.1f}" width="{max(width - 0.5, 0.5):.1f}" '
                f'height="{h:.1f}" fill="{colour}" fill-opacity="{opacity}"><title>{tip}</title></rect>'
            )
        if not histogram or i % max(n // 6, 1) == 0:
            short = label if len(label) <= 14 else label[:13] + "…"
            text = short if not histogram else f"{chart.edges[i]:.3g}" if chart.edges else short
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{_H - _PAD_B + 14}" text-anchor="end" '
                f'transform="rotate(-35 {x + step / 2:.1f} {_H - _PAD_B + 14})">{escape(text)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _verdict_cell(col: ColumnDrift) -> str:
    if col.drifted:
        return "drift" if col.value_drifted else "drift (missing rate)"
    return "no drift" if col.status == "ok" else col.status.replace("_", " ")


def _feature(col: ColumnDrift) -> str:
    verdict = (
        "drift" if col.drifted else ("insufficient_data" if col.status == "insufficient_data" else "no_drift")
    )
    label = {"drift": "drift", "no_drift": "no drift", "insufficient_data": "not evaluated"}[verdict]
    facts = [f"test <b>{escape(col.method or 'none')}</b>"]
    if col.pvalue is not None:
        facts.append(f"p-value <b>{_fmt(col.pvalue)}</b>")
    if col.pvalue_adjusted is not None:
        facts.append(f"adjusted p (BH) <b>{_fmt(col.pvalue_adjusted)}</b>")
    if col.pvalue is None and col.score is not None:
        facts.append(f"score <b>{_fmt(col.score)}</b> (threshold {_fmt(col.threshold)})")
    if col.effect is not None:
        unit = "sd (Wasserstein)" if col.effect_measure == "wasserstein_sd" else "(total variation)"
        floor = f", minimum {_fmt(col.effect_threshold, 3)}" if col.effect_threshold is not None else ""
        facts.append(f"effect <b>{_fmt(col.effect)}</b> {unit}{floor}")
    missing_cur = _fmt(col.missing_rate_current, 3) if col.missing_rate_current is not None else "n/a"
    rise = (
        f" (a rise of {_fmt(col.missing_min_increase, 3)} counts)"
        if col.missing_min_increase is not None
        else ""
    )
    facts.append(f"missing {_fmt(col.missing_rate_reference, 3)} → {missing_cur}{rise}")
    facts.append(f"{col.current_count:,} current values")
    chart = (
        _svg(col.column, col.chart) if col.chart is not None else '<p class="msg">no distribution to draw</p>'
    )
    message = f'<p class="msg">{escape(col.message)}</p>' if col.message else ""
    return (
        f'<section class="feature" id="f-{escape(col.column)}"><h2>{escape(col.column)} '
        f'<span class="verdict {verdict}">{label}</span> <small>{escape(col.kind.value)}</small></h2>'
        f'<p class="facts">{" · ".join(facts)}</p>{message}{chart}</section>'
    )


def render_html(report: DriftReport, *, title: str = "Drift report") -> str:
    """The report as one self-contained HTML page."""
    ordered = sorted(
        report.columns, key=lambda c: (c.status == "insufficient_data", -(c.effect or 0.0), c.column)
    )
    rule = (
        f"preset gyre: a column drifts when its Benjamini-Hochberg adjusted p-value is below {report.alpha} "
        "and its effect reaches the minimum"
        if report.preset == "gyre"
        else "preset evidently: Evidently's default tests and thresholds"
    )
    rows = "".join(
        f'<tr><td><a href="#f-{escape(c.column)}">{escape(c.column)}</a></td><td>{escape(c.method or "")}</td>'
        f"<td>{_fmt(c.effect)}</td><td>{_fmt(c.pvalue_adjusted if c.pvalue_adjusted is not None else c.score)}"
        f"</td><td>{_verdict_cell(c)}</td></tr>"
        for c in ordered
    )
    window = ""
    if report.window:
        window = (
            f"<br>window: {escape(', '.join(f'{k} {v}' for k, v in report.window.items() if k != 'files'))}"
        )
    body = (
        f"<h1>{escape(title)}</h1>"
        f'<div class="summary"><span class="verdict {report.verdict}">{report.verdict.replace("_", " ")}</span> '
        f"{report.number_of_drifted_columns} of {report.number_of_columns} features drifted "
        f"(share {report.drift_share:.2f}; the dataset drifts at {report.drift_share_threshold})<br>"
        f"{report.reference_rows:,} reference rows, {report.current_rows:,} current rows, checked "
        f"{report.checked_at:%Y-%m-%d %H:%M:%S} UTC{window}<br><small>{escape(rule)}</small>"
        f'<div class="legend"><span style="background:{_REF}"></span>reference'
        f'<span style="background:{_CUR}"></span>current</div>'
        "<table><tr><th>feature</th><th>test</th><th>effect</th><th>p (adjusted) / score</th><th>verdict</th></tr>"
        f"{rows}</table></div>" + "".join(_feature(c) for c in ordered)
    )
    return html_page(title, body, css=_CSS)
