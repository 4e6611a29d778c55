"""Metrics on the held-out split, by task."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["CLASSIFICATION_METRICS", "REGRESSION_METRICS", "MetricError", "compute_metrics", "known_metrics"]

CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "f1_weighted",
    "precision_macro",
    "recall_macro",
    "roc_auc",
    "log_loss",
)
REGRESSION_METRICS = ("r2", "rmse", "mse", "mae", "median_ae")


class MetricError(ValueError):
    """A requested metric is unknown for the task."""


def known_metrics(task: str) -> tuple[str, ...]:
    """Every metric Gyre computes for a task."""
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS


def _classification(model: Any, x: Any, y: Any) -> dict[str, float]:
    from sklearn import metrics as m

    predicted = model.predict(x)
    out = {
        "accuracy": m.accuracy_score(y, predicted),
        "balanced_accuracy": m.balanced_accuracy_score(y, predicted),
        "f1_macro": m.f1_score(y, predicted, average="macro", zero_division=0),
        "f1_weighted": m.f1_score(y, predicted, average="weighted", zero_division=0),
        "precision_macro": m.precision_score(y, predicted, average="macro", zero_division=0),
        "recall_macro": m.recall_score(y, predicted, average="macro", zero_division=0),
    }
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(x))
        classes = list(model.classes_)
        out["log_loss"] = m.log_loss(y, proba, labels=classes)
        present = set(np.asarray(y).tolist())
        # roc_auc needs every class in the test split (binary: both).
        if len(classes) == 2 and len(present) == 2:
            out["roc_auc"] = m.roc_auc_score(y, proba[:, 1])
        elif len(classes) > 2 and present == set(classes):
            out["roc_auc"] = m.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)
    return {k: float(v) for k, v in out.items()}


def _regression(model: Any, x: Any, y: Any) -> dict[str, float]:
    from sklearn import metrics as m

    predicted = model.predict(x)
    mse = m.mean_squared_error(y, predicted)
    out = {
        "r2": m.r2_score(y, predicted),
        "rmse": math.sqrt(mse),
        "mse": mse,
        "mae": m.mean_absolute_error(y, predicted),
        "median_ae": m.median_absolute_error(y, predicted),
    }
    return {k: float(v) for k, v in out.items()}


def compute_metrics(
    task: str, model: Any, x: Any, y: Any, requested: Sequence[str] | None = None
) -> dict[str, float]:
    """Every metric of the task on (x, y); non-finite values are left out (JSON cannot hold them).

    `requested` names are validated (MetricError for a name the task does not know) and listed first, so the
    first requested metric is the first key.
    """
    known = known_metrics(task)
    unknown = [name for name in requested or () if name not in known]
    if unknown:
        raise MetricError(f"unknown {task} metric(s) {', '.join(unknown)}; known: {', '.join(known)}")
    values = _classification(model, x, y) if task == "classification" else _regression(model, x, y)
    order = list(dict.fromkeys([*(requested or ()), *known]))
    return {name: values[name] for name in order if name in values and math.isfinite(values[name])}
