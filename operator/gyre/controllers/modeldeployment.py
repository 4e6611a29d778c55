"""ModelDeployment controller: resolve which model to serve, apply the server objects, report honest health.

One reconcile function serves create, update, resume and a short timer: the timer is what notices a newly
validated TrainingRun under a LatestValidated policy and what keeps status in step with the pods.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import kopf
from pydantic import ValidationError

from gyre.api.common import (
    GROUP,
    VERSION,
    Condition,
    ConditionStatus,
    LabelSelector,
    find_condition,
    set_condition,
)
from gyre.api.modeldeployment import (
    CanaryStatus,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    ModelSource,
    ModelVersion,
)
from gyre.builders.meta import Owner
from gyre.builders.serving import (
    ResolvedModel,
    Track,
    build_hpa,
    build_server_deployment,
    build_service,
    desired_total_replicas,
    server_deployment_name,
    service_url,
    split_replicas,
)
from gyre.controllers import apply as k8s
from gyre.controllers import kube
from gyre.controllers.common import (
    dump_status,
    emit,
    ensure_artifact_pvc,
    format_validation_error,
    mine,
    owner_from_body,
    status_patch,
)
from gyre.controllers.common import settings as operator_settings

__all__ = [
    "ModelChoice",
    "TrackHealth",
    "choose_latest_validated",
    "reconcile_modeldeployment",
    "selector_matches",
    "track_health",
]

PLURAL = "modeldeployments"
log = logging.getLogger(__name__)

# Waiting reasons of a server container that mean it will not become ready by itself.
_STUCK_REASONS = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
}


class ModelUnavailable(Exception):
    """The spec names a model that cannot be served (yet): carries a condition reason and whether it is final."""

    def __init__(self, reason: str, message: str, *, waiting: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.waiting = waiting


@dataclass(frozen=True)
class ModelChoice:
    """A resolved model plus what the status should say about it."""

    model: ResolvedModel
    inference_path: str | None = None


def selector_matches(selector: LabelSelector | None, labels: dict[str, str]) -> bool:
    """Whether `labels` satisfy a standard label selector (None or empty selects everything)."""
    if selector is None:
        return True
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions or []:
        present = req.key in labels
        values = set(req.values or [])
        if req.operator == "In" and (not present or labels[req.key] not in values):
            return False
        if req.operator == "NotIn" and present and labels[req.key] in values:
            return False
        if req.operator == "Exists" and not present:
            return False
        if req.operator == "DoesNotExist" and present:
            return False
    return True


def _validated(run: dict[str, Any]) -> bool:
    status = run.get("status") or {}
    if status.get("phase") != "Succeeded" or not status.get("modelUri"):
        return False
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Validated":
            return bool(cond.get("status") == "True")
    return False


def _completed_at(run: dict[str, Any]) -> str:
    status = run.get("status") or {}
    return str(status.get("completionTime") or run["metadata"].get("creationTimestamp") or "")


def choose_latest_validated(
    runs: list[dict[str, Any]], selector: LabelSelector | None
) -> dict[str, Any] | None:
    """The newest Succeeded TrainingRun whose gates passed, among those the selector matches.

    A run that failed its gates, or has no Validated condition, is never chosen: that is the promotion guarantee.
    Ties on completion time fall back to the name, so the choice is deterministic.
    """
    eligible = [
        run
        for run in runs
        if _validated(run) and selector_matches(selector, dict(run["metadata"].get("labels") or {}))
    ]
    if not eligible:
        return None
    return max(eligible, key=lambda run: (_completed_at(run), run["metadata"]["name"]))


def _from_run(run: dict[str, Any]) -> ModelChoice:
    status = run.get("status") or {}
    onnx = (status.get("onnx") or {}).get("status")
    path = "onnx" if onnx == "verified" else "sklearn" if onnx else None
    return ModelChoice(
        ResolvedModel(
            uri=status["modelUri"], sha256=status.get("modelSha256"), training_run=run["metadata"]["name"]
        ),
        inference_path=path,
    )


def _resolve_source(namespace: str, source: ModelSource) -> ModelChoice:
    if source.uri is not None:
        return ModelChoice(ResolvedModel(uri=source.uri))
    assert source.training_run_ref is not None  # the CRD's CEL rule guarantees exactly one
    name = source.training_run_ref.name
    run = kube.get_custom("trainingruns", namespace, name)
    if run is None:
        raise ModelUnavailable("TrainingRunNotFound", f"TrainingRun {name} does not exist", waiting=True)
    phase = (run.get("status") or {}).get("phase")
    if phase == "Failed":
        raise ModelUnavailable(
            "TrainingRunFailed", f"TrainingRun {name} failed; it has no model", waiting=False
        )
    if phase != "Succeeded":
        raise ModelUnavailable(
            "WaitingForTraining", f"TrainingRun {name} is {phase or 'Pending'}", waiting=True
        )
    if not _validated(run):
        validated = find_condition_dict(run, "Validated")
        why = validated.get("message") if validated else "it has no Validated condition"
        raise ModelUnavailable("GatesFailed", f"TrainingRun {name} may not be served: {why}", waiting=False)
    return _from_run(run)


def find_condition_dict(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """A condition of a raw object by type."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def _resolve_stable(namespace: str, spec: ModelDeploymentSpec) -> ModelChoice:
    promotion = spec.promotion
    if promotion is not None and promotion.policy == "LatestValidated":
        runs = k8s.list_objects(f"{GROUP}/{VERSION}", "TrainingRun", namespace)
        best = choose_latest_validated(runs, promotion.selector)
        if best is not None:
            return _from_run(best)
        if spec.model is None:
            raise ModelUnavailable(
                "WaitingForValidatedRun",
                "no Succeeded TrainingRun matching the selector has passed its gates",
                waiting=True,
            )
    assert spec.model is not None  # the CRD's CEL rule: model, or LatestValidated
    return _resolve_source(namespace, spec.model)


