"""spec.slices on a real API server: a valid one is admitted and defaulted; mistakes the spec alone shows are refused
at admission by the CRD's CEL rules, with a message that says what to fix."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from kubetest import Custom, rejection

pytestmark = pytest.mark.integration


def run_spec(slices: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "datasetRef": {"name": "loans"},
        "estimator": {"kind": "LogisticRegression"},
        "slices": slices,
        **extra,
    }


def test_slices_with_gates_are_admitted_and_defaulted(custom: Custom) -> None:
    spec = run_spec(
        {
            "columns": ["region", "sex"],
            "excludeFromFeatures": ["sex"],
            "metrics": ["accuracy", "recall_macro"],
            "gates": [{"metric": "accuracy", "maxGap": 0.05}, {"metric": "recall_macro", "min": 0.7}],
        },
        features={"columns": ["income", "region"]},
    )
    run = custom.create("trainingruns", "TrainingRun", "sliced", spec)
    slices = run["spec"]["slices"]
    assert (slices["minCount"], slices["maxValues"]) == (30, 20)
    assert slices["gates"][0] == {"metric": "accuracy", "maxGap": 0.05}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            run_spec({"columns": ["region"], "excludeFromFeatures": ["sex"]}),
            "excludeFromFeatures may only name columns listed in slices.columns",
        ),
        (
            run_spec(
                {"columns": ["sex"], "excludeFromFeatures": ["sex"]}, features={"columns": ["sex", "x"]}
            ),
            "a column in slices.excludeFromFeatures cannot also be named in spec.features",
        ),
        (
            run_spec(
                {"columns": ["sex"], "excludeFromFeatures": ["sex"]},
                features={"transforms": [{"columns": ["sex"], "steps": [{"oneHot": {}}]}]},
            ),
            "a column in slices.excludeFromFeatures cannot also be named in spec.features",
        ),
        (
            run_spec({"columns": ["approved"]}, target="approved"),
            "the target cannot be a slice column",
        ),
        (
            run_spec(
                {
                    "columns": ["region"],
                    "metrics": ["accuracy"],
                    "gates": [{"metric": "f1_macro", "maxGap": 0.1}],
                }
            ),
            "a slice gate's metric must be one of slices.metrics",
        ),
        (run_spec({"columns": ["region"], "gates": [{"metric": "accuracy"}]}), "a slice gate needs maxGap"),
        (
            run_spec({"columns": ["region"], "gates": [{"metric": "accuracy", "min": 0.9, "max": 0.8}]}),
            "slice gate min must not be greater than max",
        ),
        (run_spec({"columns": ["a", "b", "c", "d", "e"]}), "spec.slices.columns"),
        (run_spec({"columns": ["region"], "minCount": 0}), "spec.slices.minCount"),
    ],
)
def test_slice_mistakes_are_refused_at_admission_saying_what_to_fix(
    custom: Custom, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as info:
        custom.create("trainingruns", "TrainingRun", "bad", spec)
    assert message in rejection(info.value)
