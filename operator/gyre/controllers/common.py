"""What every controller shares: settings, owners, parse-at-the-edge, status writes and Events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import kopf
from pydantic import BaseModel, ValidationError

from gyre.api.common import Condition, utcnow
from gyre.builders.job import build_artifact_pvc
from gyre.builders.meta import LABEL_INSTANCE, Owner
from gyre.builders.settings import OperatorSettings
from gyre.controllers import kube

__all__ = [
    "conditions_json",
    "configure",
    "dump_status",
    "emit",
    "ensure_artifact_pvc",
    "format_validation_error",
    "mine",
    "owner_from_body",
    "owner_of_child",
    "parse_time",
    "settings",
]

_settings: OperatorSettings | None = None


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


def owner_of_child(child: Mapping[str, Any], kind: str) -> tuple[str, str, str] | None:
    """(namespace, name, uid) of the controlling owner of the given kind, or None."""
    meta = child.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if (
            ref.get("kind") == kind
            and ref.get("controller")
            and ref.get("apiVersion", "").startswith("gyre.dev/")
        ):
            return meta.get("namespace", ""), ref["name"], ref["uid"]
    return None


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


def dump_status(status: BaseModel) -> dict[str, Any]:
    """A status model as the JSON the API server stores (camelCase, no unset fields)."""
    out: dict[str, Any] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def conditions_json(conditions: list[Condition]) -> list[dict[str, Any]]:
    """Conditions as JSON, for status patches."""
    return [dump_status(c) for c in conditions]


def emit(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Post a Kubernetes Event about a Gyre object (Normal or Warning)."""
    ref = {
        "apiVersion": body.get("apiVersion", "gyre.dev/v1alpha1"),
        "kind": body["kind"],
        "metadata": {
            "name": body["metadata"]["name"],
            "namespace": body["metadata"]["namespace"],
            "uid": body["metadata"]["uid"],
        },
    }
    # Event messages are capped at 1 KiB by the API server.
    kopf.event(ref, type=type_, reason=reason, message=message[:1000])  # type: ignore[arg-type]


def ensure_artifact_pvc(namespace: str) -> None:
    """Create the namespace's artifact claim when the store is pvc:// and the claim does not exist yet."""
    pvc = build_artifact_pvc(settings(), namespace)
    if pvc is not None:
        kube.create_if_absent(pvc)


def parse_time(value: str | None) -> datetime:
    """An RFC 3339 timestamp from the API server, or now when it is missing or unreadable."""
    if value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    return utcnow()


def status_patch(old: BaseModel, new: BaseModel) -> dict[str, Any]:
    """A merge patch from `old` to `new` status: fields `new` no longer has are sent as null, so they are removed.

    dump_status() leaves unset fields out, which a merge patch reads as "keep": clearing a field (a finished Job's
    name, a removed canary) needs the explicit null.
    """
    before, after = dump_status(old), dump_status(new)
    patch: dict[str, Any] = dict(after)
    for key in before:
        if key not in after:
            patch[key] = None
    return patch
