"""Search expansion: trial i's parameters are a pure function of (spec, seed, i)."""

from __future__ import annotations

import pytest

from gyre.api.trainingrun import SearchSpec
from gyre.training.search import SearchError, best_trial, trial_count, trial_params


def _grid() -> SearchSpec:
    return SearchSpec.model_validate(
        {
            "strategy": "grid",
            "space": {"n_estimators": {"values": [10, 20]}, "max_depth": {"values": [2, 4, None]}},
        }
    )


def test_grid_enumerates_every_combination_in_sorted_name_order() -> None:
    search = _grid()
    assert trial_count(search) == 6
    combos = [trial_params(search, i, seed=0, base={"criterion": "gini"}) for i in range(6)]
    assert combos[0] == {"criterion": "gini", "max_depth": 2, "n_estimators": 10}
    assert combos[1] == {"criterion": "gini", "max_depth": 2, "n_estimators": 20}
    assert [(c["max_depth"], c["n_estimators"]) for c in combos] == [
        (2, 10),
        (2, 20),
        (4, 10),
        (4, 20),
        (None, 10),
        (None, 20),
    ]
    # Key order in the spec does not matter (the API server does not keep it).
    reordered = SearchSpec.model_validate(
        {
            "strategy": "grid",
            "space": {"max_depth": {"values": [2, 4, None]}, "n_estimators": {"values": [10, 20]}},
        }
    )
    assert [trial_params(reordered, i, seed=0) for i in range(6)] == [
        {k: v for k, v in c.items() if k != "criterion"} for c in combos
    ]


def test_random_search_is_reproducible_per_trial_and_respects_ranges() -> None:
    search = SearchSpec.model_validate(
        {
            "strategy": "random",
            "trials": 20,
            "space": {
                "learning_rate": {"low": 0.001, "high": 1.0, "log": True},
                "max_depth": {"low": 2, "high": 8, "type": "int"},
                "criterion": {"values": ["gini", "entropy"]},
                "subsample": {"low": 0.5, "high": 1.0},
            },
        }
    )
    first = [trial_params(search, i, seed=42) for i in range(20)]
    assert first == [trial_params(search, i, seed=42) for i in reversed(range(20))][::-1]
    assert first != [trial_params(search, i, seed=43) for i in range(20)]
    for params in first:
        assert 0.001 <= params["learning_rate"] < 1.0
        assert isinstance(params["max_depth"], int) and 2 <= params["max_depth"] <= 8
        assert params["criterion"] in ("gini", "entropy")
        assert 0.5 <= params["subsample"] < 1.0
    assert len({p["learning_rate"] for p in first}) == 20


def test_trial_index_outside_the_search_is_an_error() -> None:
    with pytest.raises(SearchError, match="outside"):
        trial_params(_grid(), 6, seed=0)
    with pytest.raises(SearchError):
        trial_params(_grid(), -1, seed=0)


def test_best_trial_by_goal_with_ties_to_the_lowest_index() -> None:
    assert best_trial({0: 0.8, 1: 0.9, 2: 0.9}, "maximize") == 1
    assert best_trial({0: 3.0, 1: 1.0, 2: float("nan")}, "minimize") == 1
    assert best_trial({0: float("nan")}, "maximize") is None
