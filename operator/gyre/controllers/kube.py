"""The operator's side effects on the API server, kept in one place (handlers call these; builders never do)."""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from gyre.api.common import GROUP, VERSION

__all__ = [
    "JobOutcome",
    "PodResult",
    "api_client",
    "create_if_absent",
    "get_custom",
    "job_outcome",
    "job_pod_results",
    "patch_status",
]

log = logging.getLogger(__name__)
_lock = threading.Lock()


@functools.cache
def _load() -> kubernetes.client.ApiClient:
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


def api_client() -> kubernetes.client.ApiClient:
    """One ApiClient per process, configured in-cluster or from KUBECONFIG."""
    with _lock:
        return _load()


def create_if_absent(body: dict[str, Any]) -> bool:
    """Create a namespaced object; an existing one with that name is left alone (names are deterministic).

    Returns whether it was created.
    """
    client = api_client()
    namespace = body["metadata"]["namespace"]
    try:
        if body["kind"] == "Job":
            kubernetes.client.BatchV1Api(client).create_namespaced_job(namespace, body)
        elif body["kind"] == "PersistentVolumeClaim":
            kubernetes.client.CoreV1Api(client).create_namespaced_persistent_volume_claim(namespace, body)
        else:
            raise ValueError(f"create_if_absent does not handle {body['kind']}")
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    return True


def get_custom(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    """A Gyre object as a dict, or None when it does not exist."""
    api = kubernetes.client.CustomObjectsApi(api_client())
    try:
        obj: dict[str, Any] = api.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return obj


def patch_status(plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Merge-patch the status subresource of a Gyre object (lists in the patch replace whole lists)."""
    api = kubernetes.client.CustomObjectsApi(api_client())
    api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, plural, name, {"status": status})


@dataclass(frozen=True)
class JobOutcome:
    """Whether a Job finished, and how."""

    finished: bool
    succeeded: bool
    reason: str = ""
    message: str = ""
    completion_time: str | None = None


def job_outcome(job: dict[str, Any]) -> JobOutcome:
    """Read a Job's terminal condition (Complete or Failed) from its status."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return JobOutcome(True, True, completion_time=status.get("completionTime"))
        if cond.get("type") == "Failed":
            return JobOutcome(
                True,
                False,
                reason=cond.get("reason") or "JobFailed",
                message=cond.get("message") or "",
                completion_time=cond.get("lastTransitionTime"),
            )
    return JobOutcome(False, False)


@dataclass(frozen=True)
class PodResult:
    """What one finished pod of a Job reported."""

    pod: str
    index: int | None
    exit_code: int | None
    reason: str
    message: str
    """The termination message: the JSON report, or the log tail when the process died before writing it."""


def job_pod_results(namespace: str, job_name: str) -> list[PodResult]:
    """The terminated pods of a Job, newest last, with their termination messages."""
    core = kubernetes.client.CoreV1Api(api_client())
    pods = core.list_namespaced_pod(
        namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}"
    ).items
    pods.sort(key=lambda p: (p.metadata.creation_timestamp, p.metadata.name))
    results: list[PodResult] = []
    for pod in pods:
        annotations = pod.metadata.annotations or {}
        raw_index = annotations.get("batch.kubernetes.io/job-completion-index")
        for cs in pod.status.container_statuses or []:
            term = cs.state.terminated if cs.state else None
            if term is None:
                continue
            results.append(
                PodResult(
                    pod=pod.metadata.name,
                    index=int(raw_index) if raw_index is not None and raw_index.isdigit() else None,
                    exit_code=term.exit_code,
                    reason=term.reason or "",
                    message=(term.message or "").strip(),
                )
            )
    return results
