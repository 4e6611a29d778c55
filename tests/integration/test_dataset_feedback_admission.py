"""The Dataset CRD's feedback source on a real API server: admitted and defaulted, or refused with the rule's
message."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from kubetest import Custom, rejection

pytestmark = pytest.mark.integration

FEEDBACK: dict[str, Any] = {"deploymentRef": {"name": "iris"}}


def test_a_feedback_dataset_is_admitted_and_defaulted(custom: Custom) -> None:
    spec = {"source": {"feedback": FEEDBACK | {"mergeWith": {"datasetRef": {"name": "iris"}}}}}
    ds = custom.create("datasets", "Dataset", "iris-feedback", spec)
    feedback = ds["spec"]["source"]["feedback"]
    assert (feedback["maxAge"], feedback["minRows"], feedback["maxRows"]) == ("168h", 1, 1_000_000)
    assert "version" not in feedback["mergeWith"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"source": {"uri": "builtin://iris", "feedback": FEEDBACK}},
            "set exactly one of uri, sql and feedback",
        ),
        ({"source": {"feedback": FEEDBACK, "format": "csv"}}, "a feedback source has neither"),
        ({"source": {"feedback": FEEDBACK | {"minRows": 10, "maxRows": 5}}}, "minRows must not be greater"),
        ({"source": {"feedback": FEEDBACK | {"maxAge": "7d"}}}, "maxAge"),
        ({"source": {"feedback": {"mergeWith": {"datasetRef": {"name": "iris"}}}}}, "deploymentRef"),
    ],
)
def test_invalid_feedback_sources_are_refused(custom: Custom, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiException) as info:
        custom.create("datasets", "Dataset", "bad", spec)
    assert message in rejection(info.value)
