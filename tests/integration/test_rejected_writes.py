"""A write the API server refuses for good (an admission policy, RBAC) becomes a condition and a Warning Event, and
the operator carries on by itself once the refusal is lifted."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import kubernetes
import pytest
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException
from kubetest import Custom, events, ready_dataset, wait_for

pytestmark = pytest.mark.integration

FROZEN = "Jobs are frozen in this namespace during the audit"


@contextlib.contextmanager
def jobs_frozen(k8s: kubernetes.client.ApiClient, namespace: str) -> Iterator[Callable[[], None]]:
    """A cluster admin's ValidatingAdmissionPolicy that refuses every new Job in `namespace`; yields its removal."""
    name = f"freeze-jobs-{namespace}"
    api = kubernetes.client.AdmissionregistrationV1Api(k8s)
    api.create_validating_admission_policy(
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["batch"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["jobs"],
                        }
                    ]
                },
                "validations": [{"expression": "false", "message": FROZEN, "reason": "Forbidden"}],
            },
        }
    )
    api.create_validating_admission_policy_binding(
        {
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        }
    )
    probe = {
        "metadata": {"name": "probe"},
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}
        },
    }

    def refused() -> bool:
        # Policies load asynchronously; a dry run goes through admission without creating anything.
        try:
            kubernetes.client.BatchV1Api(k8s).create_namespaced_job(namespace, probe, dry_run="All")
        except ApiException as exc:
            return exc.status == 403
        return False

    def lift() -> None:
        for delete in (
            api.delete_validating_admission_policy_binding,
            api.delete_validating_admission_policy,
        ):
            try:
                delete(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    wait_for(refused, timeout=60, what="the freeze policy to take effect")
    try:
        yield lift
    finally:
        lift()


def test_a_refused_job_becomes_synced_false_with_a_warning_and_starts_once_allowed(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    ready_dataset(custom, namespace)
    with jobs_frozen(k8s, namespace) as lift:
        _refused_then_allowed(custom, k8s, namespace, lift)


def _refused_then_allowed(
    custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str, lift: Callable[[], None]
) -> None:
    run = {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}}
    custom.create("trainingruns", "TrainingRun", "audited", run)
    synced = custom.wait_condition("trainingruns", "audited", "Synced", "False")
    assert synced["reason"] == "WriteRejected"
    assert "creating Job audited-train was refused by the API server (403" in synced["message"]
    assert FROZEN in synced["message"]
    wait_for(
        lambda: [e for e in events(k8s, namespace, "audited") if e[:2] == ("Warning", "WriteRejected")],
        what="Warning Event WriteRejected",
    )
    # The planned status was not written: the run does not claim a Job that does not exist.
    assert (custom.get("trainingruns", "audited").get("status") or {}).get("jobName") is None

    lift()
    custom.wait_condition("trainingruns", "audited", "Synced", "True", timeout=180)
    status = custom.get("trainingruns", "audited")["status"]
    assert status["jobName"] == "audited-train"
    kubernetes.client.BatchV1Api(k8s).read_namespaced_job("audited-train", namespace)
