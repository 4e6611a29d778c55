"""DriftMonitor: compare live model inputs with the training data on a schedule and retrain on drift."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from gyre.api.common import (
    ApiModel,
    Condition,
    Duration,
    Fingerprint,
    LocalObjectReference,
    StatusModel,
)

__all__ = [
    "CLASSIFICATION_PERFORMANCE_METRICS",
    "REGRESSION_PERFORMANCE_METRICS",
    "DriftMethod",
    "DriftMonitorSpec",
    "DriftMonitorStatus",
    "FeatureDrift",
    "FeatureThreshold",
    "MetricPerformance",
    "PerformanceMetricName",
    "PerformanceSpec",
    "PerformanceStatus",
    "PerformanceTolerance",
    "PerformanceWindow",
    "ReferenceSpec",
    "RetrainSpec",
    "RetrainTemplate",
    "Schedule",
    "Thresholds",
    "Window",
]

DriftMethod = Literal["psi", "ks", "ks_welch", "chisquare", "z", "jensenshannon", "wasserstein"]
PerformanceMetricName = Literal["accuracy", "f1_macro", "log_loss", "rmse", "mae", "r2"]
CLASSIFICATION_PERFORMANCE_METRICS: tuple[PerformanceMetricName, ...] = ("accuracy", "f1_macro", "log_loss")
REGRESSION_PERFORMANCE_METRICS: tuple[PerformanceMetricName, ...] = ("rmse", "mae", "r2")


def _cel_list(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{n}'" for n in names) + "]"


class ReferenceSpec(ApiModel):
    """The data live inputs are compared with."""

    dataset_ref: LocalObjectReference | None = None
    """A Dataset whose reference profile is the baseline; defaults to the Dataset that trained the served
    model."""


class Schedule(ApiModel):
    """When checks run: a fixed interval or a cron expression."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.interval) != has(self.cron)",
                    "message": "set exactly one of interval or cron",
                }
            ]
        }
    )

    interval: Duration | None = None
    """Time between checks, e.g. `10m`."""
    cron: str | None = Field(default=None, max_length=128, pattern=r"^(\S+\s+){4}\S+$")
    """Five-field cron expression in UTC, e.g. `*/15 * * * *`."""


class Window(ApiModel):
    """Which logged predictions a check reads."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.minRows <= self.maxRows",
                    "message": "minRows must not be greater than maxRows",
                }
            ]
        }
    )

    max_rows: int = Field(default=10000, ge=1, le=1_000_000)
    """Read at most this many of the newest rows."""
    max_age: Duration = "24h"
    """Ignore rows older than this."""
    min_rows: int = Field(default=100, ge=1, le=1_000_000)
    """Skip the check (no verdict) when fewer rows are available; small samples make noisy statistics."""


class FeatureThreshold(ApiModel):
    """Per-feature override of the drift test."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.minEffect) || (!has(self.method) && !has(self.threshold))",
                    "message": "minEffect applies to the gyre preset's corrected test, which method and threshold "
                    "replace: remove method and threshold from this feature, or remove minEffect",
                }
            ]
        }
    )

    method: DriftMethod | None = None
    """Statistic to use; setting it (or threshold) decides this feature by the threshold rule alone, outside the
    preset's correction. Without it the preset chooses: gyre uses ks_welch for numeric and chisquare for the
    others; evidently follows Evidently (up to 1000 reference rows ks, chisquare or z; above, wasserstein for
    numeric and jensenshannon for the others)."""
    threshold: float | None = Field(default=None, ge=0)
    """Score at or above which (p-value below which, for ks, ks_welch, chisquare and z) the feature drifts."""
    min_effect: float | None = Field(default=None, ge=0, le=100)
    """gyre preset: the smallest effect that makes this feature drift, in place of the default floor: a
    Wasserstein distance in reference standard deviations for numeric features with more than 20 distinct values
    (default 0.02), a total variation distance between 0 and 1 for the others (default 0.01). A significant
    change below it is reported, not drift. Not with method or threshold."""
    min_missing_increase: float | None = Field(default=None, ge=0, le=1)
    """The smallest rise of this feature's missing rate that counts (0.05 is 5 points), in place of the
    preset's: 0.02 for gyre, 0.05 for evidently."""
    enabled: bool = True
    """False ignores the feature entirely."""


