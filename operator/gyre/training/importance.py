"""Permutation importances: how much the model's primary metric worsens when one input column is shuffled.

Computed by the trainer on the held-out split (scikit-learn's `permutation_importance`) for every estimator kind,
on the raw input columns a user knows: the whole fitted Pipeline is scored, so a column that spec.features one-hot
encodes, hashes or expands into date parts is shuffled once, as one column, before any transform sees it.

The cost is bounded and deterministic: at most `MAX_ROWS` test rows (a sample seeded like the split) and `REPEATS`
shuffles per column, fewer (down to `MIN_REPEATS`) for wide tables so that `repeats x columns` stays within
`MAX_EVALUATIONS` where it can: that many predictions of at most `MAX_ROWS` rows. Rows, repeats and seed are
recorded in the manifest, so the numbers can be reproduced.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from time import perf_counter
from typing import Any

import numpy as np

from gyre.api.trainingrun import DEFAULT_METRICS, FeatureImportance, ImportanceSummary, Task
from gyre.training.manifest import Importances

__all__ = [
    "MAX_EVALUATIONS",
    "MAX_ROWS",
    "MIN_REPEATS",
    "REPEATS",
    "TOP",
    "permutation_importances",
    "repeats_for",
    "summary",
]

log = logging.getLogger(__name__)

MAX_ROWS = 2000
"""Most test rows the shuffles run on; a larger test split is sampled (seeded)."""
REPEATS = 5
"""Shuffles per column: enough for a spread, few enough to keep the cost a small part of a training run."""
MIN_REPEATS = 2
"""Fewest shuffles per column: one shuffle has no spread."""
MAX_EVALUATIONS = 500
"""Predictions (repeats x columns) beyond which wide tables get fewer repeats, down to MIN_REPEATS."""
TOP = 5
"""Columns shown in TrainingRun status."""


def repeats_for(columns: int, repeats: int = REPEATS) -> int:
    """Shuffles per column for a table of `columns` input columns: `repeats`, fewer for wide tables."""
    return max(MIN_REPEATS, min(repeats, MAX_EVALUATIONS // max(columns, 1)))


_Score = Callable[[Any, Any], float]


def _metric(name: str, classes: Sequence[Any] | None) -> tuple[bool, _Score] | None:
    """(needs probabilities, score) for a metric, signed so that higher is better; None when unknown."""
    from sklearn import metrics as m

    labels = list(classes) if classes is not None else None
    on_labels: dict[str, _Score] = {
        "accuracy": m.accuracy_score,
        "balanced_accuracy": m.balanced_accuracy_score,
        "f1_macro": partial(m.f1_score, average="macro", zero_division=0),
        "f1_weighted": partial(m.f1_score, average="weighted", zero_division=0),
        "precision_macro": partial(m.precision_score, average="macro", zero_division=0),
        "recall_macro": partial(m.recall_score, average="macro", zero_division=0),
        "r2": m.r2_score,
        # Error metrics are negated: the importance is then the rise of the error.
        "rmse": lambda y, p: -math.sqrt(m.mean_squared_error(y, p)),
        "mse": lambda y, p: -m.mean_squared_error(y, p),
        "mae": lambda y, p: -m.mean_absolute_error(y, p),
        "median_ae": lambda y, p: -m.median_absolute_error(y, p),
    }
    if name in on_labels:
        return False, on_labels[name]
    if name == "log_loss":
        return True, lambda y, p: -m.log_loss(y, p, labels=labels)
    if name == "roc_auc" and labels is not None:
        if len(labels) == 2:
            return True, lambda y, p: m.roc_auc_score(y, np.asarray(p)[:, 1])
        return True, lambda y, p: m.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels)
    return None


def _scorer(name: str, classes: Sequence[Any] | None) -> Callable[[Any, Any, Any], float] | None:
    found = _metric(name, classes)
    if found is None:
        return None
    proba, score = found

    def scorer(estimator: Any, x: Any, y: Any) -> float:
        return float(score(y, estimator.predict_proba(x) if proba else estimator.predict(x)))

    return scorer


def _sample(x: Any, y: Any, rows: int, seed: int) -> tuple[Any, Any]:
    if len(x) <= rows:
        return x, y
    picked = np.sort(np.random.default_rng(seed).choice(len(x), size=rows, replace=False))
    return x.iloc[picked], np.asarray(y)[picked]


def _usable(scorer: Callable[[Any, Any, Any], float], model: Any, x: Any, y: Any) -> bool:
    # roc_auc needs every class among the rows; a metric that cannot be computed here falls back to the default.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns, then answers NaN
        try:
            return math.isfinite(scorer(model, x, y))
        except ValueError:
            return False


def permutation_importances(
    model: Any,
    x: Any,
    y: Any,
    *,
    task: Task,
    metric: str,
    seed: int,
    classes: Sequence[Any] | None = None,
    max_rows: int = MAX_ROWS,
    repeats: int | None = None,
) -> Importances | None:
    """Permutation importances of every column of the DataFrame `x` for the fitted `model` (a Pipeline taking
    the raw columns), scored with `metric`, or with the task's first default metric when `metric` cannot be
    computed on these rows. None when there are no rows or no metric can be computed.

    Each column's importance is the drop of the metric (signed so that higher is better: an error metric's rise)
    between the intact rows and the rows with that column shuffled, mean and standard deviation over `repeats`
    shuffles (default: `repeats_for` the number of columns). Sorted by mean, most important first (ties by name).
    """
    from sklearn.inspection import permutation_importance

    if len(x) == 0:
        return None
    repeats = repeats if repeats is not None else repeats_for(x.shape[1])
    x, y = _sample(x, y, max_rows, seed)
    used, scorer = metric, _scorer(metric, classes)
    if scorer is None or not _usable(scorer, model, x, y):
        used = DEFAULT_METRICS[task][0]
        scorer = _scorer(used, classes)
        if scorer is None or not _usable(scorer, model, x, y):
            return None
        log.info("importances: %s cannot be computed on %d test rows; using %s", metric, len(x), used)
    start = perf_counter()
    result = permutation_importance(
        model, x, y, scoring=scorer, n_repeats=repeats, random_state=seed, n_jobs=1
    )
    features = [
        FeatureImportance(name=str(name), mean=round(float(mean), 6), std=round(float(std), 6))
        for name, mean, std in zip(x.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    features.sort(key=lambda f: (-f.mean, f.name))
    log.info(
        "importances: %d columns x %d repeats on %d rows (%s) in %.2fs",
        len(features),
        repeats,
        len(x),
        used,
        perf_counter() - start,
    )
    return Importances(metric=used, repeats=repeats, seed=seed, rows=len(x), features=features)


def summary(importances: Importances, top: int = TOP) -> ImportanceSummary:
    """The status form: metric, repeats, rows and the `top` most important columns."""
    return ImportanceSummary(
        metric=importances.metric,
        repeats=importances.repeats,
        rows=importances.rows,
        top=importances.features[:top],
    )
