"""Keeps gyre_object_phase in step with deletions: apply_plan records phases, this drops deleted objects.

Low-level event handlers on purpose: no finalizer and no kopf bookkeeping on the objects. Only deletions pass the
filter, and the handler is a coroutine: the other events of a burst cost neither a worker thread nor a call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from gyre.api.common import GROUP, VERSION
from gyre.controllers import metrics
from gyre.controllers.common import mine

__all__ = ["forget_deleted"]


def _deleted(labels: Mapping[str, str], type: str | None, **_: Any) -> bool:
    return type == "DELETED" and mine(labels)


@kopf.on.event(GROUP, VERSION, "datasets", when=_deleted)
@kopf.on.event(GROUP, VERSION, "trainingruns", when=_deleted)
@kopf.on.event(GROUP, VERSION, "modeldeployments", when=_deleted)
@kopf.on.event(GROUP, VERSION, "driftmonitors", when=_deleted)
async def forget_deleted(body: kopf.Body, **_: Any) -> None:
    """A deleted Gyre object leaves gyre_object_phase."""
    meta = body["metadata"]
    metrics.forget_object(body["kind"], meta.get("namespace", ""), meta["name"])
