"""Metrics per slice of the test split: per value of each `spec.slices` column, with counts, and their gaps.

A slice is the test rows where one column has one value. Its metrics are the model's test metrics computed on those
rows alone (gyre.training.metrics), so a slice metric and the overall metric mean the same thing. A slice column may
be a model input or a column kept out of the features (a sensitive attribute): the trainer hands over the test rows'
raw values of every slice column either way.

Values become text (`1.0`, `north`); missing values are the slice `(missing)`, and the values beyond a column's
`maxValues` most frequent ones are pooled into `(other)`. Slices with fewer than `minCount` rows are reported but left
out of the gaps (and so of the gates): a gap is the highest minus the lowest metric among a column's large enough
slices; manifest.json's `gaps` holds, per metric, the widest over the columns.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gyre.api.slices import (
    MAX_STATUS_SLICES,
    MISSING_VALUE,
    OTHER_VALUE,
    SliceGap,
    SliceResult,
    SlicesSpec,
    SlicesStatus,
)
from gyre.api.trainingrun import LOWER_IS_BETTER
from gyre.training.manifest import SliceEntry, SliceSummary
from gyre.training.metrics import compute_metrics, known_metrics

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SliceEvaluation", "evaluate_slices", "slice_labels", "slices_spec_problem"]


@dataclass(frozen=True)
class SliceEvaluation:
    """Every slice of the test split with its metrics, and the spread of each metric per column."""

    columns: list[str]
    metrics: list[str]
    """The metrics measured per slice; the first ranks them."""
    min_count: int
    slices: list[SliceResult]
    """By column (in spec order), then largest first."""
    gaps: list[SliceGap]
    """Per metric and column with at least one slice of minCount rows."""

    @property
    def metric(self) -> str:
        """The metric that ranks slices (the first of `metrics`)."""
        return self.metrics[0]

    def manifest(self) -> SliceSummary:
        """manifest.json's `slices`: every slice, and per metric the widest gap over the columns."""
        widest: dict[str, float] = {}
        for gap in self.gaps:
            if gap.gap is not None:
                widest[gap.metric] = max(widest.get(gap.metric, gap.gap), gap.gap)
        return SliceSummary(
            columns=list(self.columns),
            metric=self.metric,
            slices=[
                SliceEntry(column=s.column, value=s.value, count=s.count, metrics=dict(s.metrics or {}))
                for s in self.slices
            ],
            gaps={m: widest[m] for m in self.metrics if m in widest},
        )

    def status(self, limit: int = MAX_STATUS_SLICES) -> SlicesStatus:
        """The bounded view for status: the `limit` worst large-enough slices by the first metric (then the
        largest small ones), and every gap."""
        metric, higher_is_worse = self.metric, self.metric in LOWER_IS_BETTER

        def badness(s: SliceResult) -> tuple[int, float, int]:
            value = (s.metrics or {}).get(metric)
            if s.count < self.min_count:
                return (2, 0.0, -s.count)
            if value is None:
                return (1, 0.0, -s.count)
            return (0, -value if higher_is_worse else value, -s.count)

        ranked = sorted(self.slices, key=badness)[:limit]
        return SlicesStatus(
            columns=list(self.columns),
            metric=metric,
            min_count=self.min_count,
            total=len(self.slices),
            slices=ranked or None,
            gaps=list(self.gaps) or None,
        )


def slice_labels(values: pd.Series, max_values: int) -> pd.Series:
    """Each row's slice value as text: the `max_values` most frequent values keep their own slice (ties by text),
    the others become `(other)`, missing ones `(missing)`."""
    import pandas as pd

    text = pd.Series(
        [MISSING_VALUE if _missing(v) else _text(v) for v in values.tolist()],
        index=values.index,
        dtype=object,
    )
    present = text[text != MISSING_VALUE]
    counts = present.value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    kept = {str(value) for value, _count in ranked[:max_values]}
    return text.where(text.isin(kept) | (text == MISSING_VALUE), OTHER_VALUE)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pd.NA-free floats
    except (TypeError, ValueError):
        return False


def _text(value: Any) -> str:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 2**53 else str(value)
    return str(value)


def evaluate_slices(
    spec: SlicesSpec,
    *,
    task: str,
    model: Any,
    x_test: pd.DataFrame,
    y_test: Any,
    slice_frame: pd.DataFrame,
    default_metrics: Sequence[str],
) -> SliceEvaluation:
    """Measure the model on every slice of the test rows.

    `slice_frame` holds the test rows' raw values of the slice columns, with x_test's index. A metric a slice
    cannot define (roc_auc with one class, r2 with one row) is absent from that slice and from its gaps.
    """
    import numpy as np

    metrics = spec.metric_names(default_metrics)
    y = np.asarray(y_test)
    slices: list[SliceResult] = []
    for column in spec.columns:
        labels = slice_labels(slice_frame[column], spec.max_values)
        counts = labels.value_counts()
        order = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
        for value, count in order:
            mask = (labels == value).to_numpy()
            with warnings.catch_warnings():
                # A one-class or one-row slice leaves some metrics undefined; they are dropped, not warned about.
                warnings.simplefilter("ignore")
                measured = compute_metrics(task, model, x_test[mask], y[mask], metrics)
            values = {m: measured[m] for m in metrics if m in measured and math.isfinite(measured[m])}
            slices.append(
                SliceResult(column=column, value=str(value), count=int(count), metrics=values or None)
            )
    return SliceEvaluation(
        columns=list(spec.columns),
        metrics=metrics,
        min_count=spec.min_count,
        slices=slices,
        gaps=_gaps(slices, spec.columns, metrics, spec.min_count),
    )


def _gaps(
    slices: Sequence[SliceResult], columns: Sequence[str], metrics: Sequence[str], min_count: int
) -> list[SliceGap]:
    out: list[SliceGap] = []
    for metric in metrics:
        for column in columns:
            scored = [
                (s.value, (s.metrics or {})[metric])
                for s in slices
                if s.column == column and s.count >= min_count and metric in (s.metrics or {})
            ]
            if not scored:
                continue
            low = min(scored, key=lambda item: (item[1], item[0]))
            high = max(scored, key=lambda item: (item[1], item[0]))
            out.append(
                SliceGap(
                    metric=metric,
                    column=column,
                    gap=high[1] - low[1] if len(scored) > 1 else None,
                    lowest=low[0],
                    lowest_score=low[1],
                    highest=high[0],
                    highest_score=high[1],
                )
            )
    return out


def slices_spec_problem(spec: SlicesSpec, *, task: str, default_metrics: Sequence[str]) -> str | None:
    """Why spec.slices cannot be measured for this task (a metric the task does not know), or None."""
    known = known_metrics(task)
    unknown = [m for m in spec.metric_names(default_metrics) if m not in known]
    if unknown:
        return f"spec.slices: {', '.join(unknown)} is not a {task} metric; known: {', '.join(known)}"
    return None