@dataclass(frozen=True)
class TrackHealth:
    """Rollout and health of one track's Deployment."""

    desired: int
    ready: int
    updated: int
    rolled_out: bool
    stuck: str | None
    """Why a pod cannot become ready by itself (CrashLoopBackOff, image errors), if any pod is stuck."""


def track_health(deployment: dict[str, Any] | None, pods: list[dict[str, Any]], desired: int) -> TrackHealth:
    """Summarise a Deployment and its pods. Pure: the controller passes what it read.

    A rollout counts as done only when the Deployment controller has observed the latest template and every
    desired replica is updated and ready, so a crash-looping new version never reads as rolled out.
    """
    if deployment is None:
        return TrackHealth(desired, 0, 0, desired == 0, None)
    meta = deployment.get("metadata") or {}
    status = deployment.get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    observed = status.get("observedGeneration") == meta.get("generation")
    rolled_out = observed and updated >= desired and ready >= desired and total <= desired
    stuck = None
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _STUCK_REASONS:
                message = waiting.get("message") or ""
                last = ((cs.get("lastState") or {}).get("terminated") or {}).get("message") or ""
                detail = (last or message).strip().splitlines()[-1:] or [""]
                stuck = f"pod {pod['metadata']['name']}: {waiting['reason']} {detail[0]}".strip()
                break
        if stuck:
            break
    return TrackHealth(desired, ready, updated, rolled_out, stuck)


def _pods(namespace: str, owner: Owner, track: Track) -> list[dict[str, Any]]:
    selector = f"gyre.dev/owner-uid={owner.uid},gyre.dev/track={track}"
    return k8s.list_objects("v1", "Pod", namespace, selector)


def _status(raw: Any) -> ModelDeploymentStatus:
    try:
        return ModelDeploymentStatus.model_validate(dict(raw or {}))
    except ValidationError:
        return ModelDeploymentStatus()


def _version(choice: ModelChoice) -> ModelVersion:
    return ModelVersion(
        training_run=choice.model.training_run, uri=choice.model.uri, sha256=choice.model.sha256
    )


