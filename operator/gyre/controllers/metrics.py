"""The operator's own Prometheus metrics: reconciles, objects by phase, training, retrains, rollouts, drift.

They live in the default registry, which `gyre operator` serves on GYRE_METRICS_PORT (only the leader runs kopf,
so only the leader exports them; a standby's scrape target is up but empty).

No label is called `namespace`, `pod`, `job`, `instance`, `service`, `container` or `endpoint`: Kubernetes service
discovery and prometheus-operator attach those to every series of a target and would rename a colliding Gyre label to
`exported_<name>`. The namespace of a Gyre object is `object_namespace`. Every name is listed in `METRIC_NAMES`, which
the dashboard and alert tests check their queries against.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import kopf
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel

from gyre.api.common import find_condition
from gyre.api.driftmonitor import DriftMonitorStatus
from gyre.api.reasons import ConditionType, Reason
from gyre.api.trainingrun import TrainingRunStatus
from gyre.builders.meta import Owner
from gyre.drift.monitor_run import CheckPerformance, CheckReport
from gyre.reconcile.driftmonitor import DriftMonitorPlan
from gyre.reconcile.plan import Plan

__all__ = [
    "FORBIDDEN_LABELS",
    "METRIC_NAMES",
    "ObjectPhases",
    "export_drift",
    "export_performance",
    "forget_object",
    "observe_plan",
    "reconciled",
    "serve",
    "set_object_phase",
]

log = logging.getLogger(__name__)
# No `<counter>_created` series beside every counter and histogram: they would double the series count, and no
# query of ours reads them (process-wide; the model server's module does the same).
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
FORBIDDEN_LABELS = frozenset({"namespace", "pod", "job", "instance", "service", "container", "endpoint"})
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_TRAINING_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)
# Retrain decisions counted as suppressed, by the reason label they get.
_SUPPRESSED = {Reason.COOLDOWN: "cooldown", Reason.DAILY_CAP: "cap", Reason.DRY_RUN: "dry_run"}

RECONCILES = Counter(
    "gyre_operator_reconciles",
    "Handler runs by kind and outcome (success; retry: kopf will run it again; error: an unexpected exception).",
    ["kind", "outcome"],
)
RECONCILE_ERRORS = Counter(
    "gyre_operator_reconcile_errors",
    "Handler runs that raised, by kind and exception class (retries included).",
    ["kind", "error"],
)
RECONCILE_DURATION = Histogram(
    "gyre_operator_reconcile_duration_seconds",
    "Wall time of one handler run (observe, plan, apply), by kind.",
    ["kind"],
    buckets=_DURATION_BUCKETS,
)
API_RETRIES = Counter(
    "gyre_operator_api_retries",
    "API calls retried after a transient failure (5xx, 429, connection errors), by verb.",
    ["verb"],
)
TRAINING_RUNS = Counter(
    "gyre_training_runs",
    "TrainingRuns that finished, by outcome (Succeeded, Failed) and trigger (manual, drift).",
    ["object_namespace", "outcome", "trigger"],
)
TRAINING_DURATION = Histogram(
    "gyre_training_duration_seconds",
    "Start to completion of a finished TrainingRun, by outcome.",
    ["outcome"],
    buckets=_TRAINING_BUCKETS,
)
GATE_FAILURES = Counter(
    "gyre_training_gate_failures",
    "TrainingRuns that trained a model its gates rejected, by trigger (manual, drift).",
    ["object_namespace", "trigger"],
)
RETRAINS_TRIGGERED = Counter(
    "gyre_retrains_triggered",
    "Retrains a DriftMonitor started (Dataset refresh requested, then a TrainingRun).",
    ["object_namespace", "monitor"],
)
RETRAINS_SUPPRESSED = Counter(
    "gyre_retrains_suppressed",
    "Retrains persistent drift called for but the guard rails held back, by reason (cooldown, cap, dry_run).",
    ["object_namespace", "monitor", "reason"],
)
for _verb in ("get", "list", "create", "apply", "delete", "patch"):
    API_RETRIES.labels(_verb)  # at zero from the start, so the dashboard shows "none" rather than "no data"
LEADER = Gauge(
    "gyre_operator_leader",
    "1 in the replica that holds the Lease and runs the controllers, 0 in a standby.",
)
ROLLOUTS = Counter(
    "gyre_rollouts",
    "ModelDeployment rollouts by outcome: started (a new model), ready (serving it), failing (server not healthy).",
    ["object_namespace", "modeldeployment", "outcome"],
)
FEATURE_SCORE = Gauge(
    "gyre_drift_feature_score",
    "Drift statistic of one feature in the last check",
    ["object_namespace", "monitor", "feature", "method"],
)
FEATURE_DRIFTED = Gauge(
    "gyre_drift_feature_drifted",
    "1 when the feature drifted in the last check",
    ["object_namespace", "monitor", "feature"],
)
DRIFT_SHARE = Gauge(
    "gyre_drift_share", "Share of drifted features in the last check", ["object_namespace", "monitor"]
)
DRIFT_DETECTED = Gauge(
    "gyre_drift_detected", "1 when the last check found dataset drift", ["object_namespace", "monitor"]
)
_PERF = ["object_namespace", "monitor"]
PERFORMANCE_METRIC = Gauge(
    "gyre_performance_metric",
    "A metric of the served model on the last performance check's labelled window (spec.performance)",
    [*_PERF, "metric"],
)
PERFORMANCE_METRIC_LOW = Gauge(
    "gyre_performance_metric_low", "Lower end of the metric's bootstrap interval", [*_PERF, "metric"]
)
PERFORMANCE_METRIC_HIGH = Gauge(
    "gyre_performance_metric_high", "Upper end of the metric's bootstrap interval", [*_PERF, "metric"]
)
PERFORMANCE_BASELINE = Gauge(
    "gyre_performance_baseline",
    "The served model's value of the metric on its test split",
    [*_PERF, "metric"],
)
PERFORMANCE_DEGRADED = Gauge(
    "gyre_performance_degraded", "1 when the last performance check found the served model degraded", _PERF
)
PERFORMANCE_LABELLED_ROWS = Gauge(
    "gyre_performance_labelled_rows",
    "Predictions joined with a valid label in the last performance check",
    _PERF,
)
PERFORMANCE_LABEL_DELAY = Gauge(
    "gyre_performance_label_delay_seconds",
    "Time from prediction to label in the last performance check, by quantile (0.5, 0.9)",
    [*_PERF, "quantile"],
)
PERFORMANCE_BAD_LABELS = Gauge(
    "gyre_performance_bad_labels",
    "Labels the last performance check could not use, by kind (unknown_id, duplicate, wrong_type)",
    [*_PERF, "kind"],
)


class ObjectPhases(Collector):
    """`gyre_object_phase{kind, object_namespace, name, phase} 1` for every Gyre object this operator handles.

    Kept current by the watch (controllers/inventory.py), rendered only when scraped. Objects by kind and phase is
    `count by (kind, phase) (gyre_object_phase)`.
    """

    NAME = "gyre_object_phase"

    def __init__(self) -> None:
        self.phases: dict[tuple[str, str, str], str] = {}

    def collect(self) -> Iterator[Metric]:
        """One series per object, value 1, labelled with its current phase."""
        family = GaugeMetricFamily(
            self.NAME,
            "1 for every Gyre object, labelled with its phase (DriftMonitors: the last verdict).",
            labels=["kind", "object_namespace", "name", "phase"],
        )
        for (kind, namespace, name), phase in sorted(self.phases.items()):
            family.add_metric([kind, namespace, name, phase], 1.0)
        yield family


OBJECT_PHASES = ObjectPhases()
REGISTRY.register(OBJECT_PHASES)


METRIC_NAMES: frozenset[str] = frozenset(
    {
        "gyre_operator_reconciles_total",
        "gyre_operator_reconcile_errors_total",
        "gyre_operator_reconcile_duration_seconds_bucket",
        "gyre_operator_reconcile_duration_seconds_count",
        "gyre_operator_reconcile_duration_seconds_sum",
        "gyre_operator_api_retries_total",
        "gyre_training_runs_total",
        "gyre_training_duration_seconds_bucket",
        "gyre_training_duration_seconds_count",
        "gyre_training_duration_seconds_sum",
        "gyre_training_gate_failures_total",
        "gyre_retrains_triggered_total",
        "gyre_retrains_suppressed_total",
        "gyre_rollouts_total",
        "gyre_operator_leader",
        "gyre_drift_feature_score",
        "gyre_drift_feature_drifted",
        "gyre_drift_share",
        "gyre_drift_detected",
        "gyre_performance_metric",
        "gyre_performance_metric_low",
        "gyre_performance_metric_high",
        "gyre_performance_baseline",
        "gyre_performance_degraded",
        "gyre_performance_labelled_rows",
        "gyre_performance_label_delay_seconds",
        "gyre_performance_bad_labels",
        ObjectPhases.NAME,
    }
)
"""Every series name the operator exports (the unit tests prove each one appears in a scrape)."""

P = ParamSpec("P")
R = TypeVar("R")


def reconciled(kind: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Count and time every run of a handler of `kind`: outcome success, retry (kopf.TemporaryError) or error."""

    for outcome in ("success", "retry", "error"):
        RECONCILES.labels(kind, outcome)  # at zero from the start, for rate() and increase()

    def decorate(handler: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(handler)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            start = time.perf_counter()
            outcome = "error"
            try:
                result = handler(*args, **kwargs)
                outcome = "success"
                return result
            except kopf.TemporaryError as exc:
                outcome = "retry"
                RECONCILE_ERRORS.labels(kind, type(exc).__name__).inc()
                raise
            except Exception as exc:
                RECONCILE_ERRORS.labels(kind, type(exc).__name__).inc()
                raise
            finally:
                RECONCILES.labels(kind, outcome).inc()
                RECONCILE_DURATION.labels(kind).observe(time.perf_counter() - start)

        return run

    return decorate


def serve(port: int) -> None:
    """Serve the default registry on :port/metrics from process start, so a standby is a healthy target too."""
    if port:
        start_http_server(port)
        log.info("gyre operator: Prometheus metrics on :%d/metrics", port)


def set_object_phase(kind: str, namespace: str, name: str, phase: str) -> None:
    """Record the current phase of a Gyre object."""
    OBJECT_PHASES.phases[(kind, namespace, name)] = phase


def forget_object(kind: str, namespace: str, name: str) -> None:
    """Drop a deleted object from gyre_object_phase."""
    OBJECT_PHASES.phases.pop((kind, namespace, name), None)


def _born(owner: Owner) -> None:
    """Create an object's counters at zero the first time it is seen, so `increase()` in an alert also sees the
    first event (a series that appears at 1 has no earlier sample to increase from)."""
    key = (owner.kind, owner.namespace, owner.name)
    if key in OBJECT_PHASES.phases:
        return
    if owner.kind == "TrainingRun":
        for trigger in ("manual", "drift"):
            GATE_FAILURES.labels(owner.namespace, trigger)
            for outcome in ("Succeeded", "Failed"):
                TRAINING_RUNS.labels(owner.namespace, outcome, trigger)
    elif owner.kind == "DriftMonitor":
        RETRAINS_TRIGGERED.labels(owner.namespace, owner.name)
        for reason in _SUPPRESSED.values():
            RETRAINS_SUPPRESSED.labels(owner.namespace, owner.name, reason)
    elif owner.kind == "ModelDeployment":
        for outcome in _ROLLOUT_OUTCOMES.values():
            ROLLOUTS.labels(owner.namespace, owner.name, outcome)


def _trigger(status: TrainingRunStatus) -> str:
    trigger = status.lineage.trigger if status.lineage is not None else None
    # drift:<namespace>/<monitor>#<check> becomes "drift": the label stays bounded.
    return (trigger or "manual").split(":", 1)[0]


def _observe_training(owner: Owner, old: TrainingRunStatus, new: TrainingRunStatus) -> None:
    if new.phase == old.phase or new.phase not in ("Succeeded", "Failed"):
        return
    trigger = _trigger(new)
    TRAINING_RUNS.labels(owner.namespace, new.phase, trigger).inc()
    if new.start_time is not None and new.completion_time is not None:
        seconds = (new.completion_time - new.start_time).total_seconds()
        TRAINING_DURATION.labels(new.phase).observe(max(seconds, 0.0))
    validated = find_condition(list(new.conditions or []), ConditionType.VALIDATED)
    if validated is not None and validated.status == "False" and validated.reason == Reason.GATES_FAILED:
        GATE_FAILURES.labels(owner.namespace, trigger).inc()


def _observe_drift(owner: Owner, plan: DriftMonitorPlan) -> None:
    decision = plan.decision
    if decision is None:
        return
    if decision.action == "retrain":
        RETRAINS_TRIGGERED.labels(owner.namespace, owner.name).inc()
    elif decision.reason in _SUPPRESSED:
        RETRAINS_SUPPRESSED.labels(owner.namespace, owner.name, _SUPPRESSED[decision.reason]).inc()


_ROLLOUT_OUTCOMES: dict[str, str] = {
    Reason.MODEL_ROLLOUT: "started",
    Reason.READY: "ready",
    Reason.SERVER_FAILING: "failing",
}


def _observe_rollout(owner: Owner, plan: Plan[Any]) -> None:
    for event in plan.events:
        outcome = _ROLLOUT_OUTCOMES.get(event.reason)
        if outcome is not None:
            ROLLOUTS.labels(owner.namespace, owner.name, outcome).inc()


def observe_plan(owner: Owner, old: BaseModel, plan: Plan[Any]) -> None:
    """Count what an applied plan did: a finished training, a gate failure, a retrain decision, a rollout step.

    Called after the plan's writes went through, so a refused or failed write counts nothing; a transition is
    counted once because the next plan starts from the status this one wrote.
    """
    _born(owner)
    if owner.kind == "TrainingRun" and isinstance(old, TrainingRunStatus):
        _observe_training(owner, old, plan.status)
    elif owner.kind == "DriftMonitor" and isinstance(plan, DriftMonitorPlan):
        _observe_drift(owner, plan)
        if plan.report is not None:
            export_drift(owner.namespace, owner.name, plan.report)
        if plan.performance is not None:
            export_performance(owner.namespace, owner.name, plan.performance)
    elif owner.kind == "ModelDeployment":
        _observe_rollout(owner, plan)
    if owner.kind == "DriftMonitor" and isinstance(plan.status, DriftMonitorStatus):
        set_object_phase(owner.kind, owner.namespace, owner.name, plan.status.verdict or "Pending")
    else:
        phase = getattr(plan.status, "phase", None)
        if phase:
            set_object_phase(owner.kind, owner.namespace, owner.name, phase)


def export_drift(namespace: str, monitor: str, report: CheckReport) -> None:
    """The last check's verdict as gauges: share, detected, and per feature its score and whether it drifted."""
    DRIFT_SHARE.labels(namespace, monitor).set(report.drift_share or 0.0)
    DRIFT_DETECTED.labels(namespace, monitor).set(1.0 if report.verdict == "drift" else 0.0)
    for feature in report.features:
        FEATURE_DRIFTED.labels(namespace, monitor, feature.name).set(1.0 if feature.drifted else 0.0)
        if feature.score is not None and feature.method is not None:
            FEATURE_SCORE.labels(namespace, monitor, feature.name, feature.method).set(feature.score)


def export_performance(namespace: str, monitor: str, perf: CheckPerformance) -> None:
    """The last performance verdict as gauges: each metric with its interval and baseline, degraded, the labelled
    rows, the label delay and the labels that could not be used (the same values as status.performance)."""
    PERFORMANCE_DEGRADED.labels(namespace, monitor).set(1.0 if perf.verdict == "degraded" else 0.0)
    PERFORMANCE_LABELLED_ROWS.labels(namespace, monitor).set(perf.labelled_rows)
    for quantile, delay in (("0.5", perf.label_delay_seconds), ("0.9", perf.label_delay_p90_seconds)):
        if delay is not None:
            PERFORMANCE_LABEL_DELAY.labels(namespace, monitor, quantile).set(delay)
    for kind, count in (
        ("unknown_id", perf.unknown_ids),
        ("duplicate", perf.duplicate_labels),
        ("wrong_type", perf.wrong_type_labels),
    ):
        PERFORMANCE_BAD_LABELS.labels(namespace, monitor, kind).set(count)
    for metric in perf.metrics:
        for gauge, number in (
            (PERFORMANCE_METRIC, metric.value),
            (PERFORMANCE_METRIC_LOW, metric.low),
            (PERFORMANCE_METRIC_HIGH, metric.high),
            (PERFORMANCE_BASELINE, metric.baseline),
        ):
            if number is not None:
                gauge.labels(namespace, monitor, metric.name).set(number)
