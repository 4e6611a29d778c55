"""Which MLflow server a TrainingRun is logged to, and the env that tells its training pods. Pure.

The tracking server is the run's `spec.tracking.uri`, else the operator's (GYRE_TRACKING_URI); `enabled: false`
turns it off. Credentials reach the pod only as secretKeyRefs under MLflow's own variable names: the spec's refs
for the spec's server, the optional keys of the namespace's GYRE_TRACKING_SECRET for the operator's. A server the
spec names is checked against the source policy (it is a host the pod sends data to); the operator's is the admin's
own choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gyre.api import env
from gyre.api.trainingrun import TrainingRunSpec
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.policy.sources import SourceScope, check_source

__all__ = ["TrackingPlan", "resolve_tracking", "tracking_env"]


@dataclass(frozen=True)
class TrackingPlan:
    """Where a run is logged, or why it is not although it asked to be."""

    uri: str | None
    experiment: str
    secret_refs: tuple[tuple[str, str, str, bool], ...] = field(default=())
    """(env name, Secret, key, optional) for each credential."""
    refusal: str | None = None
    """Why spec.tracking.uri may not be used (the source policy); the run is then trained but not logged."""


def resolve_tracking(owner: Owner, spec: TrainingRunSpec, settings: OperatorSettings) -> TrackingPlan | None:
    """The run's tracking server and credentials; None when no server applies (or the spec opts out)."""
    tracking = spec.tracking
    if tracking is not None and not tracking.enabled:
        return None
    experiment = (tracking.experiment if tracking else None) or f"{owner.namespace}/{spec.dataset_ref.name}"
    if tracking is not None and tracking.uri:
        refused = check_source(tracking.uri, SourceScope(settings.source_policy))
        if refused is not None:
            return TrackingPlan(None, experiment, refusal=f"spec.tracking.uri: {refused.message}")
        refs = (
            (env.TRACKING_TOKEN, tracking.token_secret_ref),
            (env.TRACKING_USERNAME, tracking.username_secret_ref),
            (env.TRACKING_PASSWORD, tracking.password_secret_ref),
        )
        if settings.artifact_secret and any(
            ref is not None and ref.name == settings.artifact_secret for _name, ref in refs
        ):
            # The pod would send the store's keys to a host the spec names.
            message = (
                f"spec.tracking names the artifact store's Secret {settings.artifact_secret}, which only the store "
                "may use; put the tracking credentials in a Secret of their own"
            )
            return TrackingPlan(None, experiment, refusal=message)
        return TrackingPlan(
            tracking.uri,
            experiment,
            tuple((name, ref.name, ref.key, False) for name, ref in refs if ref is not None),
        )
    if not settings.tracking_uri:
        return None
    secret = settings.tracking_secret
    refs_of_operator = tuple((key, secret, key, True) for key in env.TRACKING_SECRET_KEYS) if secret else ()
    return TrackingPlan(settings.tracking_uri, experiment, refs_of_operator)


def tracking_env(owner: Owner, plan: TrackingPlan | None) -> list[dict[str, Any]]:
    """The training container's env for `plan` (nothing when the run is not logged)."""
    if plan is None or plan.uri is None:
        return []
    out: list[dict[str, Any]] = [
        {"name": env.TRACKING_URI, "value": plan.uri},
        {"name": env.TRACKING_EXPERIMENT, "value": plan.experiment},
        {"name": env.TRAINING_RUN_UID, "value": owner.uid},
    ]
    for name, secret, key, optional in plan.secret_refs:
        ref: dict[str, Any] = {"name": secret, "key": key}
        if optional:
            ref["optional"] = True
        out.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    return out
