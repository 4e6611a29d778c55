"""DriftMonitor: compare live model inputs with the training data on a schedule and retrain on drift."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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
    "DriftMethod",
    "DriftMonitorSpec",
    "DriftMonitorStatus",
    "FeatureDrift",
    "FeatureThreshold",
    "ReferenceSpec",
    "RetrainSpec",
    "RetrainTemplate",
    "Schedule",
    "Thresholds",
    "Window",
]

DriftMethod = Literal["psi", "ks", "ks_welch", "chisquare", "z", "jensenshannon", "wasserstein"]


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

    method: DriftMethod | None = None
    """Statistic to use; setting it (or threshold) decides this feature by the threshold rule alone, outside the
    preset's correction. Without it the preset chooses: gyre uses ks_welch for numeric and chisquare for the
    others; evidently follows Evidently (up to 1000 reference rows ks, chisquare or z; above, wasserstein for
    numeric and jensenshannon for the others)."""
    threshold: float | None = Field(default=None, ge=0)
    """Score at or above which (p-value below which, for ks, ks_welch, chisquare and z) the feature drifts."""
    enabled: bool = True
    """False ignores the feature entirely."""


class Thresholds(ApiModel):
    """When the data as a whole counts as drifted."""

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
    """Feature name -> method and threshold overrides."""


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
    refresh_requested_at: datetime | None = None
    """When the Dataset was asked to re-read its source for the pending retrain."""
    conditions: list[Condition] | None = None
    """Drifted: whether the live data differs from the reference; Retraining when a retrain is under way."""
    observed_generation: int | None = None
    """The metadata.generation this status describes."""
