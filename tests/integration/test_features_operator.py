"""spec.features against the Dataset's schema, checked by the running operator: the CRD cannot see the columns, so
an unknown one fails the run with a condition and a Warning Event, before any Job."""

from __future__ import annotations

import kubernetes
import pytest
from kopf.testing import KopfRunner
from kubetest import Custom, condition, events, ready_dataset, wait_for

pytestmark = pytest.mark.integration


def test_a_transform_on_a_column_the_dataset_lacks_fails_the_run_naming_it(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    ready_dataset(custom, namespace)
    spec = {
        "datasetRef": {"name": "iris"},
        "estimator": {"kind": "LogisticRegression"},
        "features": {"transforms": [{"columns": ["petal", "sepel"], "steps": [{"log": {}}]}]},
    }
    custom.create("trainingruns", "TrainingRun", "typo", spec)
    failed = wait_for(
        lambda: condition(custom.get("trainingruns", "typo"), "Failed"), what="Failed condition"
    )
    assert (failed["status"], failed["reason"]) == ("True", "UnknownColumns")
    assert "no column(s) sepel" in failed["message"] and "sepal" in failed["message"]
    wait_for(
        lambda: ("Warning", "UnknownColumns") in [e[:2] for e in events(k8s, namespace, "typo")],
        what="Warning Event UnknownColumns",
    )
    jobs = kubernetes.client.BatchV1Api(k8s).list_namespaced_job(namespace).items
    assert [j.metadata.name for j in jobs if j.metadata.name.startswith("typo")] == []
