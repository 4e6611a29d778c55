"""A TrainingRun's lineage names what started it: a person, or a DriftMonitor's check and its cause."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_trainingrun_plan import observed

from gyre.reconcile.trainingrun import plan_trainingrun, trigger_lineage


@pytest.mark.parametrize(
    ("trigger", "cause", "want"),
    [
        ("manual", None, ("manual", None, None)),
        ("drift:ml/iris#7", "performance", ("performance", "iris", 7)),
        ("drift:ml/iris#7", "input_drift", ("input_drift", "iris", 7)),
        ("drift:ml/iris#7", None, ("input_drift", "iris", 7)),  # retrains made before the cause annotation
        ("drift:ml/iris", None, ("input_drift", "iris", None)),
        ("drift:ml/iris#7", "something-else", ("input_drift", "iris", 7)),
        ("search", None, (None, None, None)),
        ("import:model.joblib", None, (None, None, None)),
    ],
)
def test_the_trigger_is_read_into_cause_monitor_and_check(
    trigger: str, cause: str | None, want: tuple[str | None, str | None, int | None]
) -> None:
    assert trigger_lineage(trigger, cause) == want


def test_a_retrain_started_by_degraded_performance_says_so_in_status_lineage() -> None:
    plan = plan_trainingrun(replace(observed(), trigger="drift:ml/iris#12", trigger_cause="performance"))
    lineage = plan.status.lineage
    assert lineage is not None
    assert lineage.trigger == "drift:ml/iris#12", "the readable trigger stays as it was"
    assert (lineage.cause, lineage.monitor, lineage.check) == ("performance", "iris", 12)
