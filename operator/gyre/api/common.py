"""Shapes shared by every Gyre kind: the base model, conditions, references, resources, durations."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

__all__ = [
    "API_VERSION",
    "DURATION_PATTERN",
    "FINGERPRINT_PATTERN",
    "GROUP",
    "QUANTITY_PATTERN",
    "REFRESH_ANNOTATION",
    "TRIGGER_ANNOTATION",
    "TRIGGER_CAUSE_ANNOTATION",
    "VERSION",
    "ApiModel",
    "Condition",
    "ConditionStatus",
    "Duration",
    "Fingerprint",
    "LabelSelector",
    "LabelSelectorRequirement",
    "LocalObjectReference",
    "Quantity",
    "ResourceRequirements",
    "StatusModel",
    "bounds_rules",
    "find_condition",
    "parse_duration",
    "set_condition",
    "utcnow",
]

GROUP = "gyre.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Set on a TrainingRun by whoever created it (a DriftMonitor, a search, a person); copied into status.lineage.
TRIGGER_ANNOTATION = "gyre.dev/trigger"
# Beside TRIGGER_ANNOTATION on a DriftMonitor's retrain: what it answers, input_drift or performance.
TRIGGER_CAUSE_ANNOTATION = "gyre.dev/trigger-cause"
# Set on a Dataset (by a DriftMonitor about to retrain, or a person) to re-read its source now; the value, a
# timestamp, names the request, so the same value never starts a second read.
REFRESH_ANNOTATION = "gyre.dev/refresh-requested-at"

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
FINGERPRINT_PATTERN = r"^sha256:[0-9a-f]{64}$"
# The Kubernetes resource.Quantity grammar (suffixes: binary Ki..Ei, decimal n..E, or an exponent).
QUANTITY_PATTERN = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"


class ApiModel(BaseModel):
    """Base of every spec model: camelCase on the wire, snake_case in Python, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=False,
    )


class StatusModel(ApiModel):
    """Base of status models: tolerant of fields written by a newer operator."""

    model_config = ConfigDict(extra="ignore")


def _quantity_to_str(value: Any) -> Any:
    # YAML turns `cpu: 1` into an int; the API server accepts both, so do we.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_quantity_to_str),
    Field(pattern=QUANTITY_PATTERN),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity such as `500m`, `2`, `1Gi`."""

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=64)]
"""A Go-style duration such as `30s`, `5m`, `1h30m`."""

Fingerprint = Annotated[str, Field(pattern=FINGERPRINT_PATTERN)]
"""A content fingerprint, `sha256:` followed by 64 lowercase hex digits."""

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def bounds_rules(what: str) -> list[Any]:
    """CEL rules of an object with optional `min` and `max`: at least one, and min <= max."""
    return [
        {"rule": "has(self.min) || has(self.max)", "message": f"a {what} needs min, max or both"},
        {
            "rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
            "message": f"{what} min must not be greater than max",
        },
    ]


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration (`1h30m`, `45s`, `250ms`) into a timedelta.

    Raises ValueError when the text is not a duration.
    """
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h30m)")
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def utcnow() -> datetime:
    """The current time in UTC, truncated to whole seconds as Kubernetes timestamps are."""
    return datetime.now(UTC).replace(microsecond=0)


class LocalObjectReference(ApiModel):
    """A reference to an object of a known kind in the same namespace."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the referenced object."""


class ResourceRequirements(ApiModel):
    """Compute resources for the container, as in a Pod's `resources`."""

    requests: dict[str, Quantity] | None = Field(default=None, max_length=16)
    """Minimum resources the scheduler reserves, e.g. `{cpu: 500m, memory: 1Gi}`."""
    limits: dict[str, Quantity] | None = Field(default=None, max_length=16)
    """Hard caps; exceeding the memory limit kills the container (OOMKilled)."""


class LabelSelectorRequirement(ApiModel):
    """One label selector expression."""

    key: str = Field(min_length=1, max_length=317)
    """The label key the selector applies to."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """How the key relates to the values."""
    values: list[str] | None = Field(default=None, max_length=64)
    """Values for In and NotIn; must be empty for Exists and DoesNotExist."""


class LabelSelector(ApiModel):
    """A standard Kubernetes label selector; all terms are ANDed."""

    match_labels: dict[str, str] | None = Field(default=None, max_length=32)
    """Labels an object must carry with exactly these values."""
    match_expressions: list[LabelSelectorRequirement] | None = Field(default=None, max_length=16)
    """Set-based requirements an object's labels must satisfy."""


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """One aspect of an object's current state, in the standard Kubernetes shape."""

    type: str = Field(max_length=316)
    """Condition type in CamelCase, e.g. Ready, Validated, DatasetReady."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str = Field(max_length=1024)
    """One CamelCase word explaining the status, meant for machines."""
    message: str = Field(default="", max_length=32768)
    """A human-readable explanation, including what to do about it when something is wrong."""
    last_transition_time: datetime
    """When the status last changed (not when the condition was last written)."""
    observed_generation: int | None = None
    """The metadata.generation the condition was computed from."""


def find_condition(conditions: list[Condition], type_: str) -> Condition | None:
    """The condition of the given type, or None."""
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str = "",
    *,
    generation: int | None = None,
    now: datetime | None = None,
) -> list[Condition]:
    """Return a copy of `conditions` with `type_` set; lastTransitionTime moves only when the status changes.

    Every condition Gyre writes goes through this helper, so the shape and the transition semantics are uniform.
    """
    now = now or utcnow()
    out: list[Condition] = []
    found = False
    for cond in conditions:
        if cond.type != type_:
            out.append(cond)
            continue
        found = True
        moved = cond.status != status
        out.append(
            Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now if moved else cond.last_transition_time,
                observed_generation=generation,
            )
        )
    if not found:
        out.append(
            Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now,
                observed_generation=generation,
            )
        )
    return out
