"""Metrics on the held-out split, by task."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "MetricError",
    "compute_metrics",
    "known_metrics",
    "metrics_from_predictions",
    "predict_test",
]

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


def _classification(y: Any, predicted: Any, proba: Any, classes: Sequence[Any] | None) -> dict[str, float]:
    from sklearn import metrics as m

    out = {
        "accuracy": m.accuracy_score(y, predicted),
        "balanced_accuracy": m.balanced_accuracy_score(y, predicted),
        "f1_macro": m.f1_score(y, predicted, average="macro", zero_division=0),
        "f1_weighted": m.f1_score(y, predicted, average="weighted", zero_division=0),
        "precision_macro": m.precision_score(y, predicted, average="macro", zero_division=0),
        "recall_macro": m.recall_score(y, predicted, average="macro", zero_division=0),
    }
    if proba is not None and classes is not None:
        classes = list(classes)
        out["log_loss"] = m.log_loss(y, proba, labels=classes)
        auc = _roc_auc(y, proba, classes)
        if auc is not None:
            out["roc_auc"] = auc
    return {k: float(v) for k, v in out.items()}


def _roc_auc(y: Any, proba: Any, classes: Sequence[Any]) -> float | None:
    """ROC AUC (one-vs-rest macro for more than two classes), or None when a class is absent from `y`."""
    from sklearn import metrics as m

    classes = list(classes)
    present = set(np.asarray(y).tolist())
    # roc_auc needs every class in the test split (binary: both).
    if len(classes) == 2 and len(present) == 2:
        return float(m.roc_auc_score(y, proba[:, 1]))
    if len(classes) > 2 and present == set(classes):
        return float(m.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))
    return None


def _regression(y: Any, predicted: Any) -> dict[str, float]:
    from sklearn import metrics as m

    mse = m.mean_squared_error(y, predicted)
    out = {
        "r2": m.r2_score(y, predicted),
        "rmse": math.sqrt(mse),
        "mse": mse,
        "mae": m.mean_absolute_error(y, predicted),
        "median_ae": m.median_absolute_error(y, predicted),
    }
    return {k: float(v) for k, v in out.items()}


def predict_test(task: str, model: Any, x: Any) -> tuple[Any, Any, list[Any] | None]:
    """(predictions, probabilities or None, classes or None) of `model` on `x`: what every metric is computed
    from, so the trainer predicts its test rows once for the metrics, the card's intervals and the ONNX check."""
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if task == "classification" and type(final).__name__ in ("XGBClassifier", "LGBMClassifier"):
        # Both libraries' predict is the class of the highest probability (XGBoost's binary `p > 0.5` picks the
        # same class as argmax over [1 - p, p], ties included), so one prediction serves both.
        proba = np.asarray(model.predict_proba(x))
        return np.asarray(model.classes_)[proba.argmax(axis=1)], proba, list(model.classes_)
    predicted = model.predict(x)
    if task == "classification" and hasattr(model, "predict_proba"):
        return predicted, np.asarray(model.predict_proba(x)), list(model.classes_)
    return predicted, None, None


def compute_metrics(
    task: str,
    model: Any,
    x: Any,
    y: Any,
    requested: Sequence[str] | None = None,
    *,
    predictions: tuple[Any, Any, list[Any] | None] | None = None,
) -> dict[str, float]:
    """Every metric of the task on (x, y); non-finite values are left out (JSON cannot hold them).

    `requested` names are validated (MetricError for a name the task does not know) and listed first, so the
    first requested metric is the first key. `predictions` (predict_test's on `x`) saves predicting again.
    """
    known = known_metrics(task)
    unknown = [name for name in requested or () if name not in known]
    if unknown:
        raise MetricError(f"unknown {task} metric(s) {', '.join(unknown)}; known: {', '.join(known)}")
    predicted, proba, classes = predictions if predictions is not None else predict_test(task, model, x)
    values = metrics_from_predictions(task, y, predicted, proba, classes)
    order = list(dict.fromkeys([*(requested or ()), *known]))
    return {name: values[name] for name in order if name in values and math.isfinite(values[name])}


def metrics_from_predictions(
    task: str, y: Any, predicted: Any, proba: Any = None, classes: Sequence[Any] | None = None
) -> dict[str, float]:
    """Every metric of the task from predictions already made (so resampling never predicts again).

    `proba` (rows x classes, in the order of `classes`) adds log_loss and roc_auc for classifiers.
    """
    if task == "classification":
        return _classification(y, predicted, proba, classes)
    return _regression(y, predicted)
