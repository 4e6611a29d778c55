"""The chart's ServiceMonitor, PodMonitor and PrometheusRule are admitted by the API server under the
prometheus-operator CRDs (server-side dry run with strict field validation, so a misspelt field fails too)."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from kubetest import wait_for

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = ROOT / "manifests/components/monitoring/monitoring.yaml"
KINDS = {
    "ServiceMonitor": "servicemonitors",
    "PodMonitor": "podmonitors",
    "PrometheusRule": "prometheusrules",
}


@pytest.fixture(scope="module")
def prometheus_operator_crds(k8s: kubernetes.client.ApiClient) -> None:
    """Install the three prometheus-operator CRDs Gyre's objects need (fetched by hack/prometheus-operator-crds.sh)."""
    folder = Path(
        subprocess.run(
            [str(ROOT / "hack/prometheus-operator-crds.sh")], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    dyn = kubernetes.dynamic.DynamicClient(k8s)
    api = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    names = []
    for plural in KINDS.values():
        doc = yaml.safe_load((folder / f"monitoring.coreos.com_{plural}.yaml").read_text())
        api.server_side_apply(
            body=doc, name=doc["metadata"]["name"], field_manager="gyre-tests", force_conflicts=True
        )
        names.append(doc["metadata"]["name"])
    ext = kubernetes.client.ApiextensionsV1Api(k8s)

    def established() -> bool:
        for name in names:
            conds = {
                c.type: c.status for c in ext.read_custom_resource_definition(name).status.conditions or []
            }
            if conds.get("Established") != "True":
                return False
        return True

    wait_for(established, what="prometheus-operator CRDs established")


def monitoring_objects() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(COMPONENT.read_text()) if d and d["kind"] in KINDS]


def dry_run(k8s: kubernetes.client.ApiClient, body: dict[str, Any], namespace: str) -> dict[str, Any]:
    """Create `body` in `namespace` by server-side dry run; nothing is stored."""
    created: dict[str, Any] = kubernetes.client.CustomObjectsApi(k8s).create_namespaced_custom_object(
        "monitoring.coreos.com",
        "v1",
        namespace,
        KINDS[body["kind"]],
        {**body, "metadata": {**body["metadata"], "namespace": namespace}},
        dry_run="All",
        field_validation="Strict",
    )
    return created


def kept(sent: Any, stored: Any) -> bool:
    """Whether the API server kept every field that was sent (it may add defaults, never drop or change one)."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(k in stored and kept(v, stored[k]) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(stored, list) and len(sent) == len(stored) and all(map(kept, sent, stored))
    return bool(sent == stored)


def test_the_component_holds_one_of_each_prometheus_operator_kind() -> None:
    assert sorted(d["kind"] for d in monitoring_objects()) == sorted(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_monitoring_object_is_admitted_by_server_side_dry_run(
    k8s: kubernetes.client.ApiClient, k8s_namespace: str, prometheus_operator_crds: None, kind: str
) -> None:
    body = next(d for d in monitoring_objects() if d["kind"] == kind)
    created = dry_run(k8s, body, k8s_namespace)
    assert kept(body["spec"], created["spec"])


def test_a_misspelt_field_is_refused_by_the_same_dry_run(
    k8s: kubernetes.client.ApiClient, k8s_namespace: str, prometheus_operator_crds: None
) -> None:
    body = copy.deepcopy(next(d for d in monitoring_objects() if d["kind"] == "PodMonitor"))
    body["spec"]["podMetricEndpoints"] = body["spec"].pop("podMetricsEndpoints")
    with pytest.raises(ApiException) as refused:
        dry_run(k8s, body, k8s_namespace)
    assert refused.value.status in (400, 422)
