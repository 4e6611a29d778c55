"""One performance check: the joined window's metrics against the served model's test metrics.

`check_joined` decides on rows already joined (pure); `check_feedback` reads the store first. The same function
runs in the DriftMonitor's check Job and in `gyre perf check`.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from gyre.api.driftmonitor import PerformanceWindow
from gyre.performance.join import JoinedWindow, Task, join_feedback
from gyre.performance.stats import PERFORMANCE_METRICS, MetricComparison, compare, estimate_metrics

if TYPE_CHECKING:
    from gyre.store.store import ArtifactStore
    from gyre.training.manifest import ModelManifest

__all__ = [
    "Baseline",
    "PerformanceConfig",
    "PerformanceConfigError",
    "PerformanceReport",
    "Verdict",
    "check_feedback",
    "check_joined",
]

Verdict = Literal["degraded", "ok", "insufficient_data"]


class PerformanceConfigError(ValueError):
    """The configuration asks for something the model cannot give (a metric of the other task)."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Baseline(_Model):
    """What the served model scored on its test split: the comparison's reference."""

    task: Task
    metrics: dict[str, float]
    classes: list[Any] | None = None
    """Target classes in predict_proba column order (classification)."""
    test_rows: int | None = None
    """Size of the test split the metrics were measured on; None when unknown (its uncertainty is then
    ignored)."""
    source: str | None = None
    """Where the baseline came from (a TrainingRun, a manifest path)."""

    @classmethod
    def from_manifest(cls, manifest: ModelManifest, *, source: str | None = None) -> Baseline:
        """The baseline a model's manifest.json records."""
        return cls(
            task=manifest.task,
            metrics=dict(manifest.metrics),
            classes=list(manifest.target.classes) if manifest.target.classes else None,
            test_rows=manifest.test_rows,
            source=source,
        )


class PerformanceConfig(_Model):
    """How a check decides; the same fields as DriftMonitor spec.performance (gyre.api.driftmonitor)."""

    metrics: list[str] | None = None
    """Metrics to compute; default: every metric of the task (accuracy, f1_macro, log_loss; rmse, mae, r2)."""
    relative_drop: float = Field(default=0.05, ge=0, le=10)
    """Tolerated drop as a fraction of |baseline| (0.05: 5 % worse)."""
    max_drop: dict[str, float] = Field(default_factory=dict)
    """Per-metric tolerated drop in the metric's own units; overrides relative_drop for that metric."""
    min_labelled_rows: int = Field(default=PerformanceWindow().min_labelled_rows, ge=1)
    """Fewer joined rows than this give insufficient_data."""
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    resamples: int = Field(default=1000, ge=100, le=100_000)
    seed: int = 0

    @field_validator("max_drop")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if not (math.isfinite(v) and v >= 0)]
        if bad:
            raise ValueError(f"max_drop must be finite and >= 0 (metrics {bad})")
        return value

    def resolve_metrics(self, task: Task) -> list[str]:
        """The metric names for `task`; PerformanceConfigError when one belongs to no or another task."""
        known = PERFORMANCE_METRICS[task]
        names = list(self.metrics) if self.metrics else list(known)
        unknown = [n for n in names if n not in known] + [n for n in self.max_drop if n not in known]
        if unknown:
            raise PerformanceConfigError(
                f"metric(s) {', '.join(dict.fromkeys(unknown))} are not {task} metrics; known: {', '.join(known)}"
            )
        return names


class PerformanceReport(_Model):
    """The outcome of one check (JSON in the store; its summary goes into status)."""

    verdict: Verdict
    message: str
    task: Task
    labelled_rows: int
    min_labelled_rows: int
    metrics: list[dict[str, Any]] = Field(default_factory=list)
    """MetricComparison.as_dict() of each metric computed."""
    degraded_metrics: list[str] = Field(default_factory=list)
    join: dict[str, Any] = Field(default_factory=dict)
    """JoinStats.as_dict(): rows, labels, unknown ids, duplicates, wrong types, label delay."""
    confidence: float
    resamples: int
    seed: int
    baseline_test_rows: int | None = None
    baseline_source: str | None = None

    def to_json(self) -> str:
        """Indented JSON, camelCase keys."""
        return orjson.dumps(self.model_dump(by_alias=True), option=orjson.OPT_INDENT_2).decode()


