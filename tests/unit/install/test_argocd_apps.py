"""The Argo CD Application examples point at what exists and render as Argo CD would render them."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from helmchart import by_kind, helm

ROOT = Path(__file__).resolve().parents[3]
ARGOCD = ROOT / "manifests/argocd"


def application(name: str) -> dict[str, Any]:
    app: dict[str, Any] = yaml.safe_load((ARGOCD / name).read_text())
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    assert (
        "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    )  # the CRDs exceed 256 KiB annotations
    return app


def test_the_chart_application_renders_with_its_values_into_its_destination() -> None:
    app = application("application-helm.yaml")
    source, dest = app["spec"]["source"], app["spec"]["destination"]
    assert "CreateNamespace=true" in app["spec"]["syncPolicy"]["syncOptions"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values:
        yaml.safe_dump(source["helm"]["valuesObject"], values)
        values.flush()
        proc = helm(
            "template", source["helm"]["releaseName"], str(ROOT / source["path"]), "--include-crds",
            "-n", dest["namespace"], "-f", values.name,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert len(by_kind(docs, "CustomResourceDefinition")) == 4
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["metadata"]["namespace"] == dest["namespace"]
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/gyre:0.1.0"
    )


def test_the_kustomize_application_points_at_the_kustomization() -> None:
    app = application("application-kustomize.yaml")
    path = ROOT / app["spec"]["source"]["path"]
    kustomization = yaml.safe_load((path / "kustomization.yaml").read_text())
    assert {"crds", "operator/operator.yaml"} <= set(kustomization["resources"])