class Thresholds(ApiModel):
    """When the data as a whole counts as drifted."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.perFeature) || self.preset == 'gyre' || "
                    "self.perFeature.all(k, !has(self.perFeature[k].minEffect))",
                    "message": "perFeature minEffect applies to preset gyre only: set preset: gyre, or remove "
                    "minEffect from perFeature",
                }
            ]
        }
    )

    drift_share: float = Field(default=0.5, gt=0, le=1)
    """The dataset drifts when at least this fraction of features drift."""
    preset: Literal["gyre", "evidently"] = "gyre"
    """gyre: a feature drifts when its change is significant after a Benjamini-Hochberg correction across all the
    features' tests and at least a small effect (docs/drift.md); evidently: Evidently's default tests and
    thresholds, with today's verdicts."""
    alpha: float = Field(default=0.05, gt=0, lt=1)
    """gyre preset: the false discovery rate across the check's tests."""
    missing_counts_as_drift: bool = True
    """Whether a significant rise of a feature's missing rate makes it drift (else it is only reported)."""
    per_feature: dict[str, FeatureThreshold] | None = Field(default=None, max_length=1024)
    """Feature name -> overrides of its test (method, threshold), of its minimum effects, or enabled: false."""


class RetrainTemplate(ApiModel):
    """How the retraining TrainingRun differs from the one that produced the served model."""

    labels: dict[str, str] | None = Field(default=None, max_length=32)
    """Extra labels for the new run (e.g. to match a ModelDeployment's promotion selector)."""
    spec: dict[str, Any] | None = None
    """Fields merged over the served run's spec (e.g. `{estimator: {params: {n_estimators: 300}}}`); the result
    must be a valid TrainingRun spec."""


class RetrainSpec(ApiModel):
    """Automatic retraining when drift persists."""

    enabled: bool = False
    """Create TrainingRuns on drift at all."""
    template: RetrainTemplate | None = None
    """Overrides for the new TrainingRun."""
    cooldown: Duration = "1h"
    """Minimum time between two retrains."""
    consecutive_checks: int = Field(default=2, ge=1, le=100)
    """Retrain only after this many drifted checks in a row (hysteresis against one noisy window)."""
    max_per_day: int = Field(default=3, ge=0, le=100)
    """Cap on retrains per UTC day."""
    dry_run: bool = False
    """Record (condition and Event) what would be retrained, without creating a TrainingRun."""


class PerformanceWindow(ApiModel):
    """Which labelled predictions a performance check reads."""

    max_age: Duration = "24h"
    """Only predictions made within this time before the check; their labels may arrive any time until then."""
    max_rows: int = Field(default=100_000, ge=1, le=1_000_000)
    """Read at most this many of the newest logged predictions."""
    min_labelled_rows: int = Field(default=200, ge=10, le=1_000_000)
    """Below this many predictions joined with a label, the check gives insufficient_data (no verdict)."""


