"""Validation gates decide whether a model may be promoted."""

from __future__ import annotations

import math

from hypothesis import assume, given
from hypothesis import strategies as st

from gyre.api.gates import evaluate_gates
from gyre.api.trainingrun import Gate


def test_no_gates_is_promotable() -> None:
    verdict = evaluate_gates(None, {"accuracy": 0.5})
    assert verdict.passed and verdict.reason == "NoGates"


def test_all_gates_pass() -> None:
    gates = [Gate(metric="accuracy", min=0.9), Gate(metric="log_loss", max=0.3)]
    verdict = evaluate_gates(gates, {"accuracy": 0.95, "log_loss": 0.1})
    assert verdict.passed
    assert (verdict.reason, verdict.message) == ("GatesPassed", "all 2 gates passed")


def test_failed_gate_is_named_with_value_and_bound() -> None:
    gates = [Gate(metric="accuracy", min=0.9), Gate(metric="f1_macro", min=0.5)]
    verdict = evaluate_gates(gates, {"accuracy": 0.71, "f1_macro": 0.8})
    assert not verdict.passed
    assert verdict.reason == "GatesFailed"
    assert verdict.message == "accuracy 0.71 < min 0.9"


def test_max_bound_and_range() -> None:
    verdict = evaluate_gates([Gate(metric="rmse", min=0.0, max=1.5)], {"rmse": 2.0})
    assert verdict.message == "rmse 2 > max 1.5"
    assert evaluate_gates([Gate(metric="rmse", min=0.0, max=1.5)], {"rmse": 1.5}).passed


def test_missing_or_nan_metric_fails() -> None:
    verdict = evaluate_gates([Gate(metric="r2", min=0.5)], {"accuracy": 0.9})
    assert not verdict.passed
    assert "r2 was not reported (metrics: accuracy)" in verdict.message
    assert not evaluate_gates([Gate(metric="r2", min=0.5)], {"r2": math.nan}).passed


bounds = st.one_of(st.none(), st.floats(-10, 10, allow_nan=False))


@given(value=st.floats(-10, 10, allow_nan=False), low=bounds, high=bounds)
def test_a_gate_passes_exactly_when_the_value_is_within_its_bounds(
    value: float, low: float | None, high: float | None
) -> None:
    assume(low is not None or high is not None)
    assume(low is None or high is None or low <= high)
    verdict = evaluate_gates([Gate(metric="m", min=low, max=high)], {"m": value})
    within = (low is None or value >= low) and (high is None or value <= high)
    assert verdict.passed is within
    assert verdict.reason == ("GatesPassed" if within else "GatesFailed")
