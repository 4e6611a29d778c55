"""Validation gates: whether a model's metrics meet the bounds its TrainingRun declares."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gyre.api.slices import SliceGap, SliceGate, SlicesSpec, SlicesStatus
from gyre.api.trainingrun import Gate

__all__ = ["GateResult", "GatesVerdict", "combine_verdicts", "evaluate_gates", "evaluate_slice_gates"]


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


def combine_verdicts(*verdicts: GatesVerdict) -> GatesVerdict:
    """One verdict for the Validated condition from several (spec.gates, then spec.slices.gates): failed when any
    failed, naming every failed gate; NoGates when none declared any."""
    declared = [v for v in verdicts if v.reason != "NoGates"]
    if not declared:
        return verdicts[0] if verdicts else GatesVerdict(True, "NoGates", "no gates declared", ())
    results = tuple(r for v in declared for r in v.results)
    failed = [v for v in declared if not v.passed]
    if failed:
        return GatesVerdict(False, "GatesFailed", "; ".join(v.message for v in failed), results)
    noun = "gate" if len(results) == 1 else "gates"
    return GatesVerdict(True, "GatesPassed", f"all {len(results)} {noun} passed", results)


def _fmt4(value: float) -> str:
    return f"{value:.4g}"


def _gap_result(gate: SliceGate, gaps: Sequence[SliceGap], min_count: int) -> GateResult:
    measured = [g for g in gaps if g.gap is not None]
    probe = Gate(metric=gate.metric, max=gate.max_gap)
    if not measured:
        return GateResult(
            probe,
            None,
            False,
            f"slice gate {gate.metric} maxGap {_fmt4(gate.max_gap or 0)}: not measured, no slice column has two "
            f"slices with at least {min_count} test rows (lower slices.minCount or add data)",
        )
    widest = max(measured, key=lambda g: g.gap or 0.0)
    value = widest.gap or 0.0
    verdict = evaluate_gates([probe], {gate.metric: value}).results[0]
    relation = "<=" if verdict.passed else ">"
    message = (
        f"slice gate {gate.metric} gap across {widest.column} {_fmt4(value)} {relation} maxGap {_fmt4(gate.max_gap or 0)}"
        f" ({widest.column}={widest.lowest} {_fmt4(widest.lowest_score)} vs "
        f"{widest.column}={widest.highest} {_fmt4(widest.highest_score)})"
    )
    return GateResult(probe, value, verdict.passed, message)


def _bound_result(gate: SliceGate, gaps: Sequence[SliceGap], min_count: int, bound: str) -> GateResult:
    probe = (
        Gate(metric=gate.metric, min=gate.min) if bound == "min" else Gate(metric=gate.metric, max=gate.max)
    )
    limit = gate.min if bound == "min" else gate.max
    if not gaps:
        return GateResult(
            probe,
            None,
            False,
            f"slice gate {gate.metric} {bound} {_fmt4(limit or 0)}: not measured, no slice has at least "
            f"{min_count} test rows",
        )
    if bound == "min":
        entry = min(gaps, key=lambda g: g.lowest_score)
        value, where = entry.lowest_score, f"{entry.column}={entry.lowest}"
    else:
        entry = max(gaps, key=lambda g: g.highest_score)
        value, where = entry.highest_score, f"{entry.column}={entry.highest}"
    verdict = evaluate_gates([probe], {gate.metric: value}).results[0]
    relation = ("<" if bound == "min" else ">") if not verdict.passed else (">=" if bound == "min" else "<=")
    message = f"slice gate {gate.metric} {where} {_fmt4(value)} {relation} {bound} {_fmt4(limit or 0)}"
    return GateResult(probe, value, verdict.passed, message)


def evaluate_slice_gates(spec: SlicesSpec, status: SlicesStatus | None) -> GatesVerdict:
    """Check spec.slices.gates against the measured slices; each failure names the gate, column and slices.

    Each bound is decided by gyre.api.gates.evaluate_gates on the one value that matters: the widest gap of the
    metric over the slice columns (maxGap), the lowest slice (min), the highest slice (max). Missing measurements
    fail the gate, with a message saying why.
    """
    gates = spec.gates or []
    if not gates:
        return GatesVerdict(True, "NoGates", "no slice gates declared", ())
    results: list[GateResult] = []
    for gate in gates:
        gaps = [g for g in (status.gaps or [] if status else []) if g.metric == gate.metric]
        if gate.max_gap is not None:
            results.append(_gap_result(gate, gaps, spec.min_count))
        if gate.min is not None:
            results.append(_bound_result(gate, gaps, spec.min_count, "min"))
        if gate.max is not None:
            results.append(_bound_result(gate, gaps, spec.min_count, "max"))
    failed = [r for r in results if not r.passed]
    if failed:
        return GatesVerdict(False, "GatesFailed", "; ".join(r.message for r in failed), tuple(results))
    noun = "slice gate" if len(results) == 1 else "slice gates"
    return GatesVerdict(True, "GatesPassed", f"all {len(results)} {noun} passed", tuple(results))
