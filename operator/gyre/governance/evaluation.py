"""What the model card says about a trained model beyond its point metrics, computed in the training pod.

Confidence intervals: the percentile bootstrap. The test rows' predictions are made once; each metric is then
recomputed on `resamples` resamples of those rows drawn with replacement by a seeded generator (the seed is
recorded, so the intervals can be recomputed exactly), and the interval spans the middle `level` of the resampled
values. One method for every metric (accuracy, F1, AUC, RMSE, ...), where closed forms such as Wilson's exist only
for proportions. With few test rows the intervals are wide: that is what they are for.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gyre.api.dataset import ColumnKind
from gyre.training.manifest import (
    ClassMetrics,
    ColumnSummary,
    DataSummary,
    Evaluation,
    FeatureSpec,
    MetricInterval,
)

if TYPE_CHECKING:
    import pandas as pd

    from gyre.training.trainer import TrainingResult

__all__ = ["DEFAULT_RESAMPLES", "TOP_VALUES", "bootstrap_intervals", "evaluate", "summarise_data"]

log = logging.getLogger(__name__)

DEFAULT_RESAMPLES = 1000
"""Enough for 95% percentile bounds stable at two decimals; resamples are scored in blocks (numpy, no Python loop
per resample)."""
TOP_VALUES = 5


class _Resampler:
    """The task's metrics on any resample of the test rows, from per-row quantities computed once.

    sklearn's metric functions cost milliseconds per call in input validation alone, so recomputing eight of them
    on hundreds of resamples would take longer than training. Every metric follows from the resample's confusion
    matrix (classification), its score ranks (roc_auc) or its errors (regression), with sklearn's definitions:
    macro averages over the labels present in the resample, zero for an undefined precision or recall,
    probabilities clipped at the float epsilon for log_loss, r2 of 1 (perfect) or 0 on a constant target; roc_auc
    with the second class positive (binary) or as the unweighted mean of each class against the rest, only when
    every class is present. The scores are ranked once, so a resample's roc_auc costs a bincount, not a sort. A unit
    test holds these equal to gyre.training.metrics on the full test split.
    """

    def __init__(self, task: str, y: Any, predicted: Any, proba: Any, classes: Sequence[Any] | None) -> None:
        self.task, self.classes, self.proba = task, list(classes) if classes is not None else None, proba
        self.y, self.predicted = np.asarray(y), np.asarray(predicted)
        if task == "classification":
            self.labels = np.unique(np.concatenate([self.y, self.predicted]))
            self.true_index = np.searchsorted(self.labels, self.y)
            self.pred_index = np.searchsorted(self.labels, self.predicted)
            self.row_loss = None
            self.auc_columns: list[tuple[Any, Any, int]] = []
            if proba is not None and self.classes is not None:
                # Binary: the second class against the first; more classes: each against the rest.
                scored = [(1, self.classes[1])] if len(self.classes) == 2 else list(enumerate(self.classes))
                p = np.asarray(proba)
                for k, c in scored:
                    distinct, group = np.unique(p[:, k], return_inverse=True)
                    self.auc_columns.append((self.y == c, group, len(distinct)))
            self.confusion_cells = self._confusion_cells()
            if proba is not None and self.classes is not None and set(self.y.tolist()) <= set(self.classes):
                column = np.array([self.classes.index(v) for v in self.y.tolist()])
                p = np.asarray(proba, dtype="float64")
                eps = np.finfo(p.dtype).eps
                self.row_loss = -np.log(np.clip(p[np.arange(len(column)), column], eps, 1 - eps))
        else:
            self.y = self.y.astype("float64")
            self.errors = self.y - self.predicted.astype("float64")

    def _confusion_cells(self) -> Any:
        """Binary, with the prediction a function of the score (as a threshold on it is): the confusion cell of each
        roc_auc count key; else None. A resample's counts by key then give its confusion matrix too, the same
        integers that another gather and bincount of its rows would give."""
        if len(self.auc_columns) != 1 or self.classes is None or list(self.labels) != sorted(self.classes):
            return None
        positive, group, groups = self.auc_columns[0]
        if not np.array_equal(positive, self.true_index == 1):
            return None
        by_group = np.zeros(groups, dtype=np.int64)
        by_group[group] = self.pred_index
        if not np.array_equal(by_group[group], self.pred_index):
            return None
        # One row per bincount key (2 x group + positive), one column per confusion cell (2 x true + predicted).
        cells = np.zeros((2 * groups, 4), dtype=np.int64)
        keys = np.arange(2 * groups)
        cells[keys, 2 * (keys % 2) + by_group[keys // 2]] = 1
        return cells

    def batch(self, rows: Any, *, auc: bool = True) -> dict[str, Any]:
        """The metrics on each row of `rows` (resamples x test rows), one array per metric, NaN where a resample
        has no value; equal to scoring each resample on its own, to the last bit (a unit test holds this).

        Every reduction is over a contiguous row, which numpy sums exactly as it sums the one resample's array.
        """
        if self.task == "classification":
            return self._classification_batch(rows, auc)
        e, y = self.errors[rows], self.y[rows]
        squared = e**2
        sse = np.sum(squared, axis=1)
        sst = np.sum((y - y.mean(axis=1, keepdims=True)) ** 2, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(sst > 0, 1 - sse / sst, np.where(sse == 0, 1.0, 0.0))
        absolute = np.abs(e)
        mse = np.mean(squared, axis=1)
        return {
            "r2": r2,
            "rmse": np.sqrt(mse),
            "mse": mse,
            "mae": absolute.mean(axis=1),
            "median_ae": np.median(absolute, axis=1),
        }

    def _classification_batch(self, rows: Any, auc: bool) -> dict[str, Any]:
        k, count, n = len(self.labels), rows.shape[0], rows.shape[1]
        # auc_columns is empty without probabilities and classes.
        group_counts = (
            [
                _group_counts(rows, 2 * group + positive, groups)
                for positive, group, groups in self.auc_columns
            ]
            if auc
            else []
        )
        if group_counts and self.confusion_cells is not None:
            cm = (group_counts[0].reshape(count, -1) @ self.confusion_cells).reshape(count, 2, 2)
        else:
            cells = (self.true_index * k + self.pred_index)[rows] + (np.arange(count) * (k * k))[:, None]
            cm = np.bincount(cells.ravel(), minlength=count * k * k).reshape(count, k, k)
        diagonal = np.arange(k)
        tp, support, predicted = cm[:, diagonal, diagonal].astype("float64"), cm.sum(axis=2), cm.sum(axis=1)
        present = (support + predicted) > 0
        precision = np.divide(tp, predicted, out=np.zeros((count, k)), where=predicted > 0)
        recall = np.divide(tp, support, out=np.zeros((count, k)), where=support > 0)
        f1 = np.divide(2 * tp, support + predicted, out=np.zeros((count, k)), where=present)
        out = {
            "accuracy": tp.sum(axis=1) / n,
            "balanced_accuracy": _masked_mean(recall, support > 0),
            "f1_macro": _masked_mean(f1, present),
            "f1_weighted": (f1 * support).sum(axis=1) / support.sum(axis=1),
            "precision_macro": _masked_mean(precision, present),
            "recall_macro": _masked_mean(recall, present),
        }
        if self.row_loss is not None:
            out["log_loss"] = self.row_loss[rows].mean(axis=1)
        if group_counts:
            aucs = np.stack([_auc_of_counts(counts) for counts in group_counts], axis=1)
            out["roc_auc"] = aucs.mean(axis=1)  # NaN when a resample misses a class
        return out


def _masked_mean(values: Any, mask: Any) -> Any:
    """Per row, the mean of `values` where `mask` holds (NaN where it never does), computed on the same
    contiguous arrays as `values[i][mask[i]].mean()`: rows grouped by their mask, usually one group."""
    out = np.full(len(values), np.nan)
    patterns, inverse = np.unique(mask, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    for p, pattern in enumerate(patterns):
        if pattern.any():
            chosen = inverse == p
            # Contiguous rows: numpy then sums each row as it sums a 1-d array (a column-major copy would not).
            out[chosen] = np.ascontiguousarray(values[chosen][:, pattern]).mean(axis=1)
    return out


def _group_counts(rows: Any, key: Any, groups: int) -> Any:
    """For each resample of `rows`, its rows counted by score group and class: (resamples, groups, 2), negatives
    first. `key` is 2 x the row's score group + 1 for a positive row, so one bincount counts both classes."""
    count = rows.shape[0]
    index = key[rows] + (np.arange(count) * (2 * groups))[:, None]
    return np.bincount(index.ravel(), minlength=count * 2 * groups).reshape(count, groups, 2)


