"""What Gyre ships for Prometheus and Grafana, read the way the tests need it: the alert rules, the dashboard's
queries, and the metric names a PromQL expression selects (shared by the unit and e2e tiers)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "charts/gyre/files/alerts.yaml"
DASHBOARD = ROOT / "charts/gyre/files/dashboard.json"

# Series Prometheus itself attaches to every target; a query may use them without Gyre exporting them.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

_FUNCTIONS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "histogram_quantile",
        "abs",
        "absent",
        "absent_over_time",
        "ceil",
        "floor",
        "round",
        "clamp",
        "clamp_min",
        "clamp_max",
        "label_replace",
        "label_join",
        "vector",
        "scalar",
        "time",
        "timestamp",
        "sort",
        "sort_desc",
        "max_over_time",
        "min_over_time",
        "avg_over_time",
        "sum_over_time",
        "count_over_time",
        "last_over_time",
        "changes",
        "resets",
        "deriv",
        "predict_linear",
        "exp",
        "ln",
        "log2",
        "log10",
        "sqrt",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
    ]
)


@dataclass(frozen=True)
class Query:
    """One PromQL expression Gyre ships, and where (an alert name, or a dashboard panel title)."""

    where: str
    expr: str


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule in charts/gyre/files/alerts.yaml."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def alert_queries() -> list[Query]:
    """Each alert's expression."""
    return [Query(rule["alert"], str(rule["expr"])) for rule in alert_rules()]


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard JSON."""
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panel_queries(variables: dict[str, str] | None = None) -> list[Query]:
    """Every panel target's expression, with $variables replaced (by `.*` unless given)."""
    values = variables or {}
    out = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), ".*"), target["expr"])
            out.append(Query(f"{panel['title']} [{target['refId']}]", expr))
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions, keywords, label names inside
    {...} or by/without/on/ignoring lists, durations, or strings."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings (label values, label_replace arguments)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\boffset\s+\w+", "", text)
    names = set(re.findall(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*(?![\w(])", text))
    return {n for n in names if n not in _FUNCTIONS and not re.fullmatch(r"\d+\w*", n)}


def selectors(expr: str) -> list[str]:
    """Each vector selector of an expression (`name{matchers}`), as an instant query."""
    out: list[str] = []
    for name in sorted(metric_names(expr)):
        found = re.findall(rf"(?<![\w]){re.escape(name)}(\{{[^}}]*\}})?", expr)
        out.extend(name + matchers for matchers in dict.fromkeys(found))
    return out
