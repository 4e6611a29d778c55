"""The shell of Gyre's self-contained HTML pages (drift reports, model cards).

One page, inline CSS only: no scripts, fonts, images or stylesheets from anywhere, so a page opens the same from a
bucket, a file or an email, and user text escaped into it stays text.
"""

from __future__ import annotations

from html import escape

__all__ = ["BASE_CSS", "fmt_number", "html_page"]

BASE_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:980px;
color:#1d1d1f;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0}
.summary{border:1px solid #ddd;border-radius:8px;padding:12px 16px;margin:12px 0 20px;background:#fafafa}
table{border-collapse:collapse;margin-top:8px}td,th{padding:2px 10px 2px 0;text-align:left;font-size:13px}
th{color:#555;font-weight:600}
.msg{color:#8a4b08;font-size:13px}
"""
"""Layout, headings, the summary box and tables, shared by every page."""


def fmt_number(x: float | None, digits: int = 4) -> str:
    """A number for people: `digits` decimals, scientific notation when that would print 0, `n/a` for None."""
    if x is None:
        return "n/a"
    if x != 0 and abs(x) < 10**-digits:
        return f"{x:.2e}"
    return f"{x:.{digits}f}"


def html_page(title: str, body: str, *, css: str = "") -> str:
    """A complete page: `title` (escaped here) and `body` (HTML the caller has already escaped), BASE_CSS + `css`."""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{BASE_CSS}{css}</style>'
        f"</head><body>{body}</body></html>\n"
    )
