"""The pure decisions of the ModelDeployment plan: which run gets promoted, and when a rollout is healthy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gyre.api.common import LabelSelector
from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.controllers.indexes import RunSummary
from gyre.reconcile.modeldeployment import (
    ServerPod,
    choose_latest_validated,
    selector_matches,
    server_pod,
    track_health,
)
from gyre.reconcile.observed import ChildView

SPEC = TrainingRunSpec.model_validate(
    {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}}
)


def run(
    name: str, completed: str, *, validated: str | None = "True", phase: str = "Succeeded", **labels: str
) -> RunSummary:
    conditions = (
        []
        if validated is None
        else [
            {
                "type": "Validated",
                "status": validated,
                "reason": "R",
                "message": "",
                "lastTransitionTime": "2026-11-01T00:00:00Z",
            }
        ]
    )
    status: dict[str, Any] = {
        "phase": phase,
        "modelUri": f"pvc://a/models/ns/{name}",
        "conditions": conditions,
    }
    if completed:
        status["completionTime"] = completed
    return RunSummary(
        name=name,
        uid=f"uid-{name}",
        labels=labels,
        created="2026-11-01T00:00:00Z",
        spec=SPEC,
        status=TrainingRunStatus.model_validate(status),
    )


def test_newest_validated_run_wins() -> None:
    runs = [
        run("a", "2026-11-20T10:00:00Z"),
        run("b", "2026-11-21T10:00:00Z"),
        run("c", "2026-11-19T10:00:00Z"),
    ]
    chosen = choose_latest_validated(runs, None)
    assert chosen is not None and chosen.name == "b"


def test_a_run_that_failed_its_gates_is_never_promoted_even_if_newest() -> None:
    runs = [run("good", "2026-11-20T10:00:00Z"), run("bad", "2026-11-22T10:00:00Z", validated="False")]
    chosen = choose_latest_validated(runs, None)
    assert chosen is not None and chosen.name == "good"
    assert choose_latest_validated([run("unvalidated", "2026-11-22T10:00:00Z", validated=None)], None) is None
    assert choose_latest_validated([run("running", "", phase="Running")], None) is None


def test_a_run_without_a_completion_time_ranks_by_its_creation_time() -> None:
    runs = [run("old", "2026-10-01T00:00:00Z"), run("untimed", "")]
    chosen = choose_latest_validated(runs, None)
    assert chosen is not None and chosen.name == "untimed"


def test_equal_completion_times_fall_back_to_the_name() -> None:
    runs = [run("b", "2026-11-20T10:00:00Z"), run("a", "2026-11-20T10:00:00+00:00")]
    chosen = choose_latest_validated(runs, None)
    assert chosen is not None and chosen.name == "b"


def test_selector_limits_the_candidates() -> None:
    runs = [
        run("iris-1", "2026-11-20T10:00:00Z", app="iris"),
        run("wine-1", "2026-11-21T10:00:00Z", app="wine"),
    ]
    chosen = choose_latest_validated(runs, LabelSelector.model_validate({"matchLabels": {"app": "iris"}}))
    assert chosen is not None and chosen.name == "iris-1"


def test_selector_expressions() -> None:
    sel = LabelSelector.model_validate(
        {
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["gold", "silver"]},
                {"key": "experimental", "operator": "DoesNotExist"},
            ]
        }
    )
    assert selector_matches(sel, {"tier": "gold"})
    assert not selector_matches(sel, {"tier": "bronze"})
    assert not selector_matches(sel, {"tier": "gold", "experimental": "yes"})
    assert selector_matches(None, {})


def deployment(generation: int, observed: int, replicas: int, ready: int, updated: int) -> ChildView:
    return ChildView(
        kind="Deployment",
        name="iris",
        applied_hash="h",
        generation=generation,
        status={
            "observedGeneration": observed,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": updated,
        },
    )


def pod(reason: str | None, last_message: str = "") -> ServerPod:
    state = {"waiting": {"reason": reason, "message": "back-off"}} if reason else {"running": {}}
    return server_pod(
        {
            "metadata": {"name": "iris-abc"},
            "status": {
                "containerStatuses": [
                    {"state": state, "lastState": {"terminated": {"message": last_message}}}
                ]
            },
        }
    )


def test_rolled_out_only_when_every_desired_replica_is_updated_and_ready() -> None:
    assert track_health(deployment(2, 2, 2, 2, 2), [pod(None)], 2).rolled_out
    assert not track_health(deployment(3, 2, 2, 2, 2), [], 2).rolled_out, "template change not yet observed"
    assert not track_health(deployment(2, 2, 3, 2, 1), [], 2).rolled_out, (
        "surge pod of the new version not ready"
    )
    assert not track_health(None, [], 1).rolled_out


def test_a_crash_looping_server_is_reported_with_its_error() -> None:
    health = track_health(
        deployment(2, 2, 2, 1, 1), [pod("CrashLoopBackOff", "sha256 mismatch: refusing to load")], 2
    )
    assert not health.rolled_out
    assert (
        health.stuck is not None and "CrashLoopBackOff" in health.stuck and "sha256 mismatch" in health.stuck
    )


def test_a_pod_view_keeps_only_its_waiting_containers() -> None:
    assert pod(None).waiting == ()
    assert [w.reason for w in pod("ContainerCreating").waiting] == ["ContainerCreating"]
    assert track_health(deployment(1, 1, 1, 0, 1), [pod("ContainerCreating")], 1).stuck is None


def test_completion_times_are_compared_as_times_not_strings() -> None:
    later = run("later", "2026-11-20T11:00:00+01:00")  # 10:00 UTC
    earlier_utc = run("earlier", "2026-11-20T10:30:00Z")
    chosen = choose_latest_validated([later, earlier_utc], None)
    assert chosen is not None and chosen.name == "earlier"
    assert isinstance(later.status.completion_time, datetime)
