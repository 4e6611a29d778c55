"""The Grafana dashboard: its rows and variables, and no panel that queries a metric Gyre does not export."""

from __future__ import annotations

import pytest

from gyre.controllers.metrics import METRIC_NAMES as OPERATOR_METRICS
from gyre.serving.metrics import METRIC_NAMES as SERVER_METRICS
from monitoring import PROMETHEUS_SERIES, Query, dashboard, metric_names, panel_queries, selectors


def test_the_dashboard_has_the_four_rows_and_the_namespace_and_deployment_variables() -> None:
    board = dashboard()
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Operator", "Training", "Serving", "Drift"]
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"namespace", "deployment"} <= variables


def test_every_panel_has_a_query() -> None:
    empty = [p["title"] for p in dashboard()["panels"] if p["type"] != "row" and not p.get("targets")]
    assert not empty


@pytest.mark.parametrize("query", panel_queries(), ids=lambda q: q.where)
def test_every_panel_queries_only_metrics_gyre_exports(query: Query) -> None:
    names = metric_names(query.expr)
    assert names
    unknown = names - OPERATOR_METRICS - SERVER_METRICS - PROMETHEUS_SERIES
    assert not unknown


def test_the_serving_row_covers_rate_latency_errors_and_batch_sizes() -> None:
    used = set().union(*(metric_names(q.expr) for q in panel_queries()))
    assert {
        "gyre_requests_total",
        "gyre_request_duration_seconds_bucket",
        "gyre_inference_batch_rows_bucket",
        "gyre_drift_feature_score",
        "gyre_operator_reconciles_total",
        "gyre_training_runs_total",
    } <= used


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        pytest.param(
            'sum by (kind, le) (rate(gyre_x_bucket{a="b", c=~"d"}[5m]))',
            {"gyre_x_bucket"},
            id="by list and matchers",
        ),
        pytest.param(
            "a / on (x) group_left (y) b offset 5m > 0.5", {"a", "b"}, id="vector matching and offset"
        ),
        pytest.param('label_replace(up, "dst", "$1", "src", "(.*)")', {"up"}, id="strings are not names"),
        pytest.param(
            "histogram_quantile(0.95, sum by (le) (rate(h_bucket[1h])))", {"h_bucket"}, id="numbers"
        ),
    ],
)
def test_metric_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_selectors_keep_each_selectors_matchers() -> None:
    expr = 'sum(rate(r_total{code=~"5.."}[5m])) / sum(rate(r_total[5m]))'
    assert selectors(expr) == ['r_total{code=~"5.."}', "r_total"]
