"""The operator's metrics: what each applied plan counts, and labels that survive Kubernetes service discovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import kopf
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gyre.api.common import Condition
from gyre.api.driftmonitor import DriftMonitorStatus, MetricPerformance
from gyre.api.modeldeployment import ModelDeploymentStatus
from gyre.api.reasons import ConditionType, EventType, Reason
from gyre.api.trainingrun import Lineage, TrainingRunStatus
from gyre.builders.meta import Owner
from gyre.controllers import metrics
from gyre.drift.monitor_run import CheckFeature, CheckPerformance, CheckReport
from gyre.reconcile.driftmonitor import DriftMonitorPlan, RetrainDecision
from gyre.reconcile.plan import Plan
from gyre.serving.metrics import ServerMetrics

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def owner(kind: str, name: str = "obj", namespace: str = "ml") -> Owner:
    return Owner(kind=kind, name=name, namespace=namespace, uid=f"uid-{kind}-{name}")


def value(series: str, /, **labels: str) -> float:
    found = REGISTRY.get_sample_value(series, labels)
    return found or 0.0


def finished_run(phase: str, *, gates_failed: bool = False, trigger: str = "manual") -> TrainingRunStatus:
    conditions = []
    if gates_failed:
        conditions.append(
            Condition(
                type=ConditionType.VALIDATED,
                status="False",
                reason=Reason.GATES_FAILED,
                message="accuracy 0.5 < 0.9",
                last_transition_time=T0,
            )
        )
    return TrainingRunStatus(
        phase=phase,  # type: ignore[arg-type]
        start_time=T0,
        completion_time=T0 + timedelta(seconds=90),
        lineage=Lineage(trigger=trigger),
        conditions=conditions or None,
    )


def test_a_finished_training_run_is_counted_once_with_its_trigger_and_duration() -> None:
    run = owner("TrainingRun", "counted-once")
    before = value("gyre_training_runs_total", object_namespace="ml", outcome="Succeeded", trigger="drift")
    durations = value("gyre_training_duration_seconds_count", outcome="Succeeded")
    done = finished_run("Succeeded", trigger="drift:ml/iris-drift#3")
    metrics.observe_plan(run, TrainingRunStatus(phase="Running"), Plan(status=done))
    # The next plan starts from the status just written: no transition, nothing counted.
    metrics.observe_plan(run, done, Plan(status=done))
    after = value("gyre_training_runs_total", object_namespace="ml", outcome="Succeeded", trigger="drift")
    assert after - before == 1
    assert value("gyre_training_duration_seconds_count", outcome="Succeeded") - durations == 1
    assert value(
        "gyre_object_phase", kind="TrainingRun", object_namespace="ml", name="counted-once", phase="Succeeded"
    )


def test_a_retrain_whose_gates_fail_counts_a_gate_failure_under_the_drift_trigger() -> None:
    before = value("gyre_training_gate_failures_total", object_namespace="ml", trigger="drift")
    done = finished_run("Succeeded", gates_failed=True, trigger="drift:ml/m#1")
    metrics.observe_plan(owner("TrainingRun", "gated"), TrainingRunStatus(phase="Running"), Plan(status=done))
    assert value("gyre_training_gate_failures_total", object_namespace="ml", trigger="drift") - before == 1


@pytest.mark.parametrize(
    ("decision", "series", "labels"),
    [
        pytest.param(
            RetrainDecision("retrain", Reason.DRIFT_PERSISTED, ""),
            "gyre_retrains_triggered_total",
            {},
            id="a retrain is counted as triggered",
        ),
        pytest.param(
            RetrainDecision("held", Reason.COOLDOWN, ""),
            "gyre_retrains_suppressed_total",
            {"reason": "cooldown"},
            id="a cooldown is counted as suppressed",
        ),
        pytest.param(
            RetrainDecision("held", Reason.DAILY_CAP, ""),
            "gyre_retrains_suppressed_total",
            {"reason": "cap"},
            id="the daily cap is counted as suppressed",
        ),
        pytest.param(
            RetrainDecision("dry_run", Reason.DRY_RUN, ""),
            "gyre_retrains_suppressed_total",
            {"reason": "dry_run"},
            id="a dry run is counted as suppressed",
        ),
    ],
)
def test_retrain_decisions_are_counted_by_outcome(
    decision: RetrainDecision, series: str, labels: dict[str, str]
) -> None:
    labels = {"object_namespace": "ml", "monitor": "watch", **labels}
    before = value(series, **labels)
    plan = DriftMonitorPlan(status=DriftMonitorStatus(), decision=decision)
    metrics.observe_plan(owner("DriftMonitor", "watch"), DriftMonitorStatus(), plan)
    assert value(series, **labels) - before == 1


def test_hysteresis_is_neither_a_retrain_nor_a_suppressed_one() -> None:
    labels = {"object_namespace": "ml", "monitor": "patient"}
    plan = DriftMonitorPlan(
        status=DriftMonitorStatus(), decision=RetrainDecision("held", Reason.HYSTERESIS, "")
    )
    metrics.observe_plan(owner("DriftMonitor", "patient"), DriftMonitorStatus(), plan)
    assert value("gyre_retrains_triggered_total", **labels) == 0
    for reason in ("cooldown", "cap", "dry_run"):
        assert value("gyre_retrains_suppressed_total", reason=reason, **labels) == 0


def test_a_check_report_sets_the_drift_gauges_under_object_namespace() -> None:
    report = CheckReport(
        check=2,
        verdict="drift",
        drift_share=0.5,
        features=[
            CheckFeature(name="petal", method="psi", score=0.4, drifted=True),
            CheckFeature(name="sepal", method="psi", score=0.01, drifted=False),
        ],
    )
    plan = DriftMonitorPlan(status=DriftMonitorStatus(verdict="drift"), report=report)
    metrics.observe_plan(owner("DriftMonitor", "gauged"), DriftMonitorStatus(), plan)
    assert value("gyre_drift_detected", object_namespace="ml", monitor="gauged") == 1
    assert value("gyre_drift_share", object_namespace="ml", monitor="gauged") == 0.5
    assert value("gyre_drift_feature_drifted", object_namespace="ml", monitor="gauged", feature="petal") == 1
    assert (
        value(
            "gyre_drift_feature_score", object_namespace="ml", monitor="gauged", feature="petal", method="psi"
        )
        == 0.4
    )
    assert value(
        "gyre_object_phase", kind="DriftMonitor", object_namespace="ml", name="gauged", phase="drift"
    )


def test_a_performance_verdict_sets_the_performance_gauges_with_the_status_values() -> None:
    perf = CheckPerformance(
        verdict="degraded",
        labelled_rows=800,
        label_delay_seconds=30.0,
        label_delay_p90_seconds=120.0,
        unknown_ids=3,
        duplicate_labels=2,
        wrong_type_labels=1,
        metrics=[
            MetricPerformance(name="accuracy", value=0.75, low=0.72, high=0.78, baseline=0.92, degraded=True)
        ],
    )
    plan = DriftMonitorPlan(status=DriftMonitorStatus(), performance=perf)
    metrics.observe_plan(owner("DriftMonitor", "perf"), DriftMonitorStatus(), plan)
    labels = {"object_namespace": "ml", "monitor": "perf"}
    assert value("gyre_performance_degraded", **labels) == 1
    assert value("gyre_performance_labelled_rows", **labels) == 800
    assert value("gyre_performance_label_delay_seconds", quantile="0.9", **labels) == 120
    assert value("gyre_performance_bad_labels", kind="unknown_id", **labels) == 3
    assert value("gyre_performance_metric", metric="accuracy", **labels) == 0.75
    assert value("gyre_performance_metric_low", metric="accuracy", **labels) == 0.72
    assert value("gyre_performance_metric_high", metric="accuracy", **labels) == 0.78
    assert value("gyre_performance_baseline", metric="accuracy", **labels) == 0.92
    recovered = DriftMonitorPlan(
        status=DriftMonitorStatus(), performance=perf.model_copy(update={"verdict": "ok"})
    )
    metrics.observe_plan(owner("DriftMonitor", "perf"), DriftMonitorStatus(), recovered)
    assert value("gyre_performance_degraded", **labels) == 0


def test_rollout_events_are_counted_by_outcome() -> None:
    labels = {"object_namespace": "ml", "modeldeployment": "iris"}
    plan: Plan[ModelDeploymentStatus] = Plan(status=ModelDeploymentStatus(phase="Ready"))
    plan.event(EventType.NORMAL, Reason.MODEL_ROLLOUT, "rolling out")
    plan.event(EventType.NORMAL, Reason.READY, "serving")
    before = {o: value("gyre_rollouts_total", outcome=o, **labels) for o in ("started", "ready", "failing")}
    metrics.observe_plan(owner("ModelDeployment", "iris"), ModelDeploymentStatus(), plan)
    after = {o: value("gyre_rollouts_total", outcome=o, **labels) for o in ("started", "ready", "failing")}
    assert {o: after[o] - before[o] for o in after} == {"started": 1, "ready": 1, "failing": 0}


def test_a_deleted_object_leaves_gyre_object_phase() -> None:
    metrics.set_object_phase("Dataset", "ml", "gone", "Ready")
    assert value("gyre_object_phase", kind="Dataset", object_namespace="ml", name="gone", phase="Ready") == 1
    metrics.forget_object("Dataset", "ml", "gone")
    assert value("gyre_object_phase", kind="Dataset", object_namespace="ml", name="gone", phase="Ready") == 0


def test_a_handler_run_is_counted_by_outcome_and_timed() -> None:
    calls: list[str] = []

    @metrics.reconciled("Probe")
    def handler(outcome: str) -> None:
        calls.append(outcome)
        if outcome == "retry":
            raise kopf.TemporaryError("later")
        if outcome == "error":
            raise KeyError("boom")

    handler("success")
    with pytest.raises(kopf.TemporaryError):
        handler("retry")
    with pytest.raises(KeyError):
        handler("error")
    assert calls == ["success", "retry", "error"]
    for outcome in ("success", "retry", "error"):
        assert value("gyre_operator_reconciles_total", kind="Probe", outcome=outcome) == 1
    assert value("gyre_operator_reconcile_errors_total", kind="Probe", error="KeyError") == 1
    assert value("gyre_operator_reconcile_errors_total", kind="Probe", error="TemporaryError") == 1
    assert value("gyre_operator_reconcile_duration_seconds_count", kind="Probe") == 3
    assert handler.__name__ == "handler"  # kopf derives handler ids from the name


def scraped() -> dict[str, set[str]]:
    """Series name -> label names, from one scrape of the operator's registry (after the tests above ran)."""
    metrics.API_RETRIES.labels("get").inc(0)
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        for sample in family.samples:
            if sample.name.startswith("gyre_"):
                out.setdefault(sample.name, set()).update(sample.labels)
    return out


