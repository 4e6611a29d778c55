"""The training pod's result, written to its termination message (at most 4 KiB)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gyre.api.slices import SlicesStatus
from gyre.api.trainingrun import ImportanceSummary, Task
from gyre.store.termination import TERMINATION_MESSAGE_LIMIT

__all__ = ["GateOutcome", "TrackingOutcome", "TrainReport"]

_ERROR_CHARS = 1500
_REASON_CHARS = 300


class _Report(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class GateOutcome(_Report):
    """Summary of the validation gates as evaluated in the pod (details in the store's report.json)."""

    passed: bool
    message: str = ""


class TrackingOutcome(_Report):
    """Whether the pod logged its run to MLflow (gyre.tracking.mlflow); a failure never fails training."""

    logged: bool
    experiment_id: str | None = None
    run_id: str | None = None
    """This pod's MLflow run (a search trial's child run)."""
    parent_run_id: str | None = None
    """A search's parent run."""
    url: str | None = None
    """The run's page in the MLflow UI."""
    parent_url: str | None = None
    message: str | None = None
    """Why logging failed (or what was left out)."""


class TrainReport(_Report):
    """Compact result of `gyre train`; the full manifest lives beside the model at `model_uri`."""

    phase: Literal["Succeeded", "Failed"]
    task: Task | None = None
    estimator: str | None = None
    trial_index: int | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    model_uri: str | None = None
    """URL of the model directory (model.skops, manifest.json, model.onnx)."""
    model_sha256: str | None = None
    """The model's digest: hex sha256 of manifest.json, which records the sha256 of every other model file."""
    onnx: Literal["verified", "unavailable"] | None = None
    onnx_reason: str | None = None
    dataset_fingerprint: str | None = None
    gates: GateOutcome | None = None
    slices: SlicesStatus | None = None
    """spec.slices: the worst slices and every gap (the operator evaluates the slice gates on them)."""
    tracking: TrackingOutcome | None = None
    """MLflow logging, when a tracking server applies."""
    card: bool | None = None
    """card.md and card.html were written beside the model (gyre.governance.card)."""
    importances: ImportanceSummary | None = None
    """The model's top input columns by permutation importance (all of them: manifest.json `importances`)."""
    error: str | None = None
    reason: str | None = None
    """CamelCase reason for a failure (InvalidSpec, DatasetMismatch, TrainingFailed, ...)."""
    truncated: bool = False
    """Some non-essential fields were shortened or dropped to fit the 4 KiB limit."""

    def _dump(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True))

    def to_termination_message(self, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
        """Compact JSON guaranteed to fit in `limit` bytes.

        Dropped in order until it fits: long error and ONNX reason text, params, the gate message, importances,
        metrics other than the first few. Phase, URIs, sha256, fingerprint and trial index are always kept.
        """
        report = self.model_copy(deep=True)
        if report.error and len(report.error) > _ERROR_CHARS:
            report.error, report.truncated = report.error[:_ERROR_CHARS] + "...", True
        if report.onnx_reason and len(report.onnx_reason) > _REASON_CHARS:
            report.onnx_reason, report.truncated = report.onnx_reason[:_REASON_CHARS] + "...", True
        data = report._dump()
        if len(data) <= limit:
            return data.decode()
        report.truncated = True
        for step in _SHRINK_STEPS:
            step(report)
            data = report._dump()
            if len(data) <= limit:
                return data.decode()
        essentials = report.model_dump(
            mode="json",
            by_alias=True,
            exclude_none=True,
            include={
                "phase",
                "trial_index",
                "model_uri",
                "model_sha256",
                "dataset_fingerprint",
                "reason",
                "card",
                "truncated",
            },
        )
        return orjson.dumps(essentials).decode()

    @classmethod
    def from_termination_message(cls, message: str) -> TrainReport:
        """Parse a termination message written by `to_termination_message`."""
        return cls.model_validate_json(message)


def _drop_params(r: TrainReport) -> None:
    r.params = {}


def _drop_onnx_reason(r: TrainReport) -> None:
    r.onnx_reason = None


def _short_error(r: TrainReport) -> None:
    r.error = (r.error or "")[:200] or None


def _short_gate_message(r: TrainReport) -> None:
    if r.gates is not None:
        r.gates = GateOutcome(passed=r.gates.passed, message=r.gates.message[:200])


def _short_tracking(r: TrainReport) -> None:
    if r.tracking is not None:
        message = (r.tracking.message or "")[:200] or None
        r.tracking = r.tracking.model_copy(update={"url": None, "parent_url": None, "message": message})


def _few_slices(r: TrainReport) -> None:
    if r.slices is not None and r.slices.slices:
        r.slices = r.slices.model_copy(update={"slices": r.slices.slices[:2]})


def _no_slice_list(r: TrainReport) -> None:
    if r.slices is not None:
        r.slices = r.slices.model_copy(update={"slices": None})


def _no_importances(r: TrainReport) -> None:
    r.importances = None


def _few_metrics(r: TrainReport) -> None:
    r.metrics = dict(list(r.metrics.items())[:8])


def _no_metrics(r: TrainReport) -> None:
    r.metrics = {}


def _no_gate_message(r: TrainReport) -> None:
    if r.gates is not None:
        r.gates = GateOutcome(passed=r.gates.passed)


def _no_error(r: TrainReport) -> None:
    r.error = None


# Applied in order until the message fits; the first ones lose the least.
_SHRINK_STEPS: tuple[Callable[[TrainReport], None], ...] = (
    _drop_params,
    _drop_onnx_reason,
    _short_error,
    _short_gate_message,
    _short_tracking,
    _few_slices,
    _no_slice_list,
    _no_importances,
    _few_metrics,
    _no_metrics,
    _no_gate_message,
    _no_error,
)
