"""Where the alerts' runbook links point is one setting, in Helm and in kustomize (docs/observability.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from helmchart import by_kind, kustomize_doc_example, render, template

ROOT = Path(__file__).resolve().parents[3]
WIKI = "https://wiki.example.com/ml-platform/gyre-runbooks"


def rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (rule,) = by_kind(docs, "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]


def test_every_alert_links_its_runbook_section_under_the_chart_value() -> None:
    found = rules(render("monitoring.prometheusRule.enabled=true", f"monitoring.runbookBaseUrl={WIKI}"))
    assert found
    for rule in found:
        assert rule["annotations"]["runbook_url"] == f"{WIKI}#{rule['alert'].lower()}"


def test_the_default_links_are_those_of_the_rule_file_loaded_without_the_chart() -> None:
    shipped = yaml.safe_load((ROOT / "charts/gyre/files/alerts.yaml").read_text())["groups"][0]["rules"]
    rendered = rules(render("monitoring.prometheusRule.enabled=true"))
    assert [r["annotations"]["runbook_url"] for r in rendered] == [
        r["annotations"]["runbook_url"] for r in shipped
    ]


def test_the_schema_refuses_a_base_url_with_a_fragment() -> None:
    proc = template("monitoring.prometheusRule.enabled=true", f"monitoring.runbookBaseUrl={WIKI}#top")
    assert proc.returncode != 0 and "runbookBaseUrl" in proc.stderr


def test_the_kustomize_overlay_in_the_docs_sets_every_runbook_link(tmp_path: Path) -> None:
    docs = kustomize_doc_example(
        "docs/observability.md", "runbook-kustomization", tmp_path, ("manifests/components/monitoring",)
    )
    found = rules(docs)
    assert len(found) == len(
        yaml.safe_load((ROOT / "charts/gyre/files/alerts.yaml").read_text())["groups"][0]["rules"]
    )
    for rule in found:
        assert rule["annotations"]["runbook_url"] == f"{WIKI}#{rule['alert'].lower()}"
    # The ConfigMap holding the URL is local to the build: nothing extra reaches the cluster.
    assert not [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "gyre-runbooks"]