def test_every_declared_operator_metric_appears_in_a_scrape() -> None:
    # Fill every family once, so the scrape holds one sample of each.
    metrics.observe_plan(
        owner("TrainingRun", "all"), TrainingRunStatus(phase="Running"), Plan(status=finished_run("Failed"))
    )
    metrics.observe_plan(
        owner("TrainingRun", "all2"),
        TrainingRunStatus(phase="Running"),
        Plan(status=finished_run("Succeeded", gates_failed=True)),
    )
    test_retrain_decisions_are_counted_by_outcome(
        RetrainDecision("retrain", Reason.DRIFT_PERSISTED, ""), "gyre_retrains_triggered_total", {}
    )
    test_retrain_decisions_are_counted_by_outcome(
        RetrainDecision("held", Reason.DAILY_CAP, ""), "gyre_retrains_suppressed_total", {"reason": "cap"}
    )
    test_a_check_report_sets_the_drift_gauges_under_object_namespace()
    test_a_performance_verdict_sets_the_performance_gauges_with_the_status_values()
    test_rollout_events_are_counted_by_outcome()
    missing = metrics.METRIC_NAMES - set(scraped())
    assert not missing


def test_no_operator_or_server_metric_uses_a_label_that_service_discovery_sets() -> None:
    server = ServerMetrics(model="m", version="1", run="r", sha256="s", inference="sklearn")
    server.observe_request("v2", 200, 0.01)
    labels: dict[str, set[str]] = scraped()
    for family in text_string_to_metric_families(server.render().decode()):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    clashes = {
        name: found & metrics.FORBIDDEN_LABELS
        for name, found in labels.items()
        if found & metrics.FORBIDDEN_LABELS
    }
    assert not clashes


