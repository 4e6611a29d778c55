"""The alert rules: promtool accepts them and passes their unit tests, and each has its texts and its runbook."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gyre.controllers.metrics import METRIC_NAMES as OPERATOR_METRICS
from gyre.serving.metrics import METRIC_NAMES as SERVER_METRICS
from monitoring import ALERTS, PROMETHEUS_SERIES, ROOT, alert_queries, alert_rules, metric_names

HERE = Path(__file__).resolve().parent
RULE_TESTS = HERE / "alerts_test.yaml"
RUNBOOKS = ROOT / "docs/observability.md"
REQUIRED = {
    "GyreTrainingRunFailed",
    "GyreRetrainGateFailed",
    "GyreDriftNotResolved",
    "GyreModelDeploymentNotReady",
    "GyreModelServerErrors",
    "GyreOperatorReconcileErrors",
    "GyreRetrainCapReached",
}


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: run hack/test-deps.sh (installs Debian's prometheus package)"
    return found


def test_promtool_accepts_the_rule_file() -> None:
    done = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_passes_its_promtool_unit_tests() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name], cwd=HERE, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_the_issue_asks_for_exist_and_each_is_unit_tested() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert names >= REQUIRED
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert names <= tested, f"alerts without a firing test case: {sorted(names - tested)}"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_has_a_summary_a_description_and_a_runbook_section(rule: dict[str, str]) -> None:
    annotations = rule["annotations"]
    assert annotations["summary"] and annotations["description"]
    anchor = rule["alert"].lower()
    assert annotations["runbook_url"].endswith(f"#{anchor}")
    headings = re.findall(r"^#+\s+(\S+)", RUNBOOKS.read_text(), flags=re.MULTILINE)
    assert rule["alert"] in headings, f"docs/observability.md has no runbook section for {rule['alert']}"


@pytest.mark.parametrize("query", alert_queries(), ids=lambda q: q.where)
def test_every_alert_selects_only_metrics_gyre_exports(query: object) -> None:
    names = metric_names(query.expr)  # type: ignore[attr-defined]
    assert names, "an alert that selects no metric cannot fire"
    unknown = names - OPERATOR_METRICS - SERVER_METRICS - PROMETHEUS_SERIES
    assert not unknown
