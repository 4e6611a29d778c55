"""Validation gates: whether a model's metrics meet the bounds its TrainingRun declares."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gyre.api.trainingrun import Gate

__all__ = ["GateResult", "GatesVerdict", "evaluate_gates"]


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate."""

    gate: Gate
    value: float | None
    passed: bool
    message: str


@dataclass(frozen=True)
class GatesVerdict:
    """The outcome of every gate, summarised for the Validated condition."""

    passed: bool
    reason: str
    """GatesPassed, GatesFailed or NoGates."""
    message: str
    results: tuple[GateResult, ...]


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _check(gate: Gate, metrics: Mapping[str, float]) -> GateResult:
    value = metrics.get(gate.metric)
    if value is None:
        known = ", ".join(sorted(metrics)) or "none"
        return GateResult(gate, None, False, f"{gate.metric} was not reported (metrics: {known})")
    if math.isnan(value):
        return GateResult(gate, value, False, f"{gate.metric} is NaN")
    if gate.min is not None and value < gate.min:
        return GateResult(gate, value, False, f"{gate.metric} {_fmt(value)} < min {_fmt(gate.min)}")
    if gate.max is not None and value > gate.max:
        return GateResult(gate, value, False, f"{gate.metric} {_fmt(value)} > max {_fmt(gate.max)}")
    bounds = [
        f">= {_fmt(gate.min)}" if gate.min is not None else "",
        f"<= {_fmt(gate.max)}" if gate.max is not None else "",
    ]
    return GateResult(
        gate, value, True, f"{gate.metric} {_fmt(value)} {' and '.join(b for b in bounds if b)}"
    )


def evaluate_gates(gates: Sequence[Gate] | None, metrics: Mapping[str, float]) -> GatesVerdict:
    """Check every gate against the metrics; the message names each failed gate, or counts the passed ones."""
    if not gates:
        return GatesVerdict(True, "NoGates", "no gates declared; the model is promotable", ())
    results = tuple(_check(g, metrics) for g in gates)
    failed = [r for r in results if not r.passed]
    if failed:
        return GatesVerdict(False, "GatesFailed", "; ".join(r.message for r in failed), results)
    noun = "gate" if len(results) == 1 else "gates"
    return GatesVerdict(True, "GatesPassed", f"all {len(results)} {noun} passed", results)
