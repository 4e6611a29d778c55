"""The security policies of a default install, seen by a tenant who may create Gyre objects in a namespace."""

from __future__ import annotations

import json

import pytest
from e2ekube import Kube
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.e2e

RUN = {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}}


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("TrainingRun", {**RUN, "image": "docker.io/library/busybox:1.36"}),
        ("Dataset", {"source": {"uri": "builtin://iris"}, "image": "evil.example.com/reader:1"}),
        ("ModelDeployment", {"model": {"trainingRunRef": {"name": "x"}}, "image": "gyre-evil:dev"}),
    ],
)
def test_a_default_install_rejects_any_image_but_its_own_at_admission(
    kube: Kube, kind: str, spec: dict[str, object]
) -> None:
    with pytest.raises(ApiException) as refused:
        kube.create(kind, "foreign-image", spec)
    assert refused.value.status == 403, refused.value.body
    message = json.loads(refused.value.body)["message"]
    assert f"spec.image {spec['image']} is refused by the image policy" in message
    assert "policy.images" in message
    # The operator's own image, named explicitly, is allowed.
    kube.create(kind, "own-image", {**spec, "image": kube.image})
