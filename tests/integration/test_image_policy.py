"""The image policy on a real API server: refused at admission by the chart's ValidatingAdmissionPolicy, and by the
operator (condition and Warning Event, no Job) when admission lets an object through."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException
from kubetest import INSTANCE, INSTANCE_LABEL, Custom, events, namespaced_policy, read_or_none, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "a" * 64
RUN = {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}}


@pytest.fixture()
def admission_policy(k8s: kubernetes.client.ApiClient, namespace: str) -> Iterator[None]:
    """The install's ValidatingAdmissionPolicy, unchanged except for its name, its allowed list and the operator
    instance it serves (the tests' own), bound to `namespace`."""
    docs = [d for d in yaml.safe_load_all((ROOT / "manifests/operator/operator.yaml").read_text()) if d]
    policy = next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicy")
    binding = next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding")
    (allowed,) = (v for v in policy["spec"]["variables"] if v["name"] == "allowed")
    allowed["expression"] = json.dumps(["gyre:dev", "registry.example.com/ml/", "python", DIGEST])
    policy["spec"]["matchConstraints"]["objectSelector"] = {"matchLabels": {INSTANCE_LABEL: INSTANCE}}
    with namespaced_policy(k8s, namespace, policy, binding):
        yield


def forbidden(exc: ApiException) -> str:
    """The message of an admission policy's denial (403 Forbidden)."""
    assert exc.status == 403, f"expected 403 Forbidden, got {exc.status}: {exc.body}"
    return str(json.loads(exc.body)["message"])


def test_admission_rejects_an_image_outside_the_policy_and_says_how_to_allow_it(
    admission_policy: None, custom: Custom
) -> None:
    def rejected() -> str | None:
        # The API server loads a new policy asynchronously: until it does, the object is admitted.
        try:
            custom.create(
                "trainingruns", "TrainingRun", "evil", {**RUN, "image": "registry.example.com/ml-evil/x:1"}
            )
        except ApiException as exc:
            return forbidden(exc)
        custom.delete("trainingruns", "evil")
        return None

    message = wait_for(rejected, timeout=60, what="the admission policy to take effect")
    assert "spec.image registry.example.com/ml-evil/x:1 is refused by the image policy" in message
    assert (
        "gyre-image-policy" in message
        and "registry.example.com/ml/" in message
        and "policy.images" in message
    )
    for name, image in [
        ("by-prefix", "registry.example.com/ml/trainer:2"),
        ("by-repository", "python:3.12"),
        ("by-digest", "elsewhere.example.com/x@" + DIGEST),
        ("operator-image", "gyre:dev"),
    ]:
        custom.create("trainingruns", "TrainingRun", name, {**RUN, "image": image})
    custom.create("trainingruns", "TrainingRun", "default-image", RUN)
    for kind, plural, spec in [
        ("Dataset", "datasets", {"source": {"uri": "builtin://iris"}, "image": "python-evil:1"}),
        (
            "ModelDeployment",
            "modeldeployments",
            {"model": {"trainingRunRef": {"name": "x"}}, "image": "pythonx"},
        ),
    ]:
        with pytest.raises(ApiException) as refused:
            custom.create(plural, kind, "evil", spec)
        assert "is refused by the image policy" in forbidden(refused.value)


def test_the_operator_refuses_an_image_outside_its_policy_with_a_condition_a_warning_and_no_job(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    # gyre:dev passes the default install's admission policy, if one is installed; this operator runs another image.
    custom.create("trainingruns", "TrainingRun", "foreign", {**RUN, "image": "gyre:dev"})
    failed = custom.wait_condition("trainingruns", "foreign", "Failed", "True")
    assert failed["reason"] == "ImageNotAllowed"
    assert "spec.image 'gyre:dev' is refused by the operator's image policy" in failed["message"]
    assert "GYRE_ALLOWED_IMAGES" in failed["message"]
    wait_for(
        lambda: ("Warning", "ImageNotAllowed") in [e[:2] for e in events(k8s, namespace, "foreign")],
        what="Warning Event ImageNotAllowed",
    )
    batch = kubernetes.client.BatchV1Api(k8s)
    assert read_or_none(k8s, batch.read_namespaced_job, "foreign-train", namespace) is None
