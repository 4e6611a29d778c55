"""Validation gates, re-exported from gyre.api.gates (one implementation shared by trainer and controller)."""

from __future__ import annotations

from gyre.api.gates import GateResult, GatesVerdict, evaluate_gates
from gyre.api.trainingrun import Gate

__all__ = ["Gate", "GateResult", "GatesVerdict", "evaluate_gates"]