def _write(owner: Owner, old: ModelDeploymentStatus, status: ModelDeploymentStatus) -> None:
    kube.patch_status(PLURAL, owner.namespace, owner.name, status_patch(old, status))


@kopf.on.resume(GROUP, VERSION, PLURAL, when=mine)
@kopf.on.create(GROUP, VERSION, PLURAL, when=mine)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec", when=mine)
@kopf.timer(GROUP, VERSION, PLURAL, interval=5, initial_delay=5, idle=0, when=mine)
def reconcile_modeldeployment(body: kopf.Body, **_: Any) -> None:
    """Bring the server objects in line with the spec and the newest eligible model, then report health."""
    owner = owner_from_body(body)
    old = _status(body.get("status"))
    status = old.model_copy(deep=True)
    status.observed_generation = owner.generation
    conditions = status.conditions or []
    try:
        spec = ModelDeploymentSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        message = format_validation_error(exc)
        status.phase = "Degraded"
        status.conditions = _set(
            conditions,
            owner,
            ready=("False", "InvalidSpec", message),
            degraded=("True", "InvalidSpec", message),
        )
        if old.observed_generation != owner.generation:
            emit(body, "Warning", "InvalidSpec", message)
        _write(owner, old, status)
        return

    try:
        stable = _resolve_stable(owner.namespace, spec)
        canary = (
            _resolve_source(owner.namespace, spec.canary.model)
            if spec.canary and spec.canary.weight > 0
            else None
        )
    except ModelUnavailable as exc:
        _report_unavailable(body, owner, old, status, exc, serving=old.model_version is not None)
        return

    ensure_artifact_pvc(owner.namespace)
    total = desired_total_replicas(spec)
    split = split_replicas(total, spec.canary.weight if canary is not None and spec.canary else 0)
    settings = operator_settings()
    autoscaled = spec.autoscaling is not None
    k8s.apply(build_service(owner, spec))
    k8s.apply(
        build_server_deployment(
            owner, spec, settings, stable.model, track="stable", replicas=None if autoscaled else split.stable
        )
    )
    hpa = build_hpa(owner, spec)
    if hpa is not None:
        k8s.apply(hpa)
    else:
        k8s.delete_if_present("autoscaling/v2", "HorizontalPodAutoscaler", owner.namespace, owner.name)
    if canary is not None:
        k8s.apply(
            build_server_deployment(
                owner, spec, settings, canary.model, track="canary", replicas=split.canary
            )
        )
    else:
        k8s.delete_if_present(
            "apps/v1", "Deployment", owner.namespace, server_deployment_name(owner, "canary")
        )

    stable_live = k8s.get_object(
        "apps/v1", "Deployment", owner.namespace, server_deployment_name(owner, "stable")
    )
    desired_stable = split.stable
    if autoscaled and stable_live is not None:
        desired_stable = int((stable_live.get("spec") or {}).get("replicas") or split.stable)
    health = track_health(stable_live, _pods(owner.namespace, owner, "stable"), desired_stable)
    canary_health = None
    if canary is not None:
        canary_live = k8s.get_object(
            "apps/v1", "Deployment", owner.namespace, server_deployment_name(owner, "canary")
        )
        canary_health = track_health(canary_live, _pods(owner.namespace, owner, "canary"), split.canary)

    previous = old.model_version
    status.model_version = _version(stable)
    status.inference_path = stable.inference_path  # type: ignore[assignment]
    status.url = service_url(owner)
    status.replicas = health.desired
    status.ready_replicas = health.ready
    status.canary = (
        CanaryStatus(model=_version(canary), weight=split.canary_weight, ready_replicas=canary_health.ready)
        if canary is not None and canary_health is not None
        else None
    )
    stuck = health.stuck or (canary_health.stuck if canary_health else None)
    rolled_out = health.rolled_out and (canary_health is None or canary_health.rolled_out)
    serving = health.ready + (canary_health.ready if canary_health else 0) > 0
    what = _describe(stable)
    if stuck:
        status.phase = "Degraded"
        status.conditions = _set(
            conditions,
            owner,
            ready=("False", "ServerFailing", stuck),
            progressing=("False", "RolloutStuck", stuck),
            degraded=("True", "ServerFailing", stuck),
        )
    elif rolled_out:
        status.phase = "Ready"
        ready_msg = f"serving {what} on {health.ready}/{health.desired} pods"
        if canary is not None and canary_health is not None:
            ready_msg += (
                f"; canary {_describe(canary)} on {canary_health.ready} pods ({split.canary_weight}%)"
            )
        status.conditions = _set(
            conditions,
            owner,
            ready=("True", "Serving", ready_msg),
            progressing=("False", "RolledOut", f"{what} is rolled out"),
            degraded=("False", "Healthy", ""),
        )
    else:
        status.phase = "Progressing"
        message = f"rolling out {what}: {health.updated}/{health.desired} updated, {health.ready} ready"
        status.conditions = _set(
            conditions,
            owner,
            ready=("True", "Serving", f"serving while {message}")
            if serving and previous
            else ("False", "RollingOut", message),
            progressing=("True", "RollingOut", message),
            degraded=("False", "Healthy", ""),
        )

    if previous is None or previous.sha256 != stable.model.sha256 or previous.uri != stable.model.uri:
        emit(body, "Normal", "ModelRollout", f"rolling out {what}")
    if stuck and (old.phase != "Degraded"):
        emit(body, "Warning", "ServerFailing", stuck)
    if status.phase == "Ready" and old.phase != "Ready":
        emit(body, "Normal", "Ready", f"serving {what} at {status.url}")
    if dump_status(status) != dump_status(old):
        _write(owner, old, status)


