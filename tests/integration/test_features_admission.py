"""spec.features on a real API server: valid transforms are admitted and defaulted; malformed ones are refused at
admission by the CRD's CEL rules with a message that says what to fix."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from kubetest import Custom, rejection

pytestmark = pytest.mark.integration


def run_spec(*transforms: dict[str, Any], **features: Any) -> dict[str, Any]:
    return {
        "datasetRef": {"name": "shop"},
        "estimator": {"kind": "LogisticRegression"},
        "features": {**features, "transforms": list(transforms)},
    }


def test_a_run_with_every_kind_of_transform_is_admitted_and_defaulted(custom: Custom) -> None:
    spec = run_spec(
        {"columns": ["income", "debt"], "steps": [{"impute": {}}, {"clip": {"min": 0}}, {"log": {}}]},
        {"columns": ["age"], "steps": [{"power": {}}, {"standardize": {}}]},
        {"columns": ["tenure"], "steps": [{"bucketize": {}}]},
        {"columns": ["hour"], "steps": [{"cyclic": {"period": 24}}]},
        {"columns": ["signup"], "steps": [{"dateParts": {}}]},
        {
            "columns": ["city"],
            "steps": [{"impute": {"strategy": "constant", "category": "?"}}, {"oneHot": {}}],
        },
        {"columns": ["shop"], "steps": [{"targetEncode": {}}]},
        {"columns": ["user"], "steps": [{"hash": {}}]},
        {"columns": ["review"], "steps": [{"tfidf": {}}]},
        columns=["income", "plan"],
    )
    run = custom.create("trainingruns", "TrainingRun", "features", spec)
    steps = [t["steps"][-1] for t in run["spec"]["features"]["transforms"]]
    assert steps[0] == {"log": {"offset": 1.0}}
    assert steps[2] == {"bucketize": {"bins": 5, "strategy": "quantile", "encode": "oneHot"}}
    assert steps[4]["dateParts"]["parts"] == ["year", "month", "day", "dayOfWeek"]
    assert steps[5] == {"oneHot": {"maxCategories": 50, "minFrequency": 1}}
    assert steps[7] == {"hash": {"nFeatures": 1024}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            run_spec({"columns": ["a"], "steps": [{"log": {}, "clip": {"min": 0}}]}),
            "a step sets exactly one of",
        ),
        (run_spec({"columns": ["a"], "steps": [{}]}), "a step sets exactly one of"),
        (run_spec({"columns": [], "steps": [{"log": {}}]}), "spec.features.transforms[0].columns"),
        (run_spec({"columns": ["a"], "steps": []}), "spec.features.transforms[0].steps"),
        (run_spec({"columns": ["a", "a"], "steps": [{"log": {}}]}), "a column is listed twice"),
        (
            run_spec({"columns": ["a"], "steps": [{"oneHot": {}}, {"impute": {}}]}),
            "must be the last step of its transform",
        ),
        (
            run_spec({"columns": ["a"], "steps": [{"bucketize": {}}, {"cyclic": {"period": 7}}]}),
            "at most one encoding step",
        ),
        (run_spec({"columns": ["a"], "steps": [{"log": {}}, {"log": {}}]}), "each kind of step at most once"),
        (
            run_spec({"columns": ["a"], "steps": [{"log": {}}, {"dateParts": {}}]}),
            "dateParts must be the first",
        ),
        (
            run_spec({"columns": ["a"], "steps": [{"impute": {}}, {"tfidf": {}}]}),
            "tfidf must be the only step",
        ),
        (
            run_spec({"columns": ["a"], "steps": [{"log": {}}, {"oneHot": {}}]}),
            "they cannot follow numeric steps",
        ),
        (
            run_spec(
                {"columns": ["a", "b"], "steps": [{"log": {}}]},
                {"columns": ["b"], "steps": [{"clip": {"max": 1}}]},
            ),
            "a column is in two transforms",
        ),
        (
            run_spec({"columns": ["a"], "steps": [{"impute": {"strategy": "constant"}}]}),
            "impute strategy constant needs value",
        ),
        (
            run_spec({"columns": ["a"], "steps": [{"impute": {"strategy": "median", "value": 1}}]}),
            "apply only to strategy constant",
        ),
        (
            run_spec({"columns": ["a"], "steps": [{"clip": {"min": 2, "max": 1}}]}),
            "clip min must not be greater",
        ),
        (run_spec({"columns": ["a"], "steps": [{"clip": {}}]}), "clip needs min, max or both"),
        (run_spec({"columns": ["a"], "steps": [{"cyclic": {"period": 0}}]}), "period"),
        (run_spec({"columns": ["a"], "steps": [{"oneHot": {"maxCategories": 1}}]}), "maxCategories"),
        (run_spec({"columns": ["a"], "steps": [{"power": {"method": "cube"}}]}), "yeoJohnson"),
        # An unknown transform is pruned by the server, which leaves an empty step.
        (run_spec({"columns": ["a"], "steps": [{"scale": {}}]}), "a step sets exactly one of"),
        (run_spec(columns=["a", "a"]), "Duplicate value"),
    ],
)
def test_malformed_features_are_refused_at_admission_saying_what_to_fix(
    custom: Custom, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as info:
        custom.create("trainingruns", "TrainingRun", "bad", spec)
    assert message in rejection(info.value)
