"""Keeps gyre_object_phase in step with deletions: apply_plan records phases, this drops deleted objects.

Low-level event handlers on purpose: no finalizer and no kopf bookkeeping on the objects.
"""

from __future__ import annotations

from typing import Any

import kopf

from gyre.api.common import GROUP, VERSION
from gyre.controllers import metrics
from gyre.controllers.common import mine

__all__ = ["forget_deleted"]


@kopf.on.event(GROUP, VERSION, "datasets", when=mine)
@kopf.on.event(GROUP, VERSION, "trainingruns", when=mine)
@kopf.on.event(GROUP, VERSION, "modeldeployments", when=mine)
@kopf.on.event(GROUP, VERSION, "driftmonitors", when=mine)
def forget_deleted(body: kopf.Body, type: str | None, **_: Any) -> None:
    """A deleted Gyre object leaves gyre_object_phase."""
    if type == "DELETED":
        meta = body["metadata"]
        metrics.forget_object(body["kind"], meta.get("namespace", ""), meta["name"])
