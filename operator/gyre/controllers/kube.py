"""The operator's side effects on the API server, kept in one place (handlers call these; builders never do)."""

from __future__ import annotations

import functools
import logging
import os
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
    "explain_failure",
    "get_custom",
    "job_exists",
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
        # KUBECONFIG is read now, not when the client library was imported.
        kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None)
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


def get_job(namespace: str, name: str) -> dict[str, Any] | None:
    """A Job as a plain dict (API field names), or None when it does not exist."""
    api = api_client()
    try:
        job = kubernetes.client.BatchV1Api(api).read_namespaced_job(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    result: dict[str, Any] = api.sanitize_for_serialization(job)
    return result


def finished_job_outcome(namespace: str, name: str) -> JobOutcome | None:
    """How Job `name` ended, or None while it runs or when it does not exist."""
    job = get_job(namespace, name)
    outcome = job_outcome(job) if job is not None else None
    return outcome if outcome is not None and outcome.finished else None


def job_exists(namespace: str, name: str) -> bool:
    """Whether a Job of that name exists."""
    return get_job(namespace, name) is not None


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
    """What one pod of a Job reported, or why it never ran."""

    pod: str
    index: int | None
    exit_code: int | None
    reason: str
    message: str
    """The termination message (the JSON report, or the log tail when the process died before writing it); for a
    pod that never terminated, why it is stuck (image pull, scheduling)."""
    terminated: bool = True


def _stuck(pod: Any) -> tuple[str, str]:
    """Why a pod that never terminated did not run: a waiting container's reason, else its scheduling."""
    for cs in pod.status.container_statuses or []:
        waiting = cs.state.waiting if cs.state else None
        if waiting is not None and waiting.reason:
            return waiting.reason, waiting.message or ""
    for cond in pod.status.conditions or []:
        if cond.status == "False" and cond.reason:
            return cond.reason, cond.message or ""
    return pod.status.phase or "Unknown", ""


def job_pod_results(namespace: str, job_name: str) -> list[PodResult]:
    """The pods of a Job, oldest first: terminated ones with their termination messages, others with why not."""
    core = kubernetes.client.CoreV1Api(api_client())
    pods = core.list_namespaced_pod(
        namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}"
    ).items
    pods.sort(key=lambda p: (p.metadata.creation_timestamp, p.metadata.name))
    results: list[PodResult] = []
    for pod in pods:
        annotations = pod.metadata.annotations or {}
        raw_index = annotations.get("batch.kubernetes.io/job-completion-index")
        index = int(raw_index) if raw_index is not None and raw_index.isdigit() else None
        terminated = [
            cs.state.terminated
            for cs in pod.status.container_statuses or []
            if cs.state and cs.state.terminated
        ]
        if not terminated:
            reason, message = _stuck(pod)
            results.append(PodResult(pod.metadata.name, index, None, reason, message, terminated=False))
            continue
        for term in terminated:
            results.append(
                PodResult(
                    pod=pod.metadata.name,
                    index=index,
                    exit_code=term.exit_code,
                    reason=term.reason or "",
                    message=(term.message or "").strip(),
                )
            )
    return results


def explain_failure(outcome: JobOutcome, results: list[PodResult], default_reason: str) -> tuple[str, str]:
    """(reason, message) for a Job that failed before any pod reported: the Job's reason plus each stuck pod's."""
    reason = outcome.reason or default_reason
    parts = [outcome.message or "the Job failed before any pod reported"]
    for result in results:
        if not result.terminated:
            detail = f"pod {result.pod} never ran: {result.reason}"
            parts.append(f"{detail} ({result.message})" if result.message else detail)
        elif not result.message:
            parts.append(
                f"pod {result.pod} exited with code {result.exit_code} ({result.reason}) without a report"
            )
    return reason, "; ".join(parts)
