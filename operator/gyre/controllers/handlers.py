"""The module kopf runs: importing it registers every Gyre handler and the operator-wide settings."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, cast

import kopf

from gyre.controllers import (
    common,
    dataset,
    driftmonitor,
    indexes,
    inventory,
    modeldeployment,
    trainingrun,
)

__all__ = [
    "FINALIZER",
    "PREFIX",
    "EssenceStorage",
    "configure_kopf",
    "dataset",
    "driftmonitor",
    "flush_records",
    "indexes",
    "inventory",
    "modeldeployment",
    "startup",
    "trainingrun",
]

# Kopf's bookkeeping annotations live apart from Gyre's own (gyre.dev/...), which kopf must see change.
PREFIX = "kopf.gyre.dev"
FINALIZER = "gyre.dev/finalizer"
WORKERS = 16
RECORDS_FLUSH_SECONDS = 10.0
log = logging.getLogger(__name__)


class EssenceStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff-base storage, building the same essence for less: kopf deep-copies every event's whole object
    (status and managedFields included) and then drops all but the spec, labels and annotations; on this operator's
    busiest watches (TrainingRuns, Jobs) that copy was the event loop's largest single cost. Only what survives is
    copied here; with extra fields (a field handler's), kopf's own build runs."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        fields = list(extra_fields or [])
        if fields:
            return super().build(body=body, extra_fields=fields)
        meta = body.get("metadata") or {}
        kept = {k: v for k, v in body.items() if k not in _NOT_ESSENCE}
        kept["metadata"] = {k: meta[k] for k in ("labels", "annotations") if k in meta}
        return super().build(body=kopf.Body(cast(kopf.RawBody, kept)))


_NOT_ESSENCE = frozenset({"apiVersion", "kind", "metadata", "status"})


def configure_kopf(kopf_settings: kopf.OperatorSettings) -> None:
    """Keep kopf's bookkeeping out of status and under Gyre's own names."""
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    kopf_settings.persistence.diffbase_storage = EssenceStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    kopf_settings.persistence.finalizer = FINALIZER
    # Events come only from the recorder (gyre.controllers.recorder), never from log lines.
    kopf_settings.posting.loggers = False
    kopf_settings.watching.server_timeout = 300
    kopf_settings.watching.client_timeout = 330
    # Sync handlers run in this thread pool; each mostly waits on the API server, so more threads than cores.
    kopf_settings.execution.max_workers = WORKERS
    # Namespaces are exact names (--namespace) and the CRDs are installed before the operator starts, so kopf need
    # not list namespaces nor watch CRDs: the RBAC has no cluster-scoped grant (gyre.controllers.permissions).
    kopf_settings.scanning.disabled = True


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Apply Gyre's kopf settings and fail fast on a bad GYRE_* environment."""
    configure_kopf(settings)
    current = common.settings()
    log.info("gyre operator: artifact store %s, image %s", current.artifact_store, current.image)


@kopf.on.cleanup()
def flush_records(**_: Any) -> None:
    """On a graceful stop, write the records still queued (the next start would plan them again anyway)."""
    if not common.recorder.idle(timeout=RECORDS_FLUSH_SECONDS):
        log.warning("stopping with status writes or Events still queued")
