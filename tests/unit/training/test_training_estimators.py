"""The estimator allowlist and its parameter validation."""

from __future__ import annotations

import pandas as pd
import pytest
import skops.io as sio

from gyre.api.trainingrun import EstimatorKind
from gyre.training.artifact import check_trusted
from gyre.training.estimators import ESTIMATORS, EstimatorError, build_estimator, task_of
from gyre.training.trainer import TrainOptions, train_model


def test_allowlist_matches_the_api_enum() -> None:
    from typing import get_args

    assert set(ESTIMATORS) == set(get_args(EstimatorKind))


def test_unknown_estimators_and_params_are_refused_with_clear_errors() -> None:
    with pytest.raises(EstimatorError, match=r"unknown estimator 'os\.system'") as info:
        build_estimator("os.system")
    assert info.value.reason == "UnknownEstimator"
    with pytest.raises(EstimatorError, match="no parameter") as info:
        build_estimator("RandomForestClassifier", {"n_trees": 3})
    assert info.value.reason == "InvalidParams"
    with pytest.raises(EstimatorError, match="n_estimators"):
        build_estimator("RandomForestClassifier", {"n_estimators": -1})


def test_seed_sets_random_state_unless_given() -> None:
    assert build_estimator("RandomForestClassifier", seed=7).random_state == 7
    assert build_estimator("RandomForestClassifier", {"random_state": 1}, seed=7).random_state == 1
    assert build_estimator("SVC").probability is True
    assert task_of("Ridge") == "regression" and task_of("SVC") == "classification"


def _small(name: str) -> dict[str, int]:
    if name.startswith("HistGradientBoosting"):
        return {"max_iter": 3}
    if "Forest" in name or "Trees" in name or name.startswith("GradientBoosting"):
        return {"n_estimators": 3}
    return {}


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_allowlisted_pipeline_holds_only_trusted_types(name: str, mixed_frame: pd.DataFrame) -> None:
    target = "label" if task_of(name) == "classification" else "amount"
    frame = mixed_frame.drop(columns=["amount" if target == "label" else "label"])
    result = train_model(frame, TrainOptions(target=target, estimator=name, params=_small(name)))
    # Raises when a type outside TRUSTED_TYPES appears (e.g. after a scikit-learn upgrade).
    check_trusted(sio.get_untrusted_types(data=sio.dumps(result.pipeline)))