class PerformanceTolerance(ApiModel):
    """How much worse than its test metrics the live model may be before it counts as degraded."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.maxDrop) || self.maxDrop.all(k, k in "
                    + _cel_list(CLASSIFICATION_PERFORMANCE_METRICS + REGRESSION_PERFORMANCE_METRICS)
                    + ")",
                    "message": "maxDrop keys must be metric names: "
                    + ", ".join(CLASSIFICATION_PERFORMANCE_METRICS + REGRESSION_PERFORMANCE_METRICS),
                }
            ]
        }
    )

    relative_drop: float = Field(default=0.05, ge=0, le=10)
    """Tolerated drop as a fraction of the baseline's magnitude: 0.05 tolerates accuracy 0.95 -> 0.9025 or RMSE
    2.0 -> 2.1."""
    max_drop: dict[str, Annotated[float, Field(ge=0)]] | None = Field(default=None, max_length=6)
    """Metric name -> tolerated drop in the metric's own units (e.g. `{accuracy: 0.02}`); overrides relativeDrop
    for that metric."""
    confidence: float = Field(default=0.95, ge=0.8, le=0.999)
    """Confidence of the intervals: a metric degrades only when its drop beyond the tolerance is this certain, so
    a small window cannot trigger (docs/monitoring.md)."""


class PerformanceSpec(ApiModel):
    """Live model performance: logged predictions joined with ground-truth labels, compared with the served
    model's test metrics (docs/monitoring.md)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.metrics) || self.metrics.all(m, m in "
                    + _cel_list(CLASSIFICATION_PERFORMANCE_METRICS)
                    + ") || self.metrics.all(m, m in "
                    + _cel_list(REGRESSION_PERFORMANCE_METRICS)
                    + ")",
                    "message": "metrics must all be classification metrics ("
                    + ", ".join(CLASSIFICATION_PERFORMANCE_METRICS)
                    + ") or all regression metrics ("
                    + ", ".join(REGRESSION_PERFORMANCE_METRICS)
                    + ")",
                }
            ]
        }
    )

    enabled: bool = True
    """Run the performance check with every scheduled check."""
    window: PerformanceWindow | None = None
    """Which labelled predictions to read."""
    metrics: list[PerformanceMetricName] | None = Field(default=None, min_length=1, max_length=3)
    """Metrics to compare; default: every metric of the served model's task (accuracy, f1_macro and log_loss, the
    last only when probabilities were logged; or rmse, mae and r2)."""
    tolerance: PerformanceTolerance | None = None
    """The tolerated drop and the confidence required."""
    retrain: bool = True
    """Whether a persistent degradation starts a retrain, under spec.retrain's guard rails (which it shares with
    input drift: one cooldown, one daily cap)."""


class DriftMonitorSpec(ApiModel):
    """Desired state of a DriftMonitor."""

    deployment_ref: LocalObjectReference
    """The ModelDeployment whose logged inputs are checked."""
    reference: ReferenceSpec | None = None
    """The baseline; defaults to the served model's training Dataset."""
    schedule: Schedule
    """When to check."""
    window: Window | None = None
    """Which logged rows to read."""
    thresholds: Thresholds | None = None
    """When features and the dataset count as drifted."""
    retrain: RetrainSpec | None = None
    """What to do about drift."""
    performance: PerformanceSpec | None = None
    """Also check the served model's accuracy (or error) on predictions that received ground-truth labels."""
    successful_jobs_history_limit: int = Field(default=3, ge=0, le=100)
    """How many finished check Jobs that succeeded to keep (with their pods, for `kubectl logs`); older ones are
    deleted, as a CronJob does. The Job of the check under way is never deleted."""
    failed_jobs_history_limit: int = Field(default=1, ge=0, le=100)
    """How many finished check Jobs that failed to keep, so the last failure stays for debugging."""


class FeatureDrift(StatusModel):
    """The last check's verdict on one feature."""

    name: str
    """Feature name."""
    method: DriftMethod | None = None
    """Statistic used; unset when the feature had too few values to test."""
    score: float | None = None
    """Its value (a p-value for ks, chisquare and z; a distance otherwise)."""
    threshold: float | None = None
    """The threshold it was compared with (alpha, for the gyre preset's adjusted p-value)."""
    effect: float | None = None
    """Effect size: Wasserstein distance in reference standard deviations (numeric) or total variation distance."""
    drifted: bool
    """Whether the feature drifted (in its values, or in a rising missing rate)."""
    status: str | None = None
    """ok, all_missing, mostly_missing or insufficient_data."""


class MetricPerformance(StatusModel):
    """One metric of the last performance check."""

    name: str
    """accuracy, f1_macro, log_loss, rmse, mae or r2."""
    value: float | None = None
    """On the labelled window."""
    low: float | None = None
    """Lower end of its bootstrap interval."""
    high: float | None = None
    """Upper end of its bootstrap interval."""
    baseline: float | None = None
    """The served model's value on its test split; unset when the model does not record it."""
    drop: float | None = None
    """How much worse than the baseline (positive: worse), in the metric's units."""
    drop_low: float | None = None
    """The drop the window shows with confidence (lower end of the drop's interval)."""
    tolerance: float | None = None
    """The drop tolerated, in the metric's units."""
    degraded: bool = False
    """dropLow exceeds tolerance."""


