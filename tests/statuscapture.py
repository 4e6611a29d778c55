"""Record the statuses the operator really writes, for the Argo CD health-check tests.

With GYRE_CAPTURE_STATUSES=FILE set, the integration and e2e tiers watch every Gyre object in the cluster for the
whole session and write each distinct state they saw (kind, generation, deletion, status) to FILE as JSON.
`make argocd-statuses` runs the tiers that way and refreshes tests/data/argocd/observed.json, which
tests/unit/install/test_argocd_health.py feeds to the health scripts.

Distinct means a different shape as far as health goes: phase, each condition's type, status and reason, whether
the spec change is observed, whether the object is being deleted, whether a drift check has run. Messages and
timestamps vary from run to run; the first object seen with a shape is kept, trimmed to what the scripts read.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes

ENV = "GYRE_CAPTURE_STATUSES"
KINDS = {"datasets": "Dataset", "trainingruns": "TrainingRun", "modeldeployments": "ModelDeployment",
         "driftmonitors": "DriftMonitor"}  # fmt: skip
# Status fields the health scripts read; the rest (columns, features, metrics) only makes the file long.
KEPT = ("phase", "observedGeneration", "conditions", "lastCheckTime", "version", "fingerprint", "verdict")


def trim(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata", {})
    status = {k: v for k, v in (obj.get("status") or {}).items() if k in KEPT}
    for cond in status.get("conditions") or []:
        cond.pop("lastTransitionTime", None)
    out: dict[str, Any] = {
        "apiVersion": "gyre.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": meta.get("name"), "generation": meta.get("generation")},
    }
    if meta.get("deletionTimestamp"):
        out["metadata"]["deletionTimestamp"] = meta["deletionTimestamp"]
    if obj.get("status") is not None:
        out["status"] = status
    return out


def shape(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    conditions = sorted(
        (c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or []
    )
    observed = status.get("observedGeneration")
    return json.dumps(
        [
            obj["kind"],
            status.get("phase"),
            conditions,
            observed is not None and observed >= (obj["metadata"].get("generation") or 0),
            "deletionTimestamp" in obj["metadata"],
            "lastCheckTime" in status,
            "status" in obj,
        ]
    )


class Capture:
    """Watches the four kinds cluster-wide in background threads until stop()."""

    def __init__(self, api: kubernetes.client.ApiClient, path: Path) -> None:
        self.api, self.path = api, path
        self.seen: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.watches: list[kubernetes.watch.Watch] = []
        self.threads: list[threading.Thread] = []

    def _watch(self, plural: str) -> None:
        custom = kubernetes.client.CustomObjectsApi(self.api)
        while not self.stopped.is_set():
            watch = kubernetes.watch.Watch()
            with self.lock:
                self.watches.append(watch)
            try:
                for event in watch.stream(
                    custom.list_cluster_custom_object, "gyre.dev", "v1alpha1", plural, timeout_seconds=120
                ):
                    obj = trim(KINDS[plural], event["object"])
                    with self.lock:
                        self.seen.setdefault(shape(obj), obj)
            except Exception:  # a dropped watch (or no CRD yet) is retried; capturing is best effort
                self.stopped.wait(2)

    def start(self) -> None:
        for plural in KINDS:
            thread = threading.Thread(
                target=self._watch, args=(plural,), daemon=True, name=f"capture-{plural}"
            )
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stopped.set()
        with self.lock:
            for watch in self.watches:
                watch.stop()
        for thread in self.threads:
            thread.join(timeout=10)
        merged: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            merged = {shape(o): o for o in json.loads(self.path.read_text())}
        with self.lock:
            for key, obj in self.seen.items():
                merged.setdefault(key, obj)
        ordered = sorted(merged.values(), key=lambda o: (o["kind"], shape(o)))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(ordered, indent=1, sort_keys=True) + "\n")


def capturing(api: kubernetes.client.ApiClient) -> Iterator[None]:
    """For a session fixture: capture while the session runs when GYRE_CAPTURE_STATUSES names a file."""
    target = os.environ.get(ENV)
    if not target:
        yield
        return
    capture = Capture(api, Path(target))
    capture.start()
    try:
        yield
    finally:
        capture.stop()
