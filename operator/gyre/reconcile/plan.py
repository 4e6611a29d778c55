"""What a plan asks the controller to do: the new status, the writes to children, and the Events to post."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from gyre.api.reasons import EventType
from gyre.builders.pods import build_artifact_pvc
from gyre.builders.settings import OperatorSettings

__all__ = [
    "APPLIED_HASH_ANNOTATION",
    "Action",
    "Apply",
    "Create",
    "Delete",
    "Event",
    "MergePatch",
    "Plan",
    "create_with_claim",
    "dump_status",
    "status_patch",
    "with_applied_hash",
]

# On every applied child: the hash of the desired object it was last applied from. Equal hash, nothing to apply.
APPLIED_HASH_ANNOTATION = "gyre.dev/applied-hash"

S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True)
class Create:
    """Create this object unless one of its (deterministic) name exists; never overwrites."""

    body: dict[str, Any]


@dataclass(frozen=True)
class Apply:
    """Server-side apply this complete desired object (only planned when it differs from what runs)."""

    body: dict[str, Any]


@dataclass(frozen=True)
class Delete:
    """Delete a child that the spec no longer asks for (only planned when it exists)."""

    api_version: str
    kind: str
    name: str


@dataclass(frozen=True)
class MergePatch:
    """JSON merge-patch another object in the same namespace (e.g. one annotation on a Dataset)."""

    api_version: str
    kind: str
    name: str
    patch: dict[str, Any]


Action = Create | Apply | Delete | MergePatch


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event about the reconciled object."""

    type: EventType
    reason: str
    message: str


@dataclass
class Plan(Generic[S]):
    """The outcome of one reconcile decision.

    `status` is the complete new status; the controller writes it only when it differs from the observed one, so a
    steady-state reconcile writes nothing. Waiting is a state, not an instruction: a plan that must be made again
    later says so in its status (a TrainingRun's phase Pending), and the controller's timer filters on that.
    """

    status: S
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def event(self, type_: EventType, reason: str, message: str) -> None:
        """Post an Event (messages are capped at 1 KiB by the API server, so they are cut here)."""
        self.events.append(Event(type_, str(reason), message[:1000]))


def create_with_claim(settings: OperatorSettings, namespace: str, body: dict[str, Any]) -> list[Action]:
    """Create a pod-running child (a Job, a retraining run's Job) after the namespace's artifact claim, which its pods
    mount when the store is pvc://; the executor creates a claim once per process, not once per child."""
    pvc = build_artifact_pvc(settings, namespace)
    return [Create(pvc), Create(body)] if pvc is not None else [Create(body)]


def dump_status(status: BaseModel) -> dict[str, Any]:
    """A status model as the JSON the API server stores (camelCase, no unset fields)."""
    out: dict[str, Any] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def status_patch(old: BaseModel, new: BaseModel) -> dict[str, Any]:
    """A merge patch from `old` to `new` status, empty when nothing changed.

    Only changed top-level fields are sent; fields `new` no longer has are sent as null so the merge removes them.
    """
    before, after = dump_status(old), dump_status(new)
    patch: dict[str, Any] = {k: v for k, v in after.items() if before.get(k) != v}
    for key in before:
        if key not in after:
            patch[key] = None
    return patch


def with_applied_hash(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The desired object annotated with its own hash, and the hash.

    A plan compares the hash with the one on the live child and plans an `Apply` only when they differ, so a
    steady-state reconcile sends no write at all.
    """
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    meta = dict(body["metadata"])
    meta["annotations"] = {**(meta.get("annotations") or {}), APPLIED_HASH_ANNOTATION: digest}
    return {**body, "metadata": meta}, digest
