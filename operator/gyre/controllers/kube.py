"""The operator's one Kubernetes client: every read and write the controllers make goes through here.

Built on the client library's dynamic client, so resources are found by discovery (no hand-built REST paths, no
kind-to-plural table). Children are applied with server-side apply under one field manager. Transient failures (a
slow or restarting API server, 429/5xx) are retried with backoff here, so a handler sees either success or a real
error.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import Resource

from gyre.api import env
from gyre.api.common import API_VERSION
from gyre.controllers import metrics
from gyre.reconcile.observed import JOB_NAME_LABEL
from gyre.reconcile.plan import Action, Apply, Create, Delete, MergePatch

__all__ = [
    "FIELD_MANAGER",
    "Rejected",
    "api_client",
    "apply",
    "create",
    "delete",
    "execute",
    "get",
    "job_pods",
    "list_events",
    "merge_patch",
    "patch_status",
    "pod_name",
    "post_event",
]

FIELD_MANAGER = "gyre-operator"
REPORTING_COMPONENT = "gyre-operator"
# (connect, read) seconds: a hung API server fails the call, which is retried, instead of hanging a worker.
TIMEOUT = (5.0, 30.0)
_RETRY_STATUS = {429, 500, 502, 503, 504}
POOL_SIZE = 16
_ATTEMPTS = 4
log = logging.getLogger(__name__)
_lock = threading.RLock()  # _resource() holds it while discovery builds the client
T = TypeVar("T")


@functools.cache
def _load() -> kubernetes.client.ApiClient:
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        # KUBECONFIG is read now, not when the client library was imported.
        kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None)
    config = kubernetes.client.Configuration.get_default_copy()
    # One connection per handler thread, so threads do not queue for a socket.
    config.connection_pool_maxsize = POOL_SIZE
    return kubernetes.client.ApiClient(config)


def api_client() -> kubernetes.client.ApiClient:
    """One ApiClient per process, configured in-cluster or from KUBECONFIG."""
    with _lock:
        return _load()


@functools.cache
def _dynamic() -> DynamicClient:
    return DynamicClient(api_client())


@functools.cache
def _resource(api_version: str, kind: str) -> Resource:
    with _lock:
        return _dynamic().resources.get(api_version=api_version, kind=kind)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in _RETRY_STATUS
    return isinstance(exc, urllib3.exceptions.HTTPError | OSError)


def _retrying(call: Callable[[], T], what: str) -> T:
    """Run one API call, retrying transient failures with jittered exponential backoff."""
    for attempt in range(_ATTEMPTS):
        try:
            return call()
        except Exception as exc:
            if not _transient(exc) or attempt == _ATTEMPTS - 1:
                raise
            delay = min(8.0, 0.5 * 2**attempt) * (0.5 + random.random())
            metrics.API_RETRIES.labels(what.split(" ", 1)[0]).inc()
            log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _unread(response: Any) -> None:
    """Drain and release an answer whose body is not needed (a write's echo of the object): `serialize=False`
    spares parsing it into the dynamic client's attribute objects, which costs more than the request itself."""
    _ = response.data
    response.release_conn()


def _plain(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return out


def get(api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One object as a plain dict (API field names), or None when it does not exist."""
    res = _resource(api_version, kind)
    try:
        obj = _retrying(
            lambda: res.get(name=name, namespace=namespace, _request_timeout=TIMEOUT), f"get {kind} {name}"
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return _plain(obj)


def job_pods(namespace: str, job_name: str) -> list[dict[str, Any]]:
    """The pods of one Job (read only when the Job has finished, to collect the reports)."""
    res = _resource("v1", "Pod")
    found = _retrying(
        lambda: res.get(
            namespace=namespace, label_selector=f"{JOB_NAME_LABEL}={job_name}", _request_timeout=TIMEOUT
        ),
        f"list pods of Job {job_name}",
    )
    return [_plain(p) for p in _plain(found).get("items") or []]


def list_events(namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
    """The core/v1 Events about one object that the API server still keeps (for `gyre history`)."""
    res = _resource("v1", "Event")
    found = _retrying(
        lambda: res.get(
            namespace=namespace,
            field_selector=f"involvedObject.kind={kind},involvedObject.name={name}",
            _request_timeout=TIMEOUT,
        ),
        f"list Events of {kind} {name}",
    )
    return [_plain(e) for e in _plain(found).get("items") or []]


def create(body: Mapping[str, Any]) -> bool:
    """Create an object; False when one of that name exists already (names are deterministic)."""
    res = _resource(body["apiVersion"], body["kind"])
    meta = body["metadata"]
    namespace = meta["namespace"]
    try:
        _unread(
            _retrying(
                lambda: res.create(
                    body=dict(body), namespace=namespace, serialize=False, _request_timeout=TIMEOUT
                ),
                f"create {body['kind']} {meta.get('name') or meta['generateName']}",
            )
        )
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    return True


def apply(body: Mapping[str, Any]) -> dict[str, Any]:
    """Server-side apply a complete desired object under Gyre's field manager; returns the live object.

    Fields Gyre stopped setting are removed; fields other managers own (an HPA's replica count) are kept.
    """
    res = _resource(body["apiVersion"], body["kind"])
    meta = body["metadata"]
    obj = _retrying(
        lambda: res.server_side_apply(
            body=dict(body),
            name=meta["name"],
            namespace=meta["namespace"],
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
            _request_timeout=TIMEOUT,
        ),
        f"apply {body['kind']} {meta['name']}",
    )
    return _plain(obj)


def delete(api_version: str, kind: str, namespace: str, name: str) -> bool:
    """Delete an object (its children cascade in the background); False when it was already gone."""
    res = _resource(api_version, kind)
    try:
        _retrying(
            lambda: res.delete(
                name=name,
                namespace=namespace,
                body={"propagationPolicy": "Background"},
                _request_timeout=TIMEOUT,
            ),
            f"delete {kind} {name}",
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def merge_patch(api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
    """JSON merge-patch an object (e.g. one annotation), leaving every other field alone."""
    res = _resource(api_version, kind)
    _retrying(
        lambda: res.patch(
            body=patch,
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
            _request_timeout=TIMEOUT,
        ),
        f"patch {kind} {name}",
    )


def patch_status(kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
    """Merge-patch the status subresource of a Gyre object (lists in the patch replace whole lists)."""
    res = _resource(API_VERSION, kind).subresources["status"]
    _unread(
        _retrying(
            lambda: res.patch(
                body={"status": patch},
                name=name,
                namespace=namespace,
                content_type="application/merge-patch+json",
                serialize=False,
                _request_timeout=TIMEOUT,
            ),
            f"patch status of {kind} {name}",
        )
    )


def post_event(involved: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Post a core/v1 Event about `involved` (apiVersion, kind, name, namespace, uid), as `kubectl describe` shows
    them: From is the reporting component."""
    now = datetime.datetime.now(datetime.UTC).isoformat()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{involved['name']}.", "namespace": involved["namespace"]},
        "involvedObject": dict(involved),
        "type": type_,
        "reason": reason,
        "message": message,
        "action": reason,
        "source": {"component": REPORTING_COMPONENT},
        "reportingComponent": REPORTING_COMPONENT,
        "reportingInstance": pod_name(),
        "firstTimestamp": now,
        "lastTimestamp": now,
        "eventTime": now,
        "count": 1,
    }
    create(body)


def pod_name() -> str:
    """The operator's pod name (downward API), else the hostname, which is the pod name in a pod."""
    return os.environ.get(env.POD_NAME) or socket.gethostname()


class _KnownClaims:
    """Artifact claims this process has created or found: a claim is created once, not POSTed (409) per Job."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def ensure(self, body: Mapping[str, Any]) -> None:
        """Create the claim unless this process already has; concurrent first callers wait for one create."""
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        with self._lock:
            if key in self._seen:
                return
            create(body)
            self._seen.add(key)


_claims = _KnownClaims()


class Rejected(Exception):
    """The API server refused a write for a reason retrying will not fix (403 from RBAC or an admission policy,
    422 from validation); `str()` is one line for a condition and an Event."""

    def __init__(self, what: str, exc: ApiException) -> None:
        try:
            detail = str(json.loads(exc.body or "{}").get("message") or exc.reason)
        except ValueError:
            detail = str(exc.reason)
        super().__init__(f"{what} was refused by the API server ({exc.status} {exc.reason}): {detail}")
        self.status = exc.status


def _describe(action: Action) -> str:
    if isinstance(action, Create | Apply):
        verb = "creating" if isinstance(action, Create) else "applying"
        return f"{verb} {action.body['kind']} {action.body['metadata']['name']}"
    return f"{type(action).__name__.lower()} {action.kind} {action.name}"


def execute(namespace: str, actions: Iterable[Action]) -> None:
    """Carry out a plan's actions in order, in the owner's namespace; Rejected when the API server refuses one."""
    for action in actions:
        try:
            _execute_one(namespace, action)
        except ApiException as exc:
            if exc.status in (400, 403, 422):
                raise Rejected(_describe(action), exc) from exc
            raise


def _execute_one(namespace: str, action: Action) -> None:
    if isinstance(action, Create):
        if action.body["kind"] == "PersistentVolumeClaim":
            _claims.ensure(action.body)
        else:
            create(action.body)
    elif isinstance(action, Apply):
        apply(action.body)
    elif isinstance(action, Delete):
        delete(action.api_version, action.kind, namespace, action.name)
    elif isinstance(action, MergePatch):
        merge_patch(action.api_version, action.kind, namespace, action.name, action.patch)
