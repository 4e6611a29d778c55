"""plan_driftmonitor with spec.performance: the check Job's performance arguments, status.performance, the
Degraded condition and its Events, and retraining on degradation under the guard rails shared with drift."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from test_driftmonitor_plan import (
    NOW,
    RETRAIN,
    SERVED,
    checking,
    collect,
    condition,
    dataset,
    events,
    observed,
    pod,
    report,
    spec,
)

from gyre.api.driftmonitor import DriftMonitorStatus, MetricPerformance
from gyre.drift.monitor_run import CheckPerformance
from gyre.reconcile.driftmonitor import DriftMonitorPlan, plan_driftmonitor
from gyre.reconcile.plan import Create

MODEL_URI = "file:///var/lib/gyre/artifacts/models/ml/iris-a"
SERVING = replace(SERVED, status=SERVED.status.model_copy(update={"model_uri": MODEL_URI}))
PERFORMANCE = {"window": {"minLabelledRows": 100}, "tolerance": {"maxDrop": {"accuracy": 0.02}}}


def perf(verdict: str | None = "degraded", **kw: Any) -> CheckPerformance:
    accuracy = 0.7 if verdict == "degraded" else 0.9
    args: dict[str, Any] = {
        "verdict": verdict,
        "message": "accuracy 0.7 vs baseline 0.9"
        if verdict == "degraded"
        else "1 metric(s) within tolerance",
        "model_version": "iris-a",
        "labelled_rows": 400,
        "prediction_rows": 1000,
        "label_delay_seconds": 60.0,
        "unknown_ids": 2,
        "duplicate_labels": 1,
        "wrong_type_labels": 3,
        "metrics": [
            MetricPerformance(
                name="accuracy",
                value=accuracy,
                low=accuracy - 0.03,
                high=accuracy + 0.03,
                baseline=0.9,
                drop=0.9 - accuracy,
                drop_low=0.9 - accuracy - 0.04,
                tolerance=0.02,
                degraded=verdict == "degraded",
            )
        ],
        "report_uri": "file:///store/drift/ml/iris/00000001.performance.json",
    }
    args.update(kw)
    return CheckPerformance(**args)


def run_checks(
    verdicts: list[tuple[str, CheckPerformance | None]],
    *,
    status: DriftMonitorStatus | None = None,
    **over: Any,
) -> list[DriftMonitorPlan]:
    """Collect one check per (drift verdict, performance) in a row, each starting from the status the last wrote."""
    monitor = spec(performance=over.pop("performance", PERFORMANCE), **over)
    plans: list[DriftMonitorPlan] = []
    current = status or checking()
    for n, (drift, performance) in enumerate(verdicts, start=1):
        if plans:
            kept = plans[-1].status.model_dump(exclude={"job_name", "next_check_time"})
            current = checking(**{**kept, "job_name": f"iris-check-{n}"})
        plan = collect(
            current, [pod(report(drift, check=n, performance=performance))], spec=monitor, served_run=SERVING
        )
        plans.append(plan)
    return plans


def test_a_check_job_with_performance_compares_with_the_served_model_and_only_its_predictions() -> None:
    plan = plan_driftmonitor(observed(spec=spec(performance=PERFORMANCE), served_run=SERVING))
    container = plan.actions[1].body["spec"]["template"]["spec"]["containers"][0]  # type: ignore[union-attr]
    args = container["args"]
    # The model lives in the monitor's store: the pod reads it through the same mount, by its relative path.
    assert args[args.index("--performance-baseline") + 1] == "models/ml/iris-a"
    assert args[args.index("--model-version") + 1] == "iris-a"
    assert args[args.index("--performance-max-age-seconds") + 1] == "86400"
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    config = json.loads(env["GYRE_PERFORMANCE_CONFIG"])
    assert config == {
        "confidence": 0.95,
        "maxDrop": {"accuracy": 0.02},
        "minLabelledRows": 100,
        "relativeDrop": 0.05,
        "seed": 1,
    }


def test_a_model_outside_the_store_is_read_by_its_url() -> None:
    elsewhere = replace(SERVED, status=SERVED.status.model_copy(update={"model_uri": "s3://models/iris-a"}))
    plan = plan_driftmonitor(observed(spec=spec(performance=PERFORMANCE), served_run=elsewhere))
    args = plan.actions[1].body["spec"]["template"]["spec"]["containers"][0]["args"]  # type: ignore[union-attr]
    assert args[args.index("--performance-baseline") + 1] == "s3://models/iris-a"


@pytest.mark.parametrize(
    ("case", "over"),
    [
        ("no spec.performance", {"spec": spec()}),
        ("disabled", {"spec": spec(performance={"enabled": False})}),
        (
            "no served model",
            {
                "spec": spec(performance=PERFORMANCE, reference={"datasetRef": {"name": "iris"}}),
                "served_run": None,
            },
        ),
    ],
)
def test_without_performance_or_a_served_model_the_check_job_has_no_performance_part(
    case: str, over: dict[str, Any]
) -> None:
    plan = plan_driftmonitor(observed(**{"served_run": SERVING, **over}))
    jobs = [a.body for a in plan.actions if isinstance(a, Create) and a.body["kind"] == "Job"]
    (job,) = jobs
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert "--performance-baseline" not in container["args"], case
    assert all(e["name"] != "GYRE_PERFORMANCE_CONFIG" for e in container["env"]), case


def test_a_degraded_check_fills_status_performance_sets_degraded_and_warns_once() -> None:
    first, second = run_checks([("no_drift", perf("degraded")), ("no_drift", perf("degraded"))])
    p = first.status.performance
    assert p is not None and p.verdict == "degraded" and p.check == 1 and p.model_version == "iris-a"
    assert (p.labelled_rows, p.prediction_rows, p.label_delay_seconds) == (400, 1000, 60.0)
    assert (p.unknown_ids, p.duplicate_labels, p.wrong_type_labels) == (2, 1, 3)
    assert p.metrics is not None and p.metrics[0].name == "accuracy" and p.metrics[0].baseline == 0.9
    assert p.metrics[0].degraded and p.consecutive_degraded == 1
    assert condition(first, "Degraded") == ("True", "PerformanceDegraded")
    assert condition(first, "Drifted") == ("False", "NoDrift"), "concept drift: inputs unchanged, model wrong"
    assert events(first) == ["PerformanceDegraded"] and first.performance is not None
    assert events(second) == [] and second.status.performance.consecutive_degraded == 2  # type: ignore[union-attr]


def test_recovery_resets_the_count_and_fires_a_recovered_event() -> None:
    *_, recovered = run_checks([("no_drift", perf("degraded")), ("no_drift", perf("ok"))])
    assert condition(recovered, "Degraded") == ("False", "PerformanceOk")
    assert events(recovered) == ["PerformanceRecovered"]
    assert recovered.status.performance.consecutive_degraded == 0  # type: ignore[union-attr]


def test_insufficient_labels_keep_the_last_verdict_and_count_and_fire_nothing() -> None:
    _, second = run_checks(
        [("no_drift", perf("degraded")), ("no_drift", perf("insufficient_data", message="12 labelled rows"))]
    )
    assert condition(second, "Degraded") == ("True", "PerformanceDegraded"), "the last verdict stands"
    assert second.status.performance.consecutive_degraded == 1  # type: ignore[union-attr]
    assert second.status.performance.verdict == "insufficient_data"  # type: ignore[union-attr]
    assert events(second) == [] and second.performance is None


def test_a_first_check_without_enough_labels_says_degraded_is_unknown() -> None:
    (plan,) = run_checks([("no_drift", perf("insufficient_data", message="3 labelled rows"))])
    assert condition(plan, "Degraded") == ("Unknown", "InsufficientLabels")


def test_a_failed_performance_check_warns_and_keeps_the_drift_verdict() -> None:
    (plan,) = run_checks([("drift", CheckPerformance(error="StoreError: artifact not found: manifest.json"))])
    assert condition(plan, "Drifted") == ("True", "DriftDetected")
    assert condition(plan, "Ready") == ("True", "Checked")
    assert events(plan) == ["DriftDetected", "PerformanceCheckFailed"]
    assert plan.status.performance is not None and "manifest.json" in (plan.status.performance.message or "")


def test_persistent_degradation_retrains_naming_performance_as_the_cause() -> None:
    *_, second = run_checks([("no_drift", perf()), ("no_drift", perf())], retrain=RETRAIN)
    assert condition(second, "Retraining") == ("True", "DegradationPersisted")
    assert second.status.pending_retrain_check == 2 and second.status.pending_retrain_cause == "performance"
    assert events(second) == ["RetrainRequested"]
    assert second.decision is not None and second.decision.cause == "performance"

    # The Dataset re-read: the TrainingRun names the monitor, the check and the cause.
    pending = second.status.model_copy(update={"refresh_requested_at": NOW})
    refreshed = dataset(last_profile_time=NOW + timedelta(minutes=2), version=2)
    created = plan_driftmonitor(
        observed(
            pending,
            spec=spec(performance=PERFORMANCE, retrain=RETRAIN),
            served_run=SERVING,
            dataset=refreshed,
            now=NOW + timedelta(minutes=3),
        )
    )
    run = next(a.body for a in created.actions if isinstance(a, Create))
    assert run["metadata"]["annotations"] == {
        "gyre.dev/trigger": "drift:ml/iris#2",
        "gyre.dev/trigger-cause": "performance",
    }
    assert "after degraded performance in check 2" in created.events[0].message
    assert created.status.pending_retrain_cause is None


def test_one_degraded_check_is_held_by_hysteresis_like_drift() -> None:
    (plan,) = run_checks([("no_drift", perf())], retrain=RETRAIN)
    assert condition(plan, "Retraining") == ("False", "Hysteresis")
    assert "degraded in 1 of 2" in plan.status.conditions[-1].message  # type: ignore[index]


def test_drift_and_degradation_share_one_cooldown() -> None:
    """A retrain made 10 minutes ago (for drift or anything else; cooldown 1h) holds back one for degradation."""
    recent = checking(
        last_retrain_time=NOW - timedelta(minutes=10), retrain_day="2026-12-01", retrains_today=1
    )
    *_, second = run_checks([("no_drift", perf()), ("no_drift", perf())], status=recent, retrain=RETRAIN)
    assert condition(second, "Retraining") == ("False", "Cooldown")
    assert second.status.pending_retrain_check is None


def test_drift_and_degradation_share_one_daily_cap() -> None:
    capped = checking(retrain_day="2026-12-01", retrains_today=1)
    *_, second = run_checks(
        [("drift", perf()), ("drift", perf())], status=capped, retrain={**RETRAIN, "maxPerDay": 1}
    )
    assert condition(second, "Retraining") == ("False", "DailyCap")
    assert second.status.retrains_today == 1


def test_when_both_persist_one_retrain_is_made_and_performance_is_named() -> None:
    *_, second = run_checks([("drift", perf()), ("drift", perf())], retrain=RETRAIN)
    assert second.status.pending_retrain_cause == "performance" and second.status.retrains_today == 1
    assert events(second) == ["RetrainRequested"]


def test_drift_alone_still_retrains_as_input_drift() -> None:
    *_, second = run_checks([("drift", perf("ok")), ("drift", perf("ok"))], retrain=RETRAIN)
    assert condition(second, "Retraining") == ("True", "DriftPersisted")
    assert second.status.pending_retrain_cause == "input_drift"


def test_performance_retrain_false_reports_degradation_without_retraining() -> None:
    *_, second = run_checks(
        [("no_drift", perf()), ("no_drift", perf())],
        retrain=RETRAIN,
        performance={**PERFORMANCE, "retrain": False},
    )
    assert condition(second, "Degraded") == ("True", "PerformanceDegraded")
    assert condition(second, "Retraining") is None and second.status.pending_retrain_check is None


def test_a_dry_run_on_degradation_records_it_in_the_shared_budget() -> None:
    *_, second = run_checks([("no_drift", perf()), ("no_drift", perf())], retrain={**RETRAIN, "dryRun": True})
    assert condition(second, "Retraining") == ("False", "DryRun")
    assert events(second) == ["WouldRetrain"] and second.status.retrains_today == 1
    assert "degraded performance persists" in second.events[0].message


def test_turning_performance_off_removes_the_degraded_condition() -> None:
    (degraded,) = run_checks([("no_drift", perf())])
    kept = degraded.status.model_dump(exclude={"job_name", "next_check_time"})
    plan = collect(checking(**{**kept, "job_name": "iris-check-2"}), [pod(report("no_drift", check=2))])
    assert condition(plan, "Degraded") is None and condition(plan, "Drifted") == ("False", "NoDrift")
