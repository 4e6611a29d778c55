"""Views of the child objects a plan reads, parsed from API dicts once, at the edge.

Children are seen through kopf indexes and reads; these functions turn their raw JSON into small frozen values, so
the plan functions never index into `obj["status"]` themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gyre.api.common import utcnow
from gyre.builders.meta import LABEL_OWNER_UID
from gyre.policy.images import ImagePolicy
from gyre.reconcile.plan import APPLIED_HASH_ANNOTATION

__all__ = [
    "JOB_COMPLETION_INDEX",
    "JOB_NAME_LABEL",
    "ChildView",
    "Container",
    "JobOutcome",
    "JobView",
    "PodResult",
    "child_view",
    "explain_failure",
    "job_outcome",
    "job_view",
    "parse_time",
    "pod_results",
    "untrusted_result",
]

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
JOB_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"


def parse_time(value: Any) -> datetime:
    """An RFC 3339 timestamp from the API server, or now when it is missing or unreadable."""
    if isinstance(value, datetime):
        return value
    if value:
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            pass
    return utcnow()


@dataclass(frozen=True)
class JobOutcome:
    """Whether a Job finished, and how."""

    finished: bool
    succeeded: bool
    reason: str = ""
    message: str = ""
    completion_time: str | None = None


def job_outcome(job: Mapping[str, Any]) -> JobOutcome:
    """A Job's terminal condition (Complete or Failed), read from its status."""
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
class Container:
    """What decides what a container runs: its image and its command line."""

    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()


def _containers(pod_spec: Mapping[str, Any]) -> tuple[Container, ...]:
    return tuple(
        Container(
            name=str(c.get("name", "")),
            image=str(c.get("image", "")),
            command=tuple(str(a) for a in c.get("command") or ()),
            args=tuple(str(a) for a in c.get("args") or ()),
        )
        for key in ("initContainers", "containers")
        for c in pod_spec.get(key) or []
    )


def _controller_uid(meta: Mapping[str, Any]) -> str:
    return next((str(r.get("uid", "")) for r in meta.get("ownerReferences") or [] if r.get("controller")), "")


@dataclass(frozen=True)
class JobView:
    """A Gyre Job as its owner's plan sees it."""

    name: str
    owner_uid: str
    component: str
    outcome: JobOutcome
    created: str = ""
    """metadata.creationTimestamp: orders the Jobs of one owner (history limits keep the newest)."""
    uid: str = ""
    controller_uid: str = ""
    """The uid in the controller ownerReference: the Gyre object that created the Job."""
    containers: tuple[Container, ...] = ()
    """The pod template's containers (init containers first)."""


def job_view(job: Mapping[str, Any]) -> JobView:
    """Parse a Job dict (from a watch event or a read)."""
    meta = job.get("metadata") or {}
    labels = meta.get("labels") or {}
    return JobView(
        name=str(meta.get("name", "")),
        owner_uid=str(labels.get(LABEL_OWNER_UID, "")),
        component=str(labels.get("app.kubernetes.io/component", "")),
        outcome=job_outcome(job),
        created=str(meta.get("creationTimestamp") or ""),
        uid=str(meta.get("uid", "")),
        controller_uid=_controller_uid(meta),
        containers=_containers(((job.get("spec") or {}).get("template") or {}).get("spec") or {}),
    )


@dataclass(frozen=True)
class ChildView:
    """Any other child (Deployment, Service, HPA): what exists and which desired state was last applied to it."""

    kind: str
    name: str
    applied_hash: str | None
    """The gyre.dev/applied-hash annotation: equal to the desired object's hash means nothing to apply."""
    generation: int = 0
    status: Mapping[str, Any] | None = None
    spec_replicas: int | None = None


def child_view(obj: Mapping[str, Any]) -> ChildView:
    """Parse a Deployment, Service, HPA or NetworkPolicy dict into what a plan compares."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    replicas = spec.get("replicas")
    return ChildView(
        kind=str(obj.get("kind", "")),
        name=str(meta.get("name", "")),
        applied_hash=(meta.get("annotations") or {}).get(APPLIED_HASH_ANNOTATION),
        generation=int(meta.get("generation") or 0),
        status=dict(obj.get("status") or {}),
        spec_replicas=int(replicas) if replicas is not None else None,
    )


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
    controller_uid: str = ""
    """The uid of the Job that controls the pod."""
    containers: tuple[Container, ...] = ()


def _stuck(status: Mapping[str, Any]) -> tuple[str, str]:
    """Why a pod that never terminated did not run: a waiting container's reason, else its scheduling."""
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return str(waiting["reason"]), str(waiting.get("message") or "")
    for cond in status.get("conditions") or []:
        if cond.get("status") == "False" and cond.get("reason"):
            return str(cond["reason"]), str(cond.get("message") or "")
    return str(status.get("phase") or "Unknown"), ""


def pod_results(pods: Iterable[Mapping[str, Any]]) -> list[PodResult]:
    """The pods of a Job, oldest first: terminated ones with their termination messages, others with why not."""
    ordered = sorted(
        pods,
        key=lambda p: (str((p.get("metadata") or {}).get("creationTimestamp") or ""), p["metadata"]["name"]),
    )
    results: list[PodResult] = []
    for pod in ordered:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        controller_uid, containers = _controller_uid(meta), _containers(pod.get("spec") or {})
        raw_index = (meta.get("annotations") or {}).get(JOB_COMPLETION_INDEX)
        index = int(raw_index) if raw_index is not None and str(raw_index).isdigit() else None
        terminated: list[Mapping[str, Any]] = [
            (cs.get("state") or {})["terminated"]
            for cs in status.get("containerStatuses") or []
            if (cs.get("state") or {}).get("terminated")
        ]
        if not terminated:
            reason, message = _stuck(status)
            results.append(
                PodResult(meta["name"], index, None, reason, message, False, controller_uid, containers)
            )
            continue
        for term in terminated:
            results.append(
                PodResult(
                    pod=meta["name"],
                    index=index,
                    exit_code=term.get("exitCode"),
                    reason=str(term.get("reason") or ""),
                    message=str(term.get("message") or "").strip(),
                    controller_uid=controller_uid,
                    containers=containers,
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


def untrusted_result(
    owner_uid: str, job: JobView, results: Iterable[PodResult], policy: ImagePolicy
) -> str | None:
    """Why a Job's reports must not be believed, or None.

    A report is a pod's termination message, which whatever runs in the pod writes. It is believed only when the
    Job was created for this owner, every image in its template is allowed by the image policy, and every
    reporting pod belongs to that Job and runs the template's command lines. Images are checked against the policy
    rather than compared, because admission webhooks may pin a tag to its digest.
    """
    if job.controller_uid and job.controller_uid != owner_uid:
        return f"Job {job.name} is controlled by another object (uid {job.controller_uid}); its reports are ignored"
    refusal = policy.first_refusal(
        (c.image, f"Job {job.name} container {c.name} image") for c in job.containers
    )
    if refusal is not None:
        return refusal
    template = {c.name: c for c in job.containers}
    for result in results:
        if not result.terminated:
            continue
        if job.uid and result.controller_uid != job.uid:
            return f"pod {result.pod} reports for Job {job.name} but is not controlled by it"
        for ran in result.containers:
            expected = template.get(ran.name)
            if expected is None or (ran.command, ran.args) != (expected.command, expected.args):
                return f"pod {result.pod} container {ran.name} does not run Job {job.name}'s command"
            refusal = policy.refusal(ran.image, f"pod {result.pod} container {ran.name} image")
            if refusal is not None:
                return refusal
    return None
