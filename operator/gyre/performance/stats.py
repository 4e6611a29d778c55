"""The task's metrics on a labelled window, their bootstrap intervals, and the comparison with the baseline.

Why this shape (docs/monitoring.md, "The statistics of the comparison"):

- Intervals are percentile bootstrap intervals (resampling rows with replacement, a seeded generator, the seed in
  the report), one method for every metric: F1 macro, log loss and R² have no simple closed form, and the same
  resamples give each metric's standard error.
- A metric degrades when the live value is worse than the baseline by more than the tolerated drop *with
  confidence*: the lower bound of the drop's interval (drop = baseline - live for higher-is-better metrics,
  live - baseline for the others) is above the tolerance. A small window has a wide interval, so it cannot
  trigger; an unchanged model has a drop near 0, below any tolerance.
- The baseline is itself an estimate on a finite test split. When its size is known, its standard error is taken
  as the live one scaled by sqrt(live rows / test rows) (the same per-row spread, measured on fewer or more rows),
  and the drop's standard error combines both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from gyre.api.driftmonitor import CLASSIFICATION_PERFORMANCE_METRICS, REGRESSION_PERFORMANCE_METRICS

__all__ = [
    "HIGHER_IS_BETTER",
    "PERFORMANCE_METRICS",
    "MetricComparison",
    "MetricEstimate",
    "baseline_metrics",
    "compare",
    "estimate_metrics",
]

PERFORMANCE_METRICS: dict[str, tuple[str, ...]] = {
    "classification": CLASSIFICATION_PERFORMANCE_METRICS,
    "regression": REGRESSION_PERFORMANCE_METRICS,
}
"""The metrics a performance check computes, by task (names as in TrainingRun status.metrics)."""

HIGHER_IS_BETTER = {
    "accuracy": True,
    "f1_macro": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    "r2": True,
}

_CHUNK_CELLS = 2_000_000
"""Resampled index cells held at once (resamples x rows): bounds memory whatever the window size."""


@dataclass(frozen=True)
class MetricEstimate:
    """A metric on the window: its value, the bootstrap interval and standard error."""

    value: float
    low: float
    high: float
    std_error: float


@dataclass(frozen=True)
class MetricComparison:
    """One metric against its baseline."""

    name: str
    value: float
    low: float
    high: float
    baseline: float | None
    drop: float | None
    """How much worse than the baseline (positive = worse), in the metric's units."""
    drop_low: float | None
    """The lower bound of the drop's interval: the drop we are confident of."""
    drop_high: float | None
    tolerance: float | None
    """The drop tolerated (absolute, in the metric's units)."""
    degraded: bool

    def as_dict(self) -> dict[str, Any]:
        """camelCase, rounded for reports."""

        def r(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else round(x, 6)

        return {
            "name": self.name,
            "value": r(self.value),
            "low": r(self.low),
            "high": r(self.high),
            "baseline": r(self.baseline),
            "drop": r(self.drop),
            "dropLow": r(self.drop_low),
            "dropHigh": r(self.drop_high),
            "tolerance": r(self.tolerance),
            "degraded": self.degraded,
        }


def _class_codes(
    labels: Sequence[Any], predictions: Sequence[Any], classes: Sequence[Any] | None
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    from gyre.performance.join import label_key

    order: dict[str | None, int] = {}
    for value in [*(classes or ()), *labels, *predictions]:
        order.setdefault(label_key(value), len(order))
    y = np.array([order[label_key(v)] for v in labels], dtype=np.int64)
    p = np.array([order[label_key(v)] for v in predictions], dtype=np.int64)
    return y, p, list(order)


def _row_log_loss(
    y_codes: np.ndarray, proba: Sequence[Sequence[float] | None], n_classes: int
) -> np.ndarray | None:
    """Per-row -log(p(true class)), clipped as scikit-learn does; None unless every row logged probabilities with
    one column per known class. A label outside the known classes had probability 0."""
    if n_classes < 2 or len(proba) != len(y_codes) or any(p is None or len(p) != n_classes for p in proba):
        return None
    matrix = np.asarray(proba, dtype=np.float64)
    matrix = matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1e-300, None)
    eps = np.finfo(np.float64).eps
    inside = y_codes < n_classes
    p_true = np.zeros(len(y_codes))
    p_true[inside] = matrix[np.nonzero(inside)[0], y_codes[inside]]
    out: np.ndarray = -np.log(np.clip(p_true, eps, 1 - eps))
    return out


def _macro_f1(y: np.ndarray, p: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """Macro F1 of each resample (rows of `idx`), over the classes present in its labels or predictions, as
    scikit-learn's f1_score(average="macro") does."""
    ys, ps = y[idx], p[idx]
    total = np.zeros(idx.shape[0])
    present = np.zeros(idx.shape[0])
    for c in range(k):
        yc, pc = ys == c, ps == c
        tp = (yc & pc).sum(axis=1)
        denom = yc.sum(axis=1) + pc.sum(axis=1)
        has = denom > 0
        total += np.where(has, 2 * tp / np.where(has, denom, 1), 0.0)
        present += has
    out: np.ndarray = total / np.maximum(present, 1)
    return out


def estimate_metrics(
    task: Literal["classification", "regression"],
    labels: Sequence[Any],
    predictions: Sequence[Any],
    *,
    probabilities: Sequence[Sequence[float] | None] | None = None,
    classes: Sequence[Any] | None = None,
    names: Sequence[str] | None = None,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, MetricEstimate]:
    """Each metric of `names` (default: the task's, PERFORMANCE_METRICS) on (labels, predictions), with its
    percentile bootstrap interval at `confidence`. Metrics that cannot be computed (log loss without logged
    probabilities, R² of a constant label) are left out. Deterministic for a given seed.
    """
    n = len(labels)
    wanted = list(names) if names is not None else list(PERFORMANCE_METRICS[task])
    if n == 0 or len(predictions) != n:
        return {}
    samplers: dict[str, Any] = {}
    if task == "classification":
        y, p, order = _class_codes(labels, predictions, classes)
        k = len(order)
        correct = (y == p).astype(np.float64)
        samplers["accuracy"] = lambda idx: correct[idx].mean(axis=1)
        samplers["f1_macro"] = lambda idx: _macro_f1(y, p, k, idx)
        if probabilities is not None and classes and "log_loss" in wanted:
            ll = _row_log_loss(y, probabilities, len(classes))
            if ll is not None:
                samplers["log_loss"] = lambda idx: ll[idx].mean(axis=1)
    else:
        yt = np.asarray(labels, dtype=np.float64)
        yp = np.asarray([np.nan if v is None else v for v in predictions], dtype=np.float64)
        ok = np.isfinite(yp)
        yt, yp = yt[ok], yp[ok]
        n = len(yt)
        if n == 0:
            return {}
        sq = (yt - yp) ** 2
        ab = np.abs(yt - yp)
        samplers["rmse"] = lambda idx: np.sqrt(sq[idx].mean(axis=1))
        samplers["mae"] = lambda idx: ab[idx].mean(axis=1)

        def r2(idx: np.ndarray) -> np.ndarray:
            ys = yt[idx]
            sst = ((ys - ys.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                out: np.ndarray = np.where(sst > 0, 1 - sq[idx].sum(axis=1) / sst, np.nan)
            return out

        if n >= 2 and np.ptp(yt) > 0:
            samplers["r2"] = r2
    chosen = [name for name in wanted if name in samplers]
    if not chosen:
        return {}
    full = np.arange(n)[None, :]
    values = {name: float(samplers[name](full)[0]) for name in chosen}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[np.ndarray]] = {name: [] for name in chosen}
    per_chunk = max(1, _CHUNK_CELLS // n)
    done = 0
    while done < resamples:
        b = min(per_chunk, resamples - done)
        idx = rng.integers(0, n, size=(b, n))
        for name in chosen:
            draws[name].append(samplers[name](idx))
        done += b
    alpha = 1 - confidence
    out: dict[str, MetricEstimate] = {}
    for name in chosen:
        reps = np.concatenate(draws[name])
        reps = reps[np.isfinite(reps)]
        if len(reps) < 2:
            low = high = values[name]
            se = 0.0
        else:
            low, high = (float(q) for q in np.quantile(reps, [alpha / 2, 1 - alpha / 2]))
            se = float(reps.std(ddof=1))
        out[name] = MetricEstimate(value=values[name], low=low, high=high, std_error=se)
    return out


def compare(
    name: str,
    estimate: MetricEstimate,
    baseline: float | None,
    *,
    rows: int,
    baseline_rows: int | None,
    relative_drop: float,
    max_drop: float | None = None,
    confidence: float = 0.95,
) -> MetricComparison:
    """Compare a window's metric with its baseline (module docstring: the rule and why).

    The tolerated drop is `max_drop` (absolute) when given, else `relative_drop` x |baseline|. Degraded iff the
    lower bound of the drop's interval exceeds the tolerance; without a baseline, never degraded.
    """
    if baseline is None or not math.isfinite(baseline):
        return MetricComparison(
            name, estimate.value, estimate.low, estimate.high, None, None, None, None, None, False
        )
    higher = HIGHER_IS_BETTER.get(name, True)
    drop = (baseline - estimate.value) if higher else (estimate.value - baseline)
    base_se = estimate.std_error * math.sqrt(rows / baseline_rows) if baseline_rows else 0.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * math.hypot(estimate.std_error, base_se)
    tolerance = max_drop if max_drop is not None else relative_drop * abs(baseline)
    drop_low, drop_high = drop - half, drop + half
    return MetricComparison(
        name=name,
        value=estimate.value,
        low=estimate.low,
        high=estimate.high,
        baseline=baseline,
        drop=drop,
        drop_low=drop_low,
        drop_high=drop_high,
        tolerance=tolerance,
        degraded=drop_low > tolerance,
    )


def baseline_metrics(metrics: Mapping[str, float] | None, names: Sequence[str]) -> dict[str, float]:
    """The baseline values among `names` that a run's metrics hold."""
    return {n: float(metrics[n]) for n in names if metrics and n in metrics and math.isfinite(metrics[n])}