def _describe(choice: ModelChoice) -> str:
    model = choice.model
    name = f"TrainingRun {model.training_run}" if model.training_run else model.uri
    return f"{name} (sha256 {model.sha256[:12]})" if model.sha256 else name


_Cond = tuple[ConditionStatus, str, str]


def _set(
    conditions: list[Condition],
    owner: Owner,
    *,
    ready: _Cond,
    degraded: _Cond,
    progressing: _Cond | None = None,
) -> list[Condition]:
    """Set Ready, Progressing (when given) and Degraded together, so they never contradict each other."""
    out = conditions
    for type_, value in (("Ready", ready), ("Progressing", progressing), ("Degraded", degraded)):
        if value is not None:
            out = set_condition(out, type_, value[0], value[1], value[2], generation=owner.generation)
    return out


def _report_unavailable(
    body: kopf.Body,
    owner: Owner,
    old: ModelDeploymentStatus,
    status: ModelDeploymentStatus,
    exc: ModelUnavailable,
    *,
    serving: bool,
) -> None:
    """No model to (re)deploy: keep whatever is already serving, and say why nothing changes."""
    message = str(exc)
    conditions = status.conditions or []
    if serving:
        # The current model stays up; the new spec is what cannot be honoured.
        status.conditions = set_condition(
            conditions, "Progressing", "False", exc.reason, message, generation=owner.generation
        )
        if not exc.waiting:
            status.conditions = set_condition(
                status.conditions, "Degraded", "True", exc.reason, message, generation=owner.generation
            )
            status.phase = "Degraded"
    else:
        status.phase = "Pending" if exc.waiting else "Degraded"
        status.conditions = _set(
            conditions,
            owner,
            ready=("False", exc.reason, message),
            progressing=("True" if exc.waiting else "False", exc.reason, message),
            degraded=("False", exc.reason, "") if exc.waiting else ("True", exc.reason, message),
        )
    previous = find_condition(old.conditions or [], "Progressing")
    if previous is None or previous.reason != exc.reason:
        emit(body, "Normal" if exc.waiting else "Warning", exc.reason, message)
    if dump_status(status) != dump_status(old):
        _write(owner, old, status)