def check_joined(
    joined: JoinedWindow, baseline: Baseline, config: PerformanceConfig | None = None
) -> PerformanceReport:
    """Decide on a joined window: insufficient_data below min_labelled_rows (or when no metric has a baseline),
    degraded when any metric is worse than its baseline beyond the tolerance with confidence, else ok.

    Raises PerformanceConfigError when the configured metrics do not fit the baseline's task.
    """
    config = config or PerformanceConfig()
    names = config.resolve_metrics(baseline.task)
    n = len(joined)
    estimates = estimate_metrics(
        baseline.task,
        joined.labels,
        joined.predictions,
        probabilities=joined.probabilities,
        classes=baseline.classes,
        names=names,
        confidence=config.confidence,
        resamples=config.resamples,
        seed=config.seed,
    )
    comparisons: list[MetricComparison] = [
        compare(
            name,
            estimate,
            baseline.metrics.get(name),
            rows=n,
            baseline_rows=baseline.test_rows,
            relative_drop=config.relative_drop,
            max_drop=config.max_drop.get(name),
            confidence=config.confidence,
        )
        for name, estimate in estimates.items()
    ]

    def report(verdict: Verdict, message: str, degraded: list[str] | None = None) -> PerformanceReport:
        return PerformanceReport(
            verdict=verdict,
            message=message,
            task=baseline.task,
            labelled_rows=n,
            min_labelled_rows=config.min_labelled_rows,
            metrics=[c.as_dict() for c in comparisons],
            degraded_metrics=degraded or [],
            join=joined.stats.as_dict(),
            confidence=config.confidence,
            resamples=config.resamples,
            seed=config.seed,
            baseline_test_rows=baseline.test_rows,
            baseline_source=baseline.source,
        )

    if n < config.min_labelled_rows:
        stats = joined.stats
        why = f"{n} labelled rows in the window, fewer than minLabelledRows {config.min_labelled_rows}"
        if stats.predictions_without_id:
            why += f" ({stats.predictions_without_id} logged predictions carry no id to join labels to)"
        return report("insufficient_data", why)
    compared = [c for c in comparisons if c.baseline is not None]
    if not compared:
        return report("insufficient_data", f"the served model records no baseline for {', '.join(names)}")
    degraded = [c for c in compared if c.degraded]
    if degraded:
        message = "; ".join(
            f"{c.name} {c.value:.4g} vs baseline {c.baseline:.4g} (worse by at least {c.drop_low:.3g}, "
            f"tolerated {c.tolerance:.3g})"
            for c in degraded
            if c.baseline is not None and c.drop_low is not None and c.tolerance is not None
        )
        return report("degraded", message, [c.name for c in degraded])
    return report("ok", f"{len(compared)} metric(s) within tolerance of the baseline on {n} labelled rows")


def check_feedback(
    fs_root: str | ArtifactStore,
    namespace: str,
    deployment: str,
    baseline: Baseline,
    *,
    config: PerformanceConfig | None = None,
    max_age: float | timedelta | None = None,
    max_rows: int | None = 100_000,
    now: float | None = None,
    model_version: str | None = None,
) -> tuple[PerformanceReport, JoinedWindow]:
    """Join the deployment's window with its labels (join_feedback) and check it (check_joined).

    Blocking: run it in a thread or a Job.
    """
    config = config or PerformanceConfig()
    config.resolve_metrics(baseline.task)
    joined = join_feedback(
        fs_root,
        namespace,
        deployment,
        task=baseline.task,
        classes=baseline.classes,
        max_age=max_age,
        max_rows=max_rows,
        now=now,
        model_version=model_version,
    )
    return check_joined(joined, baseline, config), joined
