"""Helpers of the integration tier (imported by conftest.py and the tests)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import kubernetes
import pytest
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException

from gyre.builders.settings import OperatorSettings
from gyre.controllers import common

__all__ = [
    "GROUP",
    "INSTANCE",
    "INSTANCE_LABEL",
    "NEVER_PULLED",
    "VERSION",
    "Custom",
    "condition",
    "events",
    "read_or_none",
    "rejection",
    "running_operator",
    "wait_for",
]

GROUP, VERSION = "gyre.dev", "v1alpha1"
INSTANCE_LABEL = "gyre.dev/operator-instance"
INSTANCE = "integration"
NEVER_PULLED = "gyre.invalid/never-pulled:0"
T = TypeVar("T")


def wait_for(
    fn: Callable[[], T | None], *, timeout: float = 60, interval: float = 0.5, what: str = "condition"
) -> T:
    """Poll until fn() returns something truthy; fail with `what` after the timeout (a liveness bound, not a speed
    assertion)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}; last value: {last!r}")


class Custom:
    """Small helper over CustomObjectsApi for one namespace."""

    def __init__(self, k8s: kubernetes.client.ApiClient, namespace: str) -> None:
        self.api = kubernetes.client.CustomObjectsApi(k8s)
        self.namespace = namespace

    def create(self, plural: str, kind: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
        # The operator under test runs as its own instance, so an operator deployed in the cluster leaves these alone.
        labels = {INSTANCE_LABEL: INSTANCE, **meta.pop("labels", {})}
        metadata = {"name": name, "labels": labels, **meta}
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": metadata, "spec": spec}
        obj: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, body
        )
        return obj

    def get(self, plural: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name
        )
        return obj

    def patch(self, plural: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name, patch
        )
        return obj

    def patch_status(self, plural: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = self.api.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, plural, name, {"status": status}
        )
        return obj


def rejection(exc: ApiException) -> str:
    """The API server's message for a refused object (422 Invalid), with every cause."""
    assert exc.status == 422, f"expected 422 Invalid, got {exc.status}: {exc.body}"
    status = json.loads(exc.body)
    causes = [
        f"{c.get('field')}: {c.get('message')}" for c in (status.get("details") or {}).get("causes") or []
    ]
    return "\n".join([str(status.get("message")), *causes])


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return None


def events(k8s: kubernetes.client.ApiClient, namespace: str, name: str) -> list[tuple[str, str, str]]:
    items = (
        kubernetes.client.CoreV1Api(k8s)
        .list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
        .items
    )
    return [(e.type, e.reason, e.message or "") for e in items]


@contextlib.contextmanager
def running_operator(namespace: str) -> Iterator[KopfRunner]:
    """Run the operator (kopf, in a thread) watching only `namespace`, with an image no node will pull."""
    common.configure(
        OperatorSettings(
            artifact_store="pvc://gyre-artifacts",
            image=NEVER_PULLED,
            image_pull_policy="Never",
            instance=INSTANCE,
        )
    )
    args = ["run", "--standalone", "--namespace", namespace, "-m", "gyre.controllers.handlers"]
    try:
        with KopfRunner(args, timeout=60) as runner:
            yield runner
    finally:
        common.configure(None)
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output


def read_or_none(
    k8s: kubernetes.client.ApiClient, read: Callable[..., Any], *args: str
) -> dict[str, Any] | None:
    """A built-in object as a plain dict (API field names) from a typed `read_namespaced_*` call, None on 404."""
    try:
        obj = read(*args)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    out: dict[str, Any] = k8s.sanitize_for_serialization(obj)
    return out
