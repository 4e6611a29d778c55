"""What every controller shares: settings, owners, parse-at-the-edge, status writes and Events."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, TypeVar

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ValidationError

from gyre.api.common import API_VERSION, Condition, find_condition, set_condition
from gyre.api.reasons import ConditionType, EventType, Reason
from gyre.builders.meta import LABEL_INSTANCE, Owner
from gyre.builders.settings import OperatorSettings
from gyre.controllers import kube, metrics
from gyre.controllers.recorder import Recorder
from gyre.reconcile.observed import parse_time
from gyre.reconcile.plan import Event, Plan, status_patch

__all__ = [
    "apply_plan",
    "configure",
    "emit",
    "format_validation_error",
    "live_owner",
    "mine",
    "owner_from_body",
    "parse_spec",
    "parse_status",
    "parse_time",
    "recorder",
    "settings",
    "status_patch",
]

_settings: OperatorSettings | None = None
M = TypeVar("M", bound=BaseModel)


def configure(value: OperatorSettings | None) -> None:
    """Set (or, with None, reset to the environment) the operator settings; tests use this."""
    global _settings
    _settings = value


def settings() -> OperatorSettings:
    """The operator settings, read from GYRE_* variables on first use."""
    global _settings
    if _settings is None:
        _settings = OperatorSettings.from_env()
    return _settings


def owner_from_body(body: Mapping[str, Any]) -> Owner:
    """The Owner of children created for this custom resource."""
    meta = body["metadata"]
    return Owner(
        kind=body["kind"],
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta["uid"],
        generation=int(meta.get("generation") or 1),
        api_version=body.get("apiVersion", "gyre.dev/v1alpha1"),
        instance=(meta.get("labels") or {}).get(LABEL_INSTANCE),
    )


def mine(labels: Mapping[str, str], **_: Any) -> bool:
    """kopf `when=` filter: whether this operator instance handles an object (see LABEL_INSTANCE)."""
    return labels.get(LABEL_INSTANCE) == settings().instance


def live_owner(child: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    """The Gyre object of `kind` that controls `child`, read now; None when it is gone, being deleted, or a newer
    object of the same name (another uid)."""
    meta = child.get("metadata") or {}
    ref = next(
        (
            r
            for r in meta.get("ownerReferences") or []
            if r.get("kind") == kind
            and r.get("controller")
            and r.get("apiVersion", "").startswith("gyre.dev/")
        ),
        None,
    )
    if ref is None:
        return None
    owner = kube.get(API_VERSION, kind, meta.get("namespace", ""), ref["name"])
    if owner is None or owner["metadata"]["uid"] != ref["uid"] or owner["metadata"].get("deletionTimestamp"):
        return None
    return owner


def format_validation_error(exc: ValidationError, prefix: str = "spec", limit: int = 5) -> str:
    """A one-line, user-facing summary: `spec.estimator.kind: Input should be ...; ...`."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in (prefix, *err["loc"]))
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _involved(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "namespace": owner.namespace,
        "uid": owner.uid,
    }


def _write_status(owner: Owner, patch: dict[str, Any]) -> None:
    try:
        kube.patch_status(owner.kind, owner.namespace, owner.name, patch)
    except ApiException as exc:
        if exc.status == 404:
            return  # deleted since: nothing left to record
        metrics.RECONCILE_ERRORS.labels(owner.kind, "StatusWriteFailed").inc()
        raise


def _write_event(owner: Owner, event: Event) -> None:
    try:
        kube.post_event(_involved(owner), event.type, event.reason, event.message)
    except Exception:
        metrics.RECONCILE_ERRORS.labels(owner.kind, "EventWriteFailed").inc()
        raise


recorder = Recorder(_write_status, _write_event)


def emit(body: Mapping[str, Any] | Owner, type_: str, reason: str, message: str) -> None:
    """Post a Kubernetes Event about a Gyre object (Normal or Warning), through the recorder."""
    owner = body if isinstance(body, Owner) else owner_from_body(body)
    # Event messages are capped at 1 KiB by the API server.
    recorder.record(owner, events=[Event(type_, reason, message[:1000])])  # type: ignore[arg-type]


REJECTED_RETRY_SECONDS = 60.0


def _record_rejection(owner: Owner, old: BaseModel, message: str) -> None:
    """A refused write (RBAC, an admission policy) becomes Synced=False and one Warning Event per new message; the
    planned status is not written, since what it describes did not happen."""
    conditions: list[Condition] = list(getattr(old, "conditions", None) or [])
    previous = find_condition(conditions, ConditionType.SYNCED)
    if previous is not None and previous.status == "False" and previous.message == message:
        return
    updated = set_condition(
        conditions, ConditionType.SYNCED, "False", Reason.WRITE_REJECTED, message, generation=owner.generation
    )
    refused = old.model_copy(deep=True)
    refused.conditions = updated  # type: ignore[attr-defined]
    kube.patch_status(owner.kind, owner.namespace, owner.name, status_patch(old, refused))
    emit(owner, EventType.WARNING, Reason.WRITE_REJECTED, message)


def _clear_rejection(owner: Owner, old: BaseModel, new: BaseModel) -> None:
    """After a refusal, the first plan that goes through sets Synced=True (in the plan's own status write)."""
    previous = find_condition(list(getattr(old, "conditions", None) or []), ConditionType.SYNCED)
    if previous is None or previous.status == "True" or not hasattr(new, "conditions"):
        return
    new.conditions = set_condition(
        list(new.conditions or []),
        ConditionType.SYNCED,
        "True",
        Reason.WRITES_ACCEPTED,
        generation=owner.generation,
    )


def apply_plan(
    owner: Owner, old: BaseModel, plan: Plan[Any], *, patch: MutableMapping[str, Any] | None = None
) -> None:
    """Carry out a plan: the child writes, now; then the status (only the fields that changed) and the Events.

    With kopf's `patch` (a handler of the object itself) the status goes out with kopf's own write; otherwise the
    recorder writes it, with the Events, after this returns. A plan that changes nothing writes nothing.
    """
    try:
        kube.execute(owner.namespace, plan.actions)
    except kube.Rejected as rejected:
        _record_rejection(owner, old, str(rejected))
        raise kopf.TemporaryError(str(rejected), delay=REJECTED_RETRY_SECONDS) from rejected
    _clear_rejection(owner, old, plan.status)
    changes = status_patch(old, plan.status)
    if changes and patch is not None:
        patch.setdefault("status", {}).update(changes)
        changes = {}
    recorder.record(owner, changes, plan.events)
    metrics.observe_plan(owner, old, plan)


def parse_spec(model: type[M], body: Mapping[str, Any]) -> tuple[M | None, str | None]:
    """Parse at the edge: (spec, None), or (None, a user-facing reason) when the stored spec does not validate."""
    try:
        return model.model_validate(dict(body.get("spec") or {})), None
    except ValidationError as exc:
        return None, format_validation_error(exc)


def parse_status(model: type[M], body: Mapping[str, Any]) -> M:
    """The stored status; one that no longer validates (hand-edited, older operator) is rebuilt from scratch."""
    try:
        return model.model_validate(dict(body.get("status") or {}))
    except ValidationError:
        return model()
