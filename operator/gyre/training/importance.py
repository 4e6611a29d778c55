"""Permutation importances: how much the model's primary metric worsens when one input column is shuffled.

Computed by the trainer on the held-out split for every estimator kind (scikit-learn's definition, as
`sklearn.inspection.permutation_importance` computes it), on the raw input columns a user knows: the whole fitted
Pipeline is scored, so a column that spec.features one-hot encodes, hashes or expands into date parts is shuffled
once, as one column, before any transform sees it.

The cost is bounded and deterministic: at most `MAX_ROWS` test rows (a sample seeded like the split) and `REPEATS`
shuffles per column, fewer (down to `MIN_REPEATS`) for wide tables so that `repeats x columns` stays within
`MAX_EVALUATIONS` where it can; fewer rows (down to `MIN_ROWS`) when `rows x repeats x columns`, the rows predicted,
would pass `MAX_PREDICTED_ROWS`. The shuffled copies are stacked into a few prediction calls. Rows, repeats and seed
are recorded in the manifest, so the numbers can be reproduced.
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
    "MAX_PREDICTED_ROWS",
    "MAX_ROWS",
    "MIN_REPEATS",
    "MIN_ROWS",
    "REPEATS",
    "TOP",
    "permutation_importances",
    "repeats_for",
    "rows_for",
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
MAX_PREDICTED_ROWS = 50_000
"""Rows predicted in all (rows x repeats x columns) beyond which fewer test rows are shuffled, down to MIN_ROWS."""
MIN_ROWS = 500
"""Fewest test rows the shuffles run on when there are more: enough to rank the columns that matter."""
BATCH_CELLS = 4_000_000
"""Most cells (rows x columns) of shuffled rows predicted in one call; bounds the memory the stacking takes."""
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


def _predict(model: Any, x: Any, proba: bool) -> Any:
    return model.predict_proba(x) if proba else model.predict(x)


def _sample(x: Any, y: Any, rows: int, seed: int) -> tuple[Any, Any]:
    if len(x) <= rows:
        return x, y
    picked = np.sort(np.random.default_rng(seed).choice(len(x), size=rows, replace=False))
    return x.iloc[picked], np.asarray(y)[picked]


def _usable(scorer: tuple[bool, _Score], model: Any, x: Any, y: Any) -> float | None:
    """The intact rows' score, None when the metric cannot be computed on them (roc_auc needs every class among
    the rows): the caller then falls back to the default metric."""
    proba, score = scorer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns, then answers NaN
        try:
            value = float(score(y, _predict(model, x, proba)))
        except ValueError:
            return None
    return value if math.isfinite(value) else None


def _shuffled_scores(
    model: Any, x: Any, y: Any, scorer: tuple[bool, _Score], repeats: int, seed: int
) -> np.ndarray:
    """scores[column, repeat]: the metric with that column shuffled.

    The shuffled copies of the rows are stacked into as few prediction calls as BATCH_CELLS allows, since a
    pipeline's cost per call (input checks, the column transformer, the library's set-up) would otherwise come
    `repeats x columns` times. Each column gets its own `repeats` permutations from one seeded generator, in
    column order, so the result depends on the seed only.
    """
    proba, score = scorer
    rng = np.random.default_rng(seed)
    n, columns = len(x), list(x.columns)
    y = np.asarray(y)
    block = repeats * n  # the rows of one column's shuffles
    per_call = max(1, BATCH_CELLS // max(block * len(columns), 1))
    scores = np.empty((len(columns), repeats))
    for start in range(0, len(columns), per_call):
        batch = columns[start : start + per_call]
        intact = np.tile(np.arange(n), repeats * len(batch))
        stacked = x.take(intact).reset_index(drop=True)
        for k, column in enumerate(batch):
            picks = intact.copy()
            picks[k * block : (k + 1) * block] = np.concatenate([rng.permutation(n) for _ in range(repeats)])
            stacked[column] = x[column].take(picks).reset_index(drop=True)
        predicted = np.asarray(_predict(model, stacked, proba))
        for k in range(len(batch)):
            for r in range(repeats):
                first = k * block + r * n
                scores[start + k, r] = score(y, predicted[first : first + n])
    return scores


def rows_for(columns: int, repeats: int, max_rows: int = MAX_ROWS) -> int:
    """Test rows to shuffle on: `max_rows`, fewer when rows x repeats x columns (the rows predicted) would pass
    MAX_PREDICTED_ROWS, but not fewer than MIN_ROWS (nor more than `max_rows`)."""
    return min(max_rows, max(MIN_ROWS, MAX_PREDICTED_ROWS // max(repeats * columns, 1)))


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
    if len(x) == 0:
        return None
    repeats = repeats if repeats is not None else repeats_for(x.shape[1])
    x, y = _sample(x, y, rows_for(x.shape[1], repeats, max_rows), seed)
    used, scorer = metric, _metric(metric, classes)
    baseline = _usable(scorer, model, x, y) if scorer is not None else None
    if scorer is None or baseline is None:
        used = DEFAULT_METRICS[task][0]
        scorer = _metric(used, classes)
        baseline = _usable(scorer, model, x, y) if scorer is not None else None
        if scorer is None or baseline is None:
            return None
        log.info("importances: %s cannot be computed on %d test rows; using %s", metric, len(x), used)
    start = perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # as in _usable: scikit-learn's metrics warn on degenerate predictions
        drops = baseline - _shuffled_scores(model, x, y, scorer, repeats, seed)
    features = [
        FeatureImportance(name=str(name), mean=round(float(mean), 6), std=round(float(std), 6))
        for name, mean, std in zip(x.columns, drops.mean(axis=1), drops.std(axis=1), strict=True)
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
