"""TrainingRun `spec.slices`: metrics per value of chosen columns (a region, a sensitive attribute), and gates on them.

The trainer measures every slice on the test split (gyre.training.slices); manifest.json keeps all of them, the
status the worst few and the spread of each metric across each column's slices. Its gates are evaluated by the
operator with the same machinery as spec.gates (gyre.api.gates.evaluate_slice_gates), so the Validated condition names the slice gate
that failed, the column, and the two slices that make the gap.

A slice with fewer than `minCount` test rows is reported (with its count) but left out of gaps and gates: its metric
is too noisy to block a model, and a gate never passes on the strength of a slice too small to measure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from gyre.api.common import METRIC_PATTERN, ApiModel, StatusModel

__all__ = [
    "MAX_STATUS_SLICES",
    "MISSING_VALUE",
    "OTHER_VALUE",
    "SliceGap",
    "SliceGate",
    "SliceResult",
    "SlicesSpec",
    "SlicesStatus",
]

MAX_STATUS_SLICES = 8
"""How many slices status (and the termination message) carries; manifest.json has them all."""
OTHER_VALUE = "(other)"
"""The slice of a column's values beyond its `maxValues` most frequent ones."""
MISSING_VALUE = "(missing)"
"""The slice of rows where the column is empty."""

_Column = Annotated[str, Field(min_length=1, max_length=128)]
_Metric = Annotated[str, Field(pattern=METRIC_PATTERN, max_length=64)]


class SliceGate(ApiModel):
    """A bound on a metric across slices: on the gap between the best and the worst slice, or on every slice."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.maxGap) || has(self.min) || has(self.max)",
                    "message": "a slice gate needs maxGap, min, max or several",
                },
                {
                    "rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
                    "message": "slice gate min must not be greater than max",
                },
            ]
        }
    )

    metric: _Metric
    """A metric of spec.slices.metrics (e.g. accuracy, recall_macro, rmse)."""
    max_gap: float | None = Field(default=None, ge=0)
    """The best and the worst slice of any one column may differ by at most this much (e.g. 0.05 accuracy)."""
    min: float | None = None
    """Every slice must reach at least this (e.g. accuracy >= 0.8 in every region)."""
    max: float | None = None
    """Every slice must stay at most this (error metrics: rmse <= 10 in every region)."""

    @model_validator(mode="after")
    def _some_bound(self) -> SliceGate:
        if self.max_gap is None and self.min is None and self.max is None:
            raise ValueError("a slice gate needs maxGap, min, max or several")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("slice gate min must not be greater than max")
        return self


class SlicesSpec(ApiModel):
    """Columns whose values split the test rows into slices, each measured on its own."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.excludeFromFeatures) || self.excludeFromFeatures.all(c, c in self.columns)",
                    "message": "excludeFromFeatures may only name columns listed in slices.columns",
                },
                {
                    "rule": "!has(self.gates) || !has(self.metrics) || self.gates.all(g, g.metric in self.metrics)",
                    "message": "a slice gate's metric must be one of slices.metrics",
                },
            ]
        }
    )

    columns: list[_Column] = Field(
        min_length=1, max_length=4, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Columns to slice by (e.g. region, sex). Each may be a model input or, with excludeFromFeatures, a column the
    model never sees."""
    exclude_from_features: list[_Column] | None = Field(
        default=None, max_length=4, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Slice columns that must not be features (a sensitive attribute): left out of the default feature set, and
    refused if spec.features names them."""
    metrics: list[_Metric] | None = Field(
        default=None, min_length=1, max_length=4, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Metrics measured per slice; default: the first of spec.metrics (or of the task's defaults). The first ranks
    the slices in status and is manifest.json's `slices.metric`."""
    min_count: int = Field(default=30, ge=1, le=1_000_000)
    """Slices with fewer test rows are reported but left out of gaps and gates."""
    max_values: int = Field(default=20, ge=1, le=100)
    """At most this many slices per column, its most frequent values; the rest form one slice, `(other)`."""
    gates: list[SliceGate] | None = Field(default=None, max_length=8)
    """Bounds on the slices' metrics; a model that fails one is not validated (never promoted)."""

    @model_validator(mode="after")
    def _consistent(self) -> SlicesSpec:
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("slices.columns lists a column twice")
        stray = [c for c in self.exclude_from_features or [] if c not in self.columns]
        if stray:
            raise ValueError(f"excludeFromFeatures names {', '.join(stray)}, not in slices.columns")
        if self.metrics is not None:
            unmeasured = [g.metric for g in self.gates or [] if g.metric not in self.metrics]
            if unmeasured:
                raise ValueError(
                    f"slice gate metric(s) {', '.join(unmeasured)} are not in slices.metrics "
                    f"({', '.join(self.metrics)})"
                )
        return self

    def metric_names(self, default: Sequence[str]) -> list[str]:
        """The metrics measured per slice: `metrics`, else the first default metric, plus any gated metric."""
        names = list(self.metrics or default[:1])
        names.extend(g.metric for g in self.gates or [] if g.metric not in names)
        return names


class SliceResult(StatusModel):
    """One slice: the test rows where `column` has `value`."""

    column: str
    """The slice column."""
    value: str
    """The column's value, as text; `(other)` pools the values beyond maxValues, `(missing)` the empty ones."""
    count: int
    """Test rows in the slice."""
    metrics: dict[str, float] | None = None
    """The slice's metrics (a metric the slice cannot define, such as roc_auc with one class, is absent)."""


class SliceGap(StatusModel):
    """The spread of one metric across one column's slices with at least minCount test rows."""

    metric: str
    """The metric."""
    column: str
    """The slice column."""
    gap: float | None = None
    """highestScore - lowestScore; absent when fewer than two slices are large enough."""
    lowest: str
    """The slice value with the lowest metric."""
    lowest_score: float
    """Its metric."""
    highest: str
    """The slice value with the highest metric."""
    highest_score: float
    """Its metric."""


class SlicesStatus(StatusModel):
    """Metrics per slice of the test split (all of them in manifest.json under `slices`)."""

    columns: list[str]
    """The slice columns."""
    metric: str
    """The metric that orders `slices`, worst first."""
    min_count: int
    """Slices with fewer test rows are left out of gaps and gates."""
    total: int
    """How many slices were measured (manifest.json lists them all)."""
    slices: list[SliceResult] | None = None
    """The worst slices (at most 8) with at least minCount rows, then the largest smaller ones."""
    gaps: list[SliceGap] | None = None
    """Per metric and column: the lowest and highest slice and the gap between them."""