def test_a_newly_seen_objects_counters_start_at_zero_so_increase_sees_the_first_event() -> None:
    metrics.observe_plan(
        owner("TrainingRun", "fresh", namespace="new-ns"),
        TrainingRunStatus(),
        Plan(status=TrainingRunStatus()),
    )
    for trigger in ("manual", "drift"):
        assert (
            REGISTRY.get_sample_value(
                "gyre_training_runs_total",
                {"object_namespace": "new-ns", "outcome": "Failed", "trigger": trigger},
            )
            == 0
        )
        assert (
            REGISTRY.get_sample_value(
                "gyre_training_gate_failures_total", {"object_namespace": "new-ns", "trigger": trigger}
            )
            == 0
        )
    metrics.observe_plan(
        owner("DriftMonitor", "fresh", namespace="new-ns"),
        DriftMonitorStatus(),
        DriftMonitorPlan(status=DriftMonitorStatus()),
    )
    labels = {"object_namespace": "new-ns", "monitor": "fresh"}
    assert REGISTRY.get_sample_value("gyre_retrains_suppressed_total", {**labels, "reason": "cap"}) == 0
    assert REGISTRY.get_sample_value("gyre_retrains_triggered_total", labels) == 0


def test_neither_the_operator_nor_a_model_server_exports_created_series() -> None:
    server = ServerMetrics(model="m", version="1", run="r", sha256="s", inference="sklearn")
    server.observe_request("v2", 200, 0.01)
    server.batch_rows.observe(3)
    server.feedback_requests.labels("200").inc()
    metrics.RECONCILES.labels("Probe", "success").inc()
    metrics.TRAINING_DURATION.labels("Succeeded").observe(1.0)
    for text in (generate_latest(REGISTRY).decode(), server.render().decode()):
        created = [line for line in text.splitlines() if "_created" in line]
        assert not created, created
