"""The source policy in the operator, against the real API server: a refused source never gets a Job."""

from __future__ import annotations

import kubernetes
import pytest
from kopf.testing import KopfRunner
from kubetest import Custom, condition, events, wait_for

pytestmark = pytest.mark.integration

REFUSED = {
    "metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/node.csv",
    "environ": "file:///proc/self/environ",
    "models": "file:///var/lib/gyre/artifacts/models/other/run/model.skops",
}


def owned_jobs(k8s: kubernetes.client.ApiClient, namespace: str, owner: str) -> list[str]:
    items = (
        kubernetes.client.BatchV1Api(k8s)
        .list_namespaced_job(namespace, label_selector=f"gyre.dev/owner-name={owner}")
        .items
    )
    return [j.metadata.name for j in items]


def test_a_refused_source_gets_a_condition_and_a_warning_event_and_no_job(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    for name, uri in REFUSED.items():
        custom.create("datasets", "Dataset", name, {"source": {"uri": uri, "format": "csv"}})
    # Created after the refused ones: once its Job exists, the operator has handled them too.
    custom.create(
        "datasets", "Dataset", "own", {"source": {"uri": "file:///var/lib/gyre/artifacts/sources/x.csv"}}
    )
    wait_for(lambda: owned_jobs(k8s, namespace, "own"), what="the own-area Dataset's Job")

    for name in REFUSED:
        ready = wait_for(
            lambda n=name: (
                (c := condition(custom.get("datasets", n), "Ready")) and c["reason"] == "SourceRefused" and c
            ),
            what=f"{name}: Ready=False SourceRefused",
        )
        assert ready["status"] == "False"
        assert "refused by the source policy" in ready["message"] and "policy.sources" in ready["message"]
        assert custom.get("datasets", name)["status"]["phase"] == "Failed"
        warnings = wait_for(
            lambda n=name: [e for e in events(k8s, namespace, n) if e[:2] == ("Warning", "SourceRefused")],
            what=f"{name}: Warning Event SourceRefused",
        )
        assert warnings[0][2] == ready["message"]
        assert owned_jobs(k8s, namespace, name) == []
