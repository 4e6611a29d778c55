"""ModelDeployment decisions: which model to serve, which server objects to write, and how healthy serving is.

Invariants:
- The stable model is the newest Succeeded TrainingRun whose gates passed (LatestValidated), else spec.model. A run
  that failed its gates, or has no Validated condition, is never served.
- When the spec names a model that cannot be served (yet), nothing is written to the children: whatever serves
  keeps serving, and the conditions say why nothing changes (waiting: Pending/Progressing; final: Degraded).
- A child is applied only when it is missing or its gyre.dev/applied-hash differs from the desired object's, and
  deleted only when it exists, so a steady-state plan has no actions, no Events and the same status.
- Ready, Progressing and Degraded are always set together, so they never contradict each other.
- With promotion.approval Required, a TrainingRun's model is served (stable or canary) only while an approval covers
  its exact digest (gyre.reconcile.approval). LatestValidated promotes the newest validated run among the approved
  ones; a newer unapproved one sets Approved=False (AwaitingApproval) with the command that approves it, and one
  Event per run and digest. A TrainingRun named by spec waits (nothing is written) until it is approved.
- status.history gains an entry only when a track's model changes (the previous one's servedUntil is set then), and
  keeps the newest HISTORY_LIMIT entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from gyre.api.common import Condition, ConditionStatus, LabelSelector, find_condition, set_condition
from gyre.api.modeldeployment import (
    HISTORY_LIMIT,
    CanaryStatus,
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    ModelSource,
    ModelVersion,
)
from gyre.api.reasons import ConditionType, EventType, Reason
from gyre.api.trainingrun import TrainingRunStatus
from gyre.builders.meta import Owner
from gyre.builders.pods import build_artifact_pvc
from gyre.builders.serving import (
    ResolvedModel,
    Track,
    build_hpa,
    build_network_policy,
    build_server_deployment,
    build_service,
    desired_total_replicas,
    server_deployment_name,
    service_url,
    split_replicas,
)
from gyre.builders.settings import OperatorSettings
from gyre.reconcile.approval import RunApproval, approval_command, bare_digest
from gyre.reconcile.observed import ChildView, parse_time
from gyre.reconcile.plan import Action, Apply, Create, Delete, Plan, with_applied_hash

__all__ = [
    "STUCK_REASONS",
    "ContainerWaiting",
    "ModelChoice",
    "ModelUnavailable",
    "ObservedModelDeployment",
    "PromotableRun",
    "ServerPod",
    "TrackHealth",
    "approval_required",
    "awaiting_approval",
    "choose_latest_validated",
    "plan_modeldeployment",
    "resolve_source",
    "resolve_stable",
    "selector_matches",
    "server_pod",
    "track_health",
]

# Waiting reasons of a server container that mean it will not become ready by itself.
STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
        "RunContainerError",
    }
)
_EPOCH = datetime.min.replace(tzinfo=UTC)


class PromotableRun(Protocol):
    """A TrainingRun as promotion reads it (the Run index's RunSummary is one)."""

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def created(self) -> str: ...

    @property
    def status(self) -> TrainingRunStatus: ...

    @property
    def approval(self) -> RunApproval | None: ...


@dataclass(frozen=True)
class ContainerWaiting:
    """A server container that is waiting, with the last words of its previous attempt."""

    reason: str
    message: str = ""
    last_message: str = ""
    """The termination message of the container's last run (e.g. why the server refused to load the model)."""


@dataclass(frozen=True)
class ServerPod:
    """A model-server pod as health reads it: only its waiting containers (small, it lives in an index)."""

    name: str
    waiting: tuple[ContainerWaiting, ...] = ()


def server_pod(pod: Mapping[str, Any]) -> ServerPod:
    """Parse a pod dict (from a watch event) into what `track_health` needs."""
    waiting: list[ContainerWaiting] = []
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = (cs.get("state") or {}).get("waiting") or {}
        if not state.get("reason"):
            continue
        last = ((cs.get("lastState") or {}).get("terminated") or {}).get("message") or ""
        waiting.append(ContainerWaiting(str(state["reason"]), str(state.get("message") or ""), str(last)))
    return ServerPod(name=str((pod.get("metadata") or {}).get("name", "")), waiting=tuple(waiting))


@dataclass(frozen=True)
class ObservedModelDeployment:
    """Everything a ModelDeployment's plan reads."""

    owner: Owner
    spec: ModelDeploymentSpec | None
    """None when the stored spec does not validate; `spec_error` then says why."""
    spec_error: str | None
    status: ModelDeploymentStatus
    settings: OperatorSettings
    now: datetime
    runs: Sequence[PromotableRun] = ()
    """The TrainingRuns of the namespace (references and LatestValidated promotion resolve among them)."""
    children: Sequence[ChildView] = ()
    """The Service, server Deployments, HPA and NetworkPolicy that exist for this ModelDeployment."""
    pods: Mapping[str, Sequence[ServerPod]] = field(default_factory=dict)
    """Server pods by track ("stable", "canary")."""

    def child(self, kind: str, name: str) -> ChildView | None:
        """The observed child of that kind and name, if it exists."""
        return next((c for c in self.children if c.kind == kind and c.name == name), None)


@dataclass(frozen=True)
class ModelChoice:
    """A resolved model plus what the status and the history should say about it."""

    model: ResolvedModel
    inference_path: str | None = None
    source: Literal["LatestValidated", "Model", "Canary"] = "Model"
    trigger: str | None = None
    """Its TrainingRun's lineage trigger."""
    gates: str | None = None
    """Its TrainingRun's Validated condition, as `reason: message`."""
    approval: RunApproval | None = None
    """The approval that lets it be served, when approval is required."""
    awaiting: str | None = None
    """Why a newer validated run is not served instead: it awaits approval (and the command that approves it)."""


@dataclass(frozen=True)
class ModelUnavailable:
    """The spec names a model that cannot be served (yet): a condition reason, and whether it is final."""

    reason: Reason
    message: str
    waiting: bool


def selector_matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
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


def _validated(run: PromotableRun) -> bool:
    status = run.status
    if status.phase != "Succeeded" or not status.model_uri:
        return False
    cond = find_condition(status.conditions or [], ConditionType.VALIDATED)
    return cond is not None and cond.status == "True"


def _completed_at(run: PromotableRun) -> datetime:
    if run.status.completion_time is not None:
        return run.status.completion_time
    return parse_time(run.created) if run.created else _EPOCH


def choose_latest_validated(
    runs: Sequence[PromotableRun], selector: LabelSelector | None
) -> PromotableRun | None:
    """The newest Succeeded TrainingRun whose gates passed, among those the selector matches.

    A run that failed its gates, or has no Validated condition, is never chosen: that is the promotion guarantee.
    Ties on completion time fall back to the name, so the choice is deterministic.
    """
    eligible = [run for run in runs if _validated(run) and selector_matches(selector, run.labels)]
    if not eligible:
        return None
    return max(eligible, key=lambda run: (_completed_at(run), run.name))


def _from_run(
    run: PromotableRun,
    source: Literal["LatestValidated", "Model", "Canary"],
    approval: RunApproval | None = None,
) -> ModelChoice:
    status = run.status
    assert status.model_uri is not None  # _validated
    onnx = status.onnx.status if status.onnx else None
    path = "onnx" if onnx == "verified" else "sklearn" if onnx else None
    validated = find_condition(status.conditions or [], ConditionType.VALIDATED)
    return ModelChoice(
        ResolvedModel(uri=status.model_uri, sha256=status.model_sha256, training_run=run.name),
        inference_path=path,
        source=source,
        trigger=status.lineage.trigger if status.lineage else None,
        gates=f"{validated.reason}: {validated.message}".rstrip(": ") if validated else None,
        approval=approval,
    )


def _approval(run: PromotableRun) -> RunApproval | None:
    """The run's approval if it covers the run's current model digest."""
    approval = run.approval
    return approval if approval is not None and approval.covers(run.status.model_sha256) else None


def awaiting_approval(run: PromotableRun, namespace: str) -> str:
    """Why a validated run is not served yet, and the one command that approves it."""
    digest = bare_digest(run.status.model_sha256)
    what = f"TrainingRun {run.name} (sha256 {digest[:12]}) awaits approval"
    approval = run.approval
    if approval is not None and approval.sha256 and approval.sha256 != digest:
        what += (
            f": the approval by {approval.by} is for sha256 {approval.sha256[:12]}, another model than the run "
            "has now"
        )
    return f"{what}; a member of the approvers group approves it with: {approval_command(namespace, run.name, digest)}"


def resolve_source(
    source: ModelSource,
    runs: Sequence[PromotableRun],
    *,
    approval_required: bool = False,
    namespace: str = "",
    role: Literal["Model", "Canary"] = "Model",
) -> ModelChoice | ModelUnavailable:
    """A model directory as is, or a referenced TrainingRun's model if it Succeeded and passed its gates (and, when
    approval is required, is approved at its current digest)."""
    if source.uri is not None:
        pin = source.sha256.removeprefix("sha256:") if source.sha256 else None
        return ModelChoice(ResolvedModel(uri=source.uri, sha256=pin))
    assert source.training_run_ref is not None  # the CRD's CEL rule guarantees exactly one
    name = source.training_run_ref.name
    run = next((r for r in runs if r.name == name), None)
    if run is None:
        return ModelUnavailable(
            Reason.TRAINING_RUN_NOT_FOUND, f"TrainingRun {name} does not exist", waiting=True
        )
    phase = run.status.phase
    if phase == "Failed":
        return ModelUnavailable(
            Reason.TRAINING_RUN_FAILED, f"TrainingRun {name} failed; it has no model", waiting=False
        )
    if phase != "Succeeded":
        return ModelUnavailable(
            Reason.WAITING_FOR_TRAINING, f"TrainingRun {name} is {phase or 'Pending'}", waiting=True
        )
    if not _validated(run):
        validated = find_condition(run.status.conditions or [], ConditionType.VALIDATED)
        why = validated.message if validated else "it has no Validated condition"
        return ModelUnavailable(
            Reason.GATES_FAILED, f"TrainingRun {name} may not be served: {why}", waiting=False
        )
    if not approval_required:
        return _from_run(run, role)
    approval = _approval(run)
    if approval is None:
        return ModelUnavailable(Reason.AWAITING_APPROVAL, awaiting_approval(run, namespace), waiting=True)
    return _from_run(run, role, approval)


def approval_required(spec: ModelDeploymentSpec) -> bool:
    """Whether spec.promotion.approval is Required."""
    return spec.promotion is not None and spec.promotion.approval == "Required"


def resolve_stable(
    spec: ModelDeploymentSpec, runs: Sequence[PromotableRun], namespace: str = ""
) -> ModelChoice | ModelUnavailable:
    """The model of the stable track: the promotion's pick when there is one, else spec.model.

    With approval required, the promotion picks the newest validated run among the approved ones; a newer validated
    run that is not approved is named in the choice's `awaiting` (or, when nothing is approved, in the reason to wait).
    """
    promotion = spec.promotion
    required = approval_required(spec)
    awaiting: str | None = None
    if promotion is not None and promotion.policy == "LatestValidated":
        best = choose_latest_validated(runs, promotion.selector)
        if required and best is not None and _approval(best) is None:
            awaiting = awaiting_approval(best, namespace)
            best = choose_latest_validated([r for r in runs if _approval(r) is not None], promotion.selector)
        if best is not None:
            choice = _from_run(best, "LatestValidated", _approval(best) if required else None)
            return replace(choice, awaiting=awaiting)
        if spec.model is None:
            if awaiting is not None:
                return ModelUnavailable(Reason.AWAITING_APPROVAL, awaiting, waiting=True)
            return ModelUnavailable(
                Reason.WAITING_FOR_VALIDATED_RUN,
                "no Succeeded TrainingRun matching the selector has passed its gates",
                waiting=True,
            )
    assert spec.model is not None  # the CRD's CEL rule: model, or LatestValidated
    chosen = resolve_source(spec.model, runs, approval_required=required, namespace=namespace)
    return replace(chosen, awaiting=awaiting) if isinstance(chosen, ModelChoice) else chosen


@dataclass(frozen=True)
class TrackHealth:
    """Rollout and health of one track's Deployment."""

    desired: int
    ready: int
    updated: int
    rolled_out: bool
    stuck: str | None
    """Why a pod cannot become ready by itself (CrashLoopBackOff, image errors), if any pod is stuck."""


def track_health(deployment: ChildView | None, pods: Sequence[ServerPod], desired: int) -> TrackHealth:
    """Summarise a Deployment and its pods.

    A rollout counts as done only when the Deployment controller has observed the latest template and every
    desired replica is updated and ready, so a crash-looping new version never reads as rolled out.
    """
    if deployment is None:
        return TrackHealth(desired, 0, 0, desired == 0, None)
    status = deployment.status or {}
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    observed = status.get("observedGeneration") == deployment.generation
    rolled_out = observed and updated >= desired and ready >= desired and total <= desired
    for pod in pods:
        for waiting in pod.waiting:
            if waiting.reason in STUCK_REASONS:
                detail = (waiting.last_message or waiting.message).strip().splitlines()[-1:] or [""]
                stuck = f"pod {pod.name}: {waiting.reason} {detail[0]}".strip()
                return TrackHealth(desired, ready, updated, rolled_out, stuck)
    return TrackHealth(desired, ready, updated, rolled_out, None)


def _version(choice: ModelChoice) -> ModelVersion:
    approval = choice.approval
    return ModelVersion(
        training_run=choice.model.training_run,
        uri=choice.model.uri,
        sha256=choice.model.sha256,
        approved_by=approval.by if approval else None,
        approved_at=approval.at if approval else None,
    )


def _describe(choice: ModelChoice) -> str:
    model = choice.model
    name = f"TrainingRun {model.training_run}" if model.training_run else model.uri
    return f"{name} (sha256 {model.sha256[:12]})" if model.sha256 else name


_Cond = tuple[ConditionStatus, str, str]


def _set(
    obs: ObservedModelDeployment,
    conditions: list[Condition],
    *,
    ready: _Cond,
    degraded: _Cond,
    progressing: _Cond | None = None,
) -> list[Condition]:
    """Set Ready, Progressing (when given) and Degraded together, so they never contradict each other."""
    out = conditions
    for type_, value in (
        (ConditionType.READY, ready),
        (ConditionType.PROGRESSING, progressing),
        (ConditionType.DEGRADED, degraded),
    ):
        if value is not None:
            out = set_condition(
                out, type_, value[0], value[1], value[2], generation=obs.owner.generation, now=obs.now
            )
    return out


def plan_modeldeployment(obs: ObservedModelDeployment) -> Plan[ModelDeploymentStatus]:
    """Decide the server objects to write, the status and the Events of one ModelDeployment reconcile."""
    plan = Plan(obs.status.model_copy(deep=True))
    plan.status.observed_generation = obs.owner.generation
    if obs.spec is None:
        _invalid(plan, obs, Reason.INVALID_SPEC, obs.spec_error or "the spec does not validate")
        return plan
    spec = obs.spec
    refusal = obs.settings.image_policy.spec_refusal(spec.image)
    if refusal is not None:
        # The servers already running keep serving: a refused change must not take a model offline.
        _invalid(plan, obs, Reason.IMAGE_NOT_ALLOWED, refusal)
        return plan
    namespace, required = obs.owner.namespace, approval_required(spec)
    stable = resolve_stable(spec, obs.runs, namespace)
    canary: ModelChoice | ModelUnavailable | None = None
    if spec.canary is not None and spec.canary.weight > 0:
        canary = resolve_source(
            spec.canary.model, obs.runs, approval_required=required, namespace=namespace, role="Canary"
        )
    unavailable = next((c for c in (stable, canary) if isinstance(c, ModelUnavailable)), None)
    if unavailable is not None:
        _unavailable(plan, obs, unavailable)
    else:
        assert isinstance(stable, ModelChoice) and not isinstance(canary, ModelUnavailable)
        _serve(plan, obs, spec, stable, canary)
    _approval_condition(plan, obs, required, stable, canary)
    return plan


def _approval_condition(
    plan: Plan[ModelDeploymentStatus],
    obs: ObservedModelDeployment,
    required: bool,
    stable: ModelChoice | ModelUnavailable,
    canary: ModelChoice | ModelUnavailable | None,
) -> None:
    """Approved: True when what is served is approved, False while a validated run awaits approval; absent when
    approval is not required. One Normal Event per run and digest that starts waiting."""
    status = plan.status
    if not required:
        if find_condition(status.conditions or [], ConditionType.APPROVED) is not None:
            status.conditions = [c for c in status.conditions or [] if c.type != ConditionType.APPROVED]
        return
    waiting = next(
        (
            c.message
            for c in (stable, canary)
            if isinstance(c, ModelUnavailable) and c.reason == Reason.AWAITING_APPROVAL
        ),
        stable.awaiting if isinstance(stable, ModelChoice) else None,
    )
    if waiting is not None:
        value: _Cond = ("False", Reason.AWAITING_APPROVAL, waiting)
    elif isinstance(stable, ModelUnavailable):
        value = ("False", stable.reason, stable.message)
    else:
        served = [c for c in (stable, canary) if isinstance(c, ModelChoice)]
        value = ("True", Reason.APPROVED, "; ".join(_approved_text(c) for c in served))
    status.conditions = set_condition(
        status.conditions or [],
        ConditionType.APPROVED,
        value[0],
        value[1],
        value[2],
        generation=obs.owner.generation,
        now=obs.now,
    )
    previous = find_condition(obs.status.conditions or [], ConditionType.APPROVED)
    already = any(e.reason == Reason.AWAITING_APPROVAL for e in plan.events)
    if waiting is not None and not already and (previous is None or previous.message != waiting):
        plan.event(EventType.NORMAL, Reason.AWAITING_APPROVAL, waiting)


def _approved_text(choice: ModelChoice) -> str:
    approval = choice.approval
    what = _describe(choice)
    if approval is None:
        return f"{what} needs no approval"
    when = f" at {approval.at.isoformat()}" if approval.at else ""
    return f"{what} approved by {approval.by}{when}"


def _invalid(
    plan: Plan[ModelDeploymentStatus], obs: ObservedModelDeployment, reason: Reason, message: str
) -> None:
    plan.status.phase = "Degraded"
    plan.status.conditions = _set(
        obs,
        plan.status.conditions or [],
        ready=("False", reason, message),
        degraded=("True", reason, message),
    )
    if obs.status.observed_generation != obs.owner.generation:
        plan.event(EventType.WARNING, reason, message)


def _unavailable(
    plan: Plan[ModelDeploymentStatus], obs: ObservedModelDeployment, why: ModelUnavailable
) -> None:
    """No model to (re)deploy: keep whatever is already serving (no actions), and say why nothing changes."""
    status, generation = plan.status, obs.owner.generation
    conditions = status.conditions or []
    if obs.status.model_version is not None:
        # The current model stays up; the new spec is what cannot be honoured.
        status.conditions = set_condition(
            conditions,
            ConditionType.PROGRESSING,
            "False",
            why.reason,
            why.message,
            generation=generation,
            now=obs.now,
        )
        if not why.waiting:
            status.conditions = set_condition(
                status.conditions,
                ConditionType.DEGRADED,
                "True",
                why.reason,
                why.message,
                generation=generation,
                now=obs.now,
            )
            status.phase = "Degraded"
    else:
        status.phase = "Pending" if why.waiting else "Degraded"
        status.conditions = _set(
            obs,
            conditions,
            ready=("False", why.reason, why.message),
            progressing=("True" if why.waiting else "False", why.reason, why.message),
            degraded=("False", why.reason, "") if why.waiting else ("True", why.reason, why.message),
        )
    previous = find_condition(obs.status.conditions or [], ConditionType.PROGRESSING)
    if previous is None or previous.reason != why.reason:
        plan.event(EventType.NORMAL if why.waiting else EventType.WARNING, why.reason, why.message)


def _apply_if_changed(plan: Plan[Any], obs: ObservedModelDeployment, desired: dict[str, Any]) -> bool:
    """Plan an Apply when the child is missing or was last applied from another desired object.

    Returns whether the child's desired state changed: True when it is new or its hash moved, False when nothing
    is applied or when an unannotated child (written before applied hashes existed) is merely adopted.
    """
    body, digest = with_applied_hash(desired)
    live = obs.child(body["kind"], body["metadata"]["name"])
    if live is not None and live.applied_hash == digest:
        return False
    plan.actions.append(Apply(body))
    return live is None or live.applied_hash is not None


def _delete_if_present(
    plan: Plan[Any], obs: ObservedModelDeployment, api_version: str, kind: str, name: str
) -> None:
    if obs.child(kind, name) is not None:
        plan.actions.append(Delete(api_version, kind, name))


def _serve(
    plan: Plan[ModelDeploymentStatus],
    obs: ObservedModelDeployment,
    spec: ModelDeploymentSpec,
    stable: ModelChoice,
    canary: ModelChoice | None,
) -> None:
    owner, status = obs.owner, plan.status
    split = split_replicas(
        desired_total_replicas(spec), spec.canary.weight if canary is not None and spec.canary else 0
    )
    autoscaled = spec.autoscaling is not None
    stable_name, canary_name = (
        server_deployment_name(owner, "stable"),
        server_deployment_name(owner, "canary"),
    )

    _apply_if_changed(plan, obs, build_service(owner, spec))
    policy = build_network_policy(owner, spec, obs.settings)
    if policy is not None:
        _apply_if_changed(plan, obs, policy)
    else:
        _delete_if_present(plan, obs, "networking.k8s.io/v1", "NetworkPolicy", owner.name)
    changing: set[Track] = set()
    stable_body = build_server_deployment(
        owner, spec, obs.settings, stable.model, track="stable", replicas=None if autoscaled else split.stable
    )
    if _apply_if_changed(plan, obs, stable_body):
        changing.add("stable")
    hpa = build_hpa(owner, spec)
    if hpa is not None:
        _apply_if_changed(plan, obs, hpa)
    else:
        _delete_if_present(plan, obs, "autoscaling/v2", "HorizontalPodAutoscaler", owner.name)
    if canary is not None:
        canary_body = build_server_deployment(
            owner, spec, obs.settings, canary.model, track="canary", replicas=split.canary
        )
        if _apply_if_changed(plan, obs, canary_body):
            changing.add("canary")
    else:
        _delete_if_present(plan, obs, "apps/v1", "Deployment", canary_name)
    pvc = build_artifact_pvc(obs.settings, owner.namespace)
    if pvc is not None and any(isinstance(a, Apply) and a.body["kind"] == "Deployment" for a in plan.actions):
        # Before the Deployments that mount it; the executor creates a claim once per process.
        actions: list[Action] = [Create(pvc)]
        plan.actions[:0] = actions

    stable_live = obs.child("Deployment", stable_name)
    desired_stable = split.stable
    if autoscaled and stable_live is not None:
        desired_stable = stable_live.spec_replicas or split.stable
    health = _health(obs, stable_live, "stable", desired_stable, "stable" in changing)
    canary_health = None
    if canary is not None:
        canary_live = obs.child("Deployment", canary_name)
        canary_health = _health(obs, canary_live, "canary", split.canary, "canary" in changing)

    previous = obs.status.model_version
    status.history, opened = _history(obs, stable, canary)
    for track, choice in opened:
        if choice.approval is not None:
            plan.event(EventType.NORMAL, Reason.APPROVED, f"promoting {_approved_text(choice)} ({track})")
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
    conditions = status.conditions or []
    if stuck:
        status.phase = "Degraded"
        status.conditions = _set(
            obs,
            conditions,
            ready=("False", Reason.SERVER_FAILING, stuck),
            progressing=("False", Reason.ROLLOUT_STUCK, stuck),
            degraded=("True", Reason.SERVER_FAILING, stuck),
        )
    elif rolled_out:
        status.phase = "Ready"
        ready_msg = f"serving {what} on {health.ready}/{health.desired} pods"
        if canary is not None and canary_health is not None:
            ready_msg += (
                f"; canary {_describe(canary)} on {canary_health.ready} pods ({split.canary_weight}%)"
            )
        status.conditions = _set(
            obs,
            conditions,
            ready=("True", Reason.SERVING, ready_msg),
            progressing=("False", Reason.ROLLED_OUT, f"{what} is rolled out"),
            degraded=("False", Reason.HEALTHY, ""),
        )
    else:
        status.phase = "Progressing"
        message = f"rolling out {what}: {health.updated}/{health.desired} updated, {health.ready} ready"
        status.conditions = _set(
            obs,
            conditions,
            ready=("True", Reason.SERVING, f"serving while {message}")
            if serving and previous
            else ("False", Reason.ROLLING_OUT, message),
            progressing=("True", Reason.ROLLING_OUT, message),
            degraded=("False", Reason.HEALTHY, ""),
        )

    if previous is None or previous.sha256 != stable.model.sha256 or previous.uri != stable.model.uri:
        plan.event(EventType.NORMAL, Reason.MODEL_ROLLOUT, f"rolling out {what}")
    if stuck and obs.status.phase != "Degraded":
        plan.event(EventType.WARNING, Reason.SERVER_FAILING, stuck)
    if status.phase == "Ready" and obs.status.phase != "Ready":
        plan.event(EventType.NORMAL, Reason.READY, f"serving {what} at {status.url}")


def _same_model(entry: HistoryEntry, choice: ModelChoice) -> bool:
    model = choice.model
    return (entry.training_run, entry.uri, entry.sha256) == (model.training_run, model.uri, model.sha256)


def _history(
    obs: ObservedModelDeployment, stable: ModelChoice, canary: ModelChoice | None
) -> tuple[list[HistoryEntry], list[tuple[Track, ModelChoice]]]:
    """status.history with an entry opened for each track whose model changed and the replaced one closed; and the
    (track, model) pairs opened."""
    history = [e.model_copy() for e in obs.status.history or []]
    opened: list[tuple[Track, ModelChoice]] = []
    tracks: tuple[tuple[Track, ModelChoice | None], ...] = (("stable", stable), ("canary", canary))
    for track, choice in tracks:
        open_index = next(
            (
                i
                for i in range(len(history) - 1, -1, -1)
                if history[i].track == track and history[i].served_until is None
            ),
            None,
        )
        current = history[open_index] if open_index is not None else None
        if choice is not None and current is not None and _same_model(current, choice):
            continue
        if current is not None and open_index is not None:
            history[open_index] = current.model_copy(update={"served_until": obs.now})
        if choice is None:
            continue
        opened.append((track, choice))
        approval = choice.approval
        history.append(
            HistoryEntry(
                track=track,
                training_run=choice.model.training_run,
                uri=choice.model.uri,
                sha256=choice.model.sha256,
                served_from=obs.now,
                source=choice.source,
                trigger=choice.trigger,
                gates=choice.gates,
                approved_by=approval.by if approval else None,
                approved_at=approval.at if approval else None,
            )
        )
    return history[-HISTORY_LIMIT:], opened


def _health(
    obs: ObservedModelDeployment, live: ChildView | None, track: Track, desired: int, changing: bool
) -> TrackHealth:
    """A track's health; a Deployment applied in this very plan has not rolled its new template out yet."""
    health = track_health(live, obs.pods.get(track, ()), desired)
    if changing and health.rolled_out and live is not None:
        return TrackHealth(health.desired, health.ready, health.updated, False, health.stuck)
    return health