def _auc_of_counts(counts: Any) -> Any:
    """ROC AUC of each resample from its group counts (NaN without both classes): the share of (positive,
    negative) pairs ranked right, ties counting half, as the Mann-Whitney statistic. Every sum is of whole numbers,
    so this equals the rank-sum formula with mean ranks to the last bit."""
    neg, pos = counts[:, :, 0], counts[:, :, 1]
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    below = np.cumsum(neg, axis=1) - neg
    ranked = np.einsum("ij,ij->i", pos, below).astype("float64")
    ranked += 0.5 * np.einsum("ij,ij->i", pos, neg).astype("float64")
    pairs = n_pos.astype("float64") * n_neg.astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), ranked / pairs, np.nan)


BATCH_CELLS = 1 << 21
"""Resamples are drawn and scored in blocks of about this many (resample, row) cells, to bound memory."""


def bootstrap_intervals(
    task: str,
    y: Any,
    predicted: Any,
    proba: Any,
    classes: Sequence[Any] | None,
    metrics: Sequence[str],
    *,
    resamples: int,
    seed: int,
    level: float = 0.95,
) -> dict[str, MetricInterval]:
    """Percentile-bootstrap intervals of `metrics` over resamples of the test rows (see the module docstring).

    A resample where a metric cannot be computed (roc_auc without both classes) does not count for that metric; a
    metric with no computed resample has no interval.
    """
    resampler = _Resampler(task, y, predicted, proba, classes)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[Any]] = {name: [] for name in metrics}
    n = len(resampler.y)
    want_auc = "roc_auc" in parts
    block = max(1, BATCH_CELLS // max(n, 1))  # a roc_auc column has at most n distinct scores
    done = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resample missing a class is expected here
        while done < resamples:
            # One draw of (count, n) is the same stream as `count` draws of n, so blocks change no value.
            count = min(block, resamples - done)
            values = resampler.batch(rng.integers(0, n, (count, n)), auc=want_auc)
            for name in metrics:
                if name in values:
                    column = np.asarray(values[name], dtype="float64")
                    parts[name].append(column[np.isfinite(column)])
            done += count
    samples = {name: np.concatenate(chunks) if chunks else np.empty(0) for name, chunks in parts.items()}
    tail = (1 - level) / 2 * 100
    return {
        name: MetricInterval(
            low=float(np.percentile(values, tail)), high=float(np.percentile(values, 100 - tail))
        )
        for name, values in samples.items()
        if len(values)
    }


def evaluate(
    result: TrainingResult, *, resamples: int = DEFAULT_RESAMPLES, level: float = 0.95
) -> Evaluation:
    """Intervals of the run's metrics and, for a classifier, per-class metrics and the confusion matrix."""
    from gyre.training.metrics import predict_test

    pipeline, y = result.pipeline, np.asarray(result.y_test)
    made = result.test_predictions or predict_test(result.task, pipeline, result.x_test)
    predicted, proba = np.asarray(made[0]), made[1]
    classes = list(pipeline.classes_) if result.task == "classification" else None
    reported = [name for name in result.metrics if name != "best_iteration"]
    intervals = bootstrap_intervals(
        result.task,
        y,
        predicted,
        proba,
        classes,
        reported,
        resamples=resamples,
        seed=result.seed,
        level=level,
    )
    evaluation = Evaluation(
        rows_train=result.rows_train,
        rows_test=result.rows_test,
        confidence_level=level,
        resamples=resamples,
        seed=result.seed,
        intervals=intervals,
    )
    if classes is not None:
        from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

        precision, recall, f1, support = precision_recall_fscore_support(
            y, predicted, labels=classes, zero_division=0
        )
        evaluation.classes = [str(c) for c in classes]
        evaluation.per_class = [
            ClassMetrics(label=str(c), precision=float(p), recall=float(r), f1=float(f), support=int(s))
            for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
        ]
        evaluation.confusion_matrix = confusion_matrix(y, predicted, labels=classes).astype(int).tolist()
    return evaluation


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def summarise_data(
    frame: pd.DataFrame,
    features: Sequence[FeatureSpec],
    target: str,
    task: str,
    kinds: Mapping[str, ColumnKind],
) -> DataSummary:
    """The features and the target of `frame`, one ColumnSummary each (Gyre's reference profile, shortened).

    A column the profiler cannot summarise, or timestamps (fed to a dateParts transform), is listed with its
    missing rate and distinct count only.
    """
    from pandas.api.types import is_datetime64_any_dtype

    from gyre.data.errors import DataError
    from gyre.drift.profile import ProfileError, build_profile

    columns = [(f.name, f.kind) for f in features]
    if target in frame.columns:
        default = ColumnKind.CATEGORICAL if task == "classification" else ColumnKind.NUMERIC
        columns.append((target, kinds.get(target) or default))

    def basic(series: pd.Series, name: str, kind: ColumnKind) -> ColumnSummary:
        return ColumnSummary(
            name=name,
            kind=kind,
            missing_rate=float(series.isna().mean()) if len(series) else 0.0,
            distinct=int(series.nunique(dropna=True)),
        )

    summaries = []
    for name, kind in columns:
        series = frame[name]
        if is_datetime64_any_dtype(series.dtype):
            # The profiler would read timestamps as nanosecond integers (and NaT as the smallest one).
            summaries.append(basic(series, name, kind))
            continue
        try:
            col = build_profile(frame[[name]], {name: kind}).columns[name]
        except (ProfileError, DataError, TypeError, ValueError) as exc:
            log.info("column %s: no profile for the model card: %s", name, exc)
            summaries.append(basic(series, name, kind))
            continue
        top = [str(v) for v in (col.values or [])[:TOP_VALUES]] if kind != ColumnKind.NUMERIC else None
        summaries.append(
            ColumnSummary(
                name=name,
                kind=kind,
                missing_rate=col.missing_rate,
                distinct=col.n_unique,
                mean=_finite(col.mean),
                std=_finite(col.std),
                min=_finite(col.min),
                max=_finite(col.max),
                top=top or None,
            )
        )
    return DataSummary(rows=len(frame), columns=summaries)
