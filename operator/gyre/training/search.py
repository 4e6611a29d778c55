"""Hyperparameter search: trial index -> parameters, pure and deterministic.

Each trial is one completion index of an Indexed Job, so trial i must compute its parameters alone, without
coordination, and get the same answer on every retry:

- grid: the cartesian product of every parameter's values, parameters in sorted name order, the last name varying
  fastest; trial i is the i-th combination (mixed-radix decoding, nothing materialised). Names are sorted because
  the API server does not preserve the order of keys in an object.
- random: trial i draws from numpy's PCG64 seeded with (seed, i): a list picks one value uniformly; a range draws
  uniformly in [low, high) (float) or [low, high] (int), on a log scale when `log` is set.

Trial parameters are merged over estimator.params. Each trial writes models/{ns}/{run}/trials/{i}/ and its report
(termination message and report.json). The controller ranks the Succeeded trials by search.metric (goal from
search.goal or gyre.api.trainingrun.default_goal; ties go to the lowest index) and sets status.modelUri to the
winning trial's directory: the winning model directory IS the trial directory, nothing is copied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from gyre.api.trainingrun import ParamSpace, SearchSpec

__all__ = ["SearchError", "best_trial", "trial_count", "trial_params"]


class SearchError(ValueError):
    """The search space or the trial index is invalid."""


def trial_count(search: SearchSpec) -> int:
    """How many trials (Indexed Job completions) the search runs."""
    return search.trial_count()


def _sample(space: ParamSpace, rng: np.random.Generator, name: str) -> Any:
    if space.values is not None:
        return space.values[int(rng.integers(len(space.values)))]
    if space.low is None or space.high is None:
        raise SearchError(f"parameter {name!r} needs values, or low and high")
    low, high = float(space.low), float(space.high)
    if space.log:
        if low <= 0:
            raise SearchError(f"parameter {name!r}: a log range needs low > 0")
        if space.type == "int":
            value = math.exp(rng.uniform(math.log(low), math.log(high + 1)))
            return int(min(max(math.floor(value), math.ceil(low)), math.floor(high)))
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    if space.type == "int":
        return int(rng.integers(math.ceil(low), math.floor(high) + 1))
    return float(rng.uniform(low, high))


def trial_params(
    search: SearchSpec, index: int, *, seed: int, base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The estimator parameters of trial `index`: `base` updated with the trial's draw from the space."""
    total = trial_count(search)
    if not 0 <= index < total:
        raise SearchError(f"trial index {index} is outside the search's {total} trials")
    params = dict(base or {})
    names = sorted(search.space)
    if search.strategy == "grid":
        remainder = index
        chosen: dict[str, Any] = {}
        for name in reversed(names):
            values = search.space[name].values
            if not values:
                raise SearchError(f"grid search needs values for parameter {name!r}")
            remainder, position = divmod(remainder, len(values))
            chosen[name] = values[position]
        params.update({name: chosen[name] for name in names})
        return params
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    for name in names:
        params[name] = _sample(search.space[name], rng, name)
    return params


def best_trial(scores: Mapping[int, float], goal: str) -> int | None:
    """The winning trial index: best score for the goal (maximize/minimize), lowest index on ties; NaN never wins."""
    finite = {i: s for i, s in scores.items() if not math.isnan(s)}
    if not finite:
        return None
    sign = -1.0 if goal == "maximize" else 1.0
    return min(finite, key=lambda i: (sign * finite[i], i))