class PerformanceStatus(StatusModel):
    """The last performance check."""

    verdict: Literal["degraded", "ok", "insufficient_data"] | None = None
    """degraded, ok, or insufficient_data (fewer labelled rows than window.minLabelledRows, or no baseline)."""
    check: int | None = None
    """The check number it ran in."""
    message: str | None = None
    """Why the verdict, or why the check could not run."""
    model_version: str | None = None
    """The TrainingRun whose predictions were evaluated (rows logged by other versions are left out)."""
    metrics: list[MetricPerformance] | None = None
    """Each metric with its interval, baseline and tolerance."""
    labelled_rows: int | None = None
    """Predictions of the window joined with a valid label."""
    prediction_rows: int | None = None
    """Predictions of the window read."""
    baseline_test_rows: int | None = None
    """Size of the test split the baseline was measured on (its uncertainty counts when known)."""
    label_delay_seconds: float | None = None
    """Median time from prediction to label."""
    label_delay_p90_seconds: float | None = None
    """90th percentile of the label delay."""
    unknown_ids: int | None = None
    """Labels whose id no prediction of the window carries."""
    duplicate_labels: int | None = None
    """Further labels of an already labelled id (the first label wins)."""
    wrong_type_labels: int | None = None
    """Labels that cannot be a value of the target (a string for a regressor, null)."""
    consecutive_degraded: int | None = None
    """Degraded checks in a row."""
    report_uri: str | None = None
    """Full JSON report of the last performance check in the artifact store."""


class DriftMonitorStatus(StatusModel):
    """Observed state of a DriftMonitor."""

    last_check_time: datetime | None = None
    """When the last check ran."""
    next_check_time: datetime | None = None
    """When the next check is due."""
    check_count: int | None = None
    """Checks run so far."""
    rows_checked: int | None = None
    """Rows the last check read."""
    drifted: bool | None = None
    """Whether the last check found drift."""
    drift_share: float | None = None
    """Fraction of features that drifted in the last check."""
    features: list[FeatureDrift] | None = None
    """Per-feature results of the last check."""
    reference_fingerprint: Fingerprint | None = None
    """Fingerprint of the baseline Dataset version."""
    consecutive_drifted: int | None = None
    """Drifted checks in a row."""
    retrains_today: int | None = None
    """Retrains created on the current UTC day."""
    retrain_day: str | None = None
    """The UTC day (YYYY-MM-DD) retrainsToday counts."""
    last_retrain_time: datetime | None = None
    """When the last retrain was created (or would have been, in dry run)."""
    last_retrain_run: str | None = None
    """Name of the last retraining TrainingRun."""
    verdict: Literal["drift", "no_drift", "insufficient_data"] | None = None
    """Outcome of the last check; insufficient_data when the window held fewer than window.minRows rows."""
    job_name: str | None = None
    """The check Job under way, if any."""
    report_uri: str | None = None
    """Full JSON report of the last check in the artifact store."""
    html_report_uri: str | None = None
    """The same report as a self-contained HTML page (`gyre drift report NAMESPACE/NAME` fetches it)."""
    pending_retrain_check: int | None = None
    """A retrain decided at this check, waiting for the Dataset to re-read its source first."""
    pending_retrain_cause: Literal["input_drift", "performance"] | None = None
    """What the pending retrain answers: input drift, or degraded performance."""
    performance: PerformanceStatus | None = None
    """The last performance check (spec.performance)."""
    refresh_requested_at: datetime | None = None
    """When the Dataset was asked to re-read its source for the pending retrain."""
    conditions: list[Condition] | None = None
    """Drifted: whether the live data differs from the reference; Degraded: whether the served model performs
    worse than on its test split (spec.performance); Retraining when a retrain is under way."""
    observed_generation: int | None = None
    """The metadata.generation this status describes."""
