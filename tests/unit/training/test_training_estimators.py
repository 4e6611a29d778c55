"""The estimator allowlist and its parameter validation."""

from __future__ import annotations

import pytest

from gyre.api.trainingrun import EstimatorKind
from gyre.training.estimators import ESTIMATORS, EstimatorError, build_estimator, task_of


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
