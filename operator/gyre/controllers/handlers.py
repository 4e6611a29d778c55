"""The module kopf runs: importing it registers every Gyre handler and the operator-wide settings."""

from __future__ import annotations

import logging
from typing import Any

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
    "configure_kopf",
    "dataset",
    "driftmonitor",
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
log = logging.getLogger(__name__)


def configure_kopf(kopf_settings: kopf.OperatorSettings) -> None:
    """Keep kopf's bookkeeping out of status and under Gyre's own names."""
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    kopf_settings.persistence.finalizer = FINALIZER
    # Events come only from explicit emit() calls, never from log lines.
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
